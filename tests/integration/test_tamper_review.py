"""Attacks on sealed evidence by the daemon's own user (it can write
roigate.db and seal.key, not the verification key): edits that a hash over
the columns' text cannot see, and cuts that a checkpoint names.  What the
verifiers must say for each (docs/disclosure-log.md)."""
import hashlib
import json
import os
import re
import resource
import sqlite3
import subprocess
import time

from gateway import BUILD, Packet, wait_for, wait_state
from test_sealing import (drop_triggers, ns, restore_triggers, sealed_gateway,
                          verify, wait_sealed)

MRN = "TEST-000123"


def accountable(g, n, prefix):
    """n deliveries that the accounting of disclosures lists (a subpoena:
    not exempt)."""
    for i in range(n):
        p = Packet(f"{prefix}-{i}")
        p.manifest["basis"] = "subpoena"
        g.drop(p)
    for i in range(n):
        wait_state(g, f"{prefix}-{i}", "delivered", timeout=60)


def copy_db(g, name):
    path = os.path.join(g.root, name)
    src = sqlite3.connect(os.path.join(g.state, "roigate.db"))
    dst = sqlite3.connect(path)
    src.backup(dst)
    src.close()
    dst.close()
    return path


def tampered_copy(g, name, table, *sql):
    """A copy of the stopped gateway's database in its own folder, edited
    with the daemon's rights (the table's triggers dropped)."""
    folder = os.path.join(g.root, name)
    os.makedirs(folder)
    path = copy_db(g, os.path.join(name, "roigate.db"))
    with sqlite3.connect(path) as db:
        drop_triggers(db, table)
        for q in sql:
            db.execute(q)
    db.close()
    return path


def run_verify(g, keyfile, path, *extra):
    return subprocess.run([os.path.join(BUILD, "roigate-verify"), "--db", path,
                           "--key-file", keyfile, *extra], capture_output=True,
                          text=True, timeout=60)


def test_a_value_the_hash_reads_as_the_same_text_is_found(gateway_factory):
    """A blob holding a value's very bytes hashes the same, but SQL compares
    it otherwise: an assessment whose incident number is the blob '1' is no
    longer found for incident 1.  A hash or mark with bytes after its 64
    characters reads back cut.  Every sealed table, not only the
    disclosure log."""
    g, keyfile = sealed_gateway(gateway_factory)
    accountable(g, 1, "ROI-B")
    g.roictl("incident", "open", "--job", "1", "--kind", "misdirected",
             "--note", "faxed to the wrong clinic", "--discovered",
             "2026-11-30", check=0)
    g.roictl("incident", "assess", "1", "--determination", "breach", check=0)
    g.roictl("accounting", "suspend", "--agency", "state-oversight",
             "--until", "2099-01-01", "--mrn", MRN, check=0)
    wait_sealed(g, 1, "assessments")
    wait_sealed(g, 1, "suspensions")
    assert g.stop() == 0
    r = verify(g, keyfile)
    assert r.returncode == 0, r.stderr
    cases = [
        ("assessments", "assessments entry 1",
         "UPDATE assessments SET incident = CAST('1' AS BLOB) WHERE seq = 1"),
        ("suspensions", "suspensions entry 1",
         "UPDATE suspensions SET mrn = CAST(mrn AS BLOB) WHERE seq = 1"),
        ("incidents", "incidents entry 1",
         "UPDATE incidents SET recipient_id = CAST(recipient_id AS BLOB)"),
        ("audit", "audit log entry 3",
         "UPDATE audit SET mac = mac || 'x' WHERE id = 3"),
        ("disclosures", "disclosure log entry 2",
         "UPDATE disclosures SET hash = hash || 'x' WHERE seq = 2"),
    ]
    for i, (table, named, sql) in enumerate(cases):
        path = tampered_copy(g, f"copy{i}", table, sql)
        if table == "assessments":
            with sqlite3.connect(path) as db:
                assert db.execute("SELECT COUNT(*) FROM assessments WHERE"
                                  " incident = 1").fetchone()[0] == 0
            db.close()
        r = run_verify(g, keyfile, path)
        assert r.returncode == 65, (table, r)
        assert f"TAMPERED: {named}: a field holds a value of the wrong type" \
            in r.stderr, (table, r.stderr)


def test_an_index_that_leaves_an_entry_out_is_found(gateway_factory):
    """The chains are read from the table, the accounting of one patient
    from an index: an index rebuilt without job 2's entries (and declared as
    the whole one again) hides that disclosure from the accounting while
    every hash, mark and seal still holds."""
    g, keyfile = sealed_gateway(gateway_factory)
    accountable(g, 2, "ROI-X")
    wait_sealed(g, 4)

    def listed():
        rep = json.loads(g.roictl("accounting", "--mrn", MRN, "--format",
                                  "json", check=0).stdout)
        return sum(e.get("count", 1) for e in rep["entries"])
    assert listed() == 2
    assert g.stop() == 0
    with sqlite3.connect(os.path.join(g.state, "roigate.db")) as db:
        sql = db.execute("SELECT sql FROM sqlite_master WHERE name ="
                         " 'disclosures_accounting'").fetchone()[0]
        db.execute("DROP INDEX disclosures_accounting")
        db.execute(sql + " WHERE job_id <> 2")
        db.execute("PRAGMA writable_schema = ON")
        db.execute("UPDATE sqlite_master SET sql = ? WHERE name ="
                   " 'disclosures_accounting'", (sql,))
    db.close()
    g.start()
    assert listed() == 1                # what the attack is for
    r = g.roictl("verify-log", "--key-file", keyfile)
    assert r.returncode == 65, r
    assert re.search(r"row \d+ missing from index disclosures_accounting",
                     r.stderr), r
    assert g.stop() == 0
    r = verify(g, keyfile)
    assert r.returncode == 65, r
    assert "TAMPERED: the disclosure log's file structure is not sound" \
        in r.stderr and "accounting" in r.stderr, r.stderr


def test_seals_cut_after_the_last_entry_are_found_by_checkpoint(gateway_factory):
    """Quiet epochs after the last entry, their seals cut off: every entry
    is still there, so only the seal the checkpoint names can tell; without
    a checkpoint the verdict at least says when the last seal ended."""
    g, keyfile = sealed_gateway(gateway_factory)
    accountable(g, 1, "ROI-C")
    wait_sealed(g, 2)
    time.sleep(3)                       # quiet epochs
    assert g.stop() == 0
    line = re.findall(r"roigate-checkpoint v1 [^\n]*", g.log())[-1]
    r = verify(g, keyfile, "--checkpoint", line)
    assert r.returncode == 0, r
    epoch = int(re.search(r" epoch=(\d+)", line).group(1))
    with sqlite3.connect(os.path.join(g.state, "roigate.db")) as db:
        drop_triggers(db, "seals")
        drop_triggers(db, "seal_ranges")
        keep = db.execute("SELECT MIN(epoch) FROM seal_ranges WHERE name ="
                          " 'disclosures' AND last_seq = (SELECT MAX(seq)"
                          " FROM disclosures)").fetchone()[0]
        # Audit entries after the last disclosure: cut them as well.
        last_audit = db.execute("SELECT last_seq FROM seal_ranges WHERE epoch"
                                " = ? AND name = 'audit'", (keep,)).fetchone()[0]
        drop_triggers(db, "audit")
        db.execute("DELETE FROM audit WHERE id > ?", (last_audit,))
        db.execute("DELETE FROM seals WHERE epoch > ?", (keep,))
        db.execute("DELETE FROM seal_ranges WHERE epoch > ?", (keep,))
        end = db.execute("SELECT end_at FROM seals WHERE epoch = ?", (keep,)
                         ).fetchone()[0]
    db.close()
    assert keep < epoch
    # Without the checkpoint: intact, but the verdict says when it ends.
    r = verify(g, keyfile)
    assert r.returncode == 0, r
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end))
    assert f"epochs, the last ending {when}" in r.stdout, r.stdout
    cut = verify(g, keyfile, "--checkpoint", line)
    assert cut.returncode == 65, cut
    assert (f"TAMPERED: checkpoint: the log no longer holds the seal of epoch"
            f" {epoch}") in cut.stderr, cut.stderr


def test_an_altered_first_seal_is_tampering_not_a_wrong_key(gateway_factory):
    """The first seal is what tells a wrong key: altered (or the instance id
    that every seal is made over), the verifier said the key was not this
    log's, and checked nothing else.  The later seals and the entries' marks
    still fit the key: that is tampering."""
    g, keyfile = sealed_gateway(gateway_factory)
    accountable(g, 1, "ROI-K")
    wait_sealed(g, 2)
    assert g.stop() == 0
    first = tampered_copy(g, "seal0", "seals", "UPDATE seals SET end_at ="
                          " end_at + 1 WHERE epoch = 0")
    instance = tampered_copy(g, "instance", "meta", "UPDATE meta SET value ="
                             " '0123456789abcdef' WHERE name = 'instance'")
    for path in (first, instance):
        r = run_verify(g, keyfile, path)
        assert r.returncode == 65, r
        assert "TAMPERED: the seal of epoch 0 does not match, though the key" \
            " fits" in r.stderr, r.stderr


def test_the_daemon_holding_a_sealing_key_dumps_no_core(gateway_factory):
    """The key file moves on every epoch, a core dump would not: one taken
    in epoch 3 and read in epoch 300 gives epoch 3's key, which remakes
    epoch 3's entries and seals and every one after."""
    was = resource.getrlimit(resource.RLIMIT_CORE)
    # Started with core dumps allowed (the daemon inherits the limit).
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY,
                                              resource.RLIM_INFINITY))
    try:
        g, keyfile = sealed_gateway(gateway_factory)
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, was)
    with open(f"/proc/{g.proc.pid}/limits") as f:
        core = [ln for ln in f if ln.startswith("Max core file size")][0]
    assert core.split()[4:6] == ["0", "0"], core


def test_an_entry_put_back_under_a_prune_cut_is_found(gateway_factory):
    """After a genuine prune, entries at or below its cut still in the
    database are a removal under way.  One made up and put there (a
    disclosure that never happened) was listed by roictl log and the
    verifiers reported it only as 'still to be removed'."""
    from test_retention import SEVEN_YEARS, age_sealed_log
    g, keyfile = sealed_gateway(gateway_factory)
    accountable(g, 2, "ROI-P")
    wait_sealed(g, 4)
    assert g.stop() == 0
    db_path = os.path.join(g.state, "roigate.db")
    age_sealed_log(db_path, keyfile, SEVEN_YEARS)
    g.start()
    accountable(g, 1, "ROI-Q")
    r = g.roictl("prune", check=0)
    assert "prune record 1 written (sealed)" in r.stdout, r.stdout
    wait_for("the removal to finish", lambda: "prune 1 done" in g.log())
    wait_sealed(g, 6)
    r = g.roictl("verify-log", "--key-file", keyfile)
    assert r.returncode == 0, r
    # Written beside the running daemon (at its next start it would take up
    # the removal again, and remove it).
    with sqlite3.connect(db_path, timeout=10) as db:
        saved = drop_triggers(db, "disclosures")
        cols = ("at, job_id, packet_id, mrn, patient_name, recipient_id,"
                " recipient_name, recipient_address, description, purpose,"
                " basis, authorization_id, transport, remote_id, outcome,"
                " detail, pages, output_sha256, accountable")
        # Entry 3, chained as the daemon's user can, but with no key of its
        # epoch for its mark.
        row = db.execute(f"SELECT {cols} FROM disclosures WHERE seq = 6"
                         ).fetchone()
        fake = (3,) + row[:7] + ("/tmp/elsewhere",) + row[8:]
        prev = "0" * 64
        h = hashlib.sha256(prev.encode() + b"".join(
            ns(v) for v in fake)).hexdigest()
        db.execute(f"INSERT INTO disclosures (seq, {cols}, prev_hash, hash,"
                   " mac) VALUES (" + ", ".join("?" * 23) + ")",
                   fake + (prev, h, "0" * 64))
        restore_triggers(db, saved)
    db.close()
    assert any(e.get("recipient_address") == "/tmp/elsewhere"
               for e in g.jsonl("log")), "the made-up entry is listed"
    r = g.roictl("verify-log", "--key-file", keyfile)
    assert r.returncode == 65, r
    assert "disclosure log entry 3" in r.stderr, r.stderr
    assert g.stop() == 0
    r = verify(g, keyfile)
    assert r.returncode == 65, r
    assert "TAMPERED: disclosure log entry 3" in r.stderr, r.stderr


def test_a_suspension_of_every_patient_stays_one_when_its_mrn_is_emptied(
        gateway_factory):
    """The hash reads a missing value and an empty text alike, so the daemon
    must too: a suspension for every patient (no MRN) of the entries to an
    agency, its MRN made '', still verified, and the accounting then held
    back nobody's entries to that agency."""
    g, keyfile = sealed_gateway(gateway_factory)
    accountable(g, 1, "ROI-N")
    r = g.roictl("accounting", "suspend", "--agency", "records-desk",
                 "--until", "2099-01-01", check=0)
    assert r.returncode == 0, r

    def listed():
        return json.loads(g.roictl("accounting", "--mrn", MRN, "--format",
                                   "json", check=0).stdout)["entries"]
    assert listed() == []
    wait_sealed(g, 1, "suspensions")
    assert g.stop() == 0
    with sqlite3.connect(os.path.join(g.state, "roigate.db")) as db:
        saved = drop_triggers(db, "suspensions")
        db.execute("UPDATE suspensions SET mrn = '' WHERE seq = 1")
        restore_triggers(db, saved)
    db.close()
    r = verify(g, keyfile)
    assert r.returncode == 0, r         # the same hash: it cannot tell
    g.start()
    assert listed() == []
    # Nor can a client ask for a suspension of the patient with no MRN.
    r = g.roictl("accounting", "suspend", "--agency", "records-desk",
                 "--until", "2099-01-01", "--mrn", "")
    assert r.returncode == 65 and "mrn: the patient" in r.stderr, r
