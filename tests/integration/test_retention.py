"""Retention ([retention], roictl prune; docs/disclosure-log.md): finished
jobs' folders go after [retention] jobs, open jobs' never; the sealed records
go only by roictl prune after six years, under a sealed prune record that the
verifiers check; a prune forged by the daemon's own user is found."""
import hashlib
import hmac
import os
import shutil
import sqlite3
import struct
import subprocess
import time

from gateway import BUILD, wait_for
from test_sealing import deliver, sealed_gateway, verify, wait_sealed

DAY = 86400
# Seven years of 365.25 days: older than six calendar years, whatever the date.
SEVEN_YEARS = int(7 * 365.25 * DAY)

# The canonical columns of each sealed table (src/store.c), sequence first.
SEALED = {
    "disclosures": "seq, at, job_id, packet_id, mrn, patient_name, recipient_id,"
                   " recipient_name, recipient_address, description, purpose,"
                   " basis, authorization_id, transport, remote_id, outcome,"
                   " detail, pages, output_sha256, accountable",
    "audit": "id, at, uid, gid, pid, role, op, target, outcome, detail",
    "suspensions": "seq, at, action, ref, agency, mrn, oral, until_at, actor,"
                   " note",
    "incidents": "seq, at, kind, job_id, note, actor, discovered_at,"
                 " disclosures, recipient_id, containment",
    "assessments": "seq, at, incident, nature, unauthorized_person,"
                   " acquired_viewed, mitigation, determination, actor,"
                   " supersedes",
    "prunes": "seq, at, actor, before_at, cuts",
    "request_extensions": "seq, at, request_id, reason, actor",
}


def ns(v):
    b = ("" if v is None else str(v)).encode()
    return b"%d:%s," % (len(b), b)


def epoch_keys(keyfile, n):
    """E(0) .. E(n) from the verification key (docs/disclosure-log.md)."""
    with open(keyfile) as f:
        digits = f.read().strip()[5:].replace("-", "")
    k = bytes.fromhex(digits[:64])
    keys = []
    for i in range(n + 1):
        k = hmac.new(k, b"roigate seal evolve" + struct.pack(">Q", i),
                     hashlib.sha256).digest()
        keys.append(k)
    return keys


def seal_of(key, instance, epoch, start, end, ranges, prev):
    msg = ns("roigate seal v1") + ns(instance) + ns(epoch) + ns(start) + ns(end)
    for name in SEALED:               # the order of enum store_sealed
        if name in ranges:
            first, last, head = ranges[name]
            msg += ns(name) + ns(first) + ns(last) + ns(head)
    msg += ns(prev)
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def age_sealed_log(db_path, keyfile, seconds):
    """Move every sealed entry and every seal `seconds` into the past, as the
    holder of the verification key could (it checks and could forge): the
    chains, the marks and the seals are all made again.  The daemon must be
    stopped (every entry sealed)."""
    db = sqlite3.connect(db_path)
    instance = db.execute("SELECT value FROM meta WHERE name = 'instance'"
                          ).fetchone()[0]
    seals = db.execute("SELECT epoch, start_at, end_at FROM seals ORDER BY"
                       " epoch").fetchall()
    ranges = {e: {n: [f, l, h] for n, f, l, h in db.execute(
        "SELECT name, first_seq, last_seq, head FROM seal_ranges WHERE"
        " epoch = ?", (e,))} for e, _, _ in seals}
    keys = epoch_keys(keyfile, len(seals))
    triggers = db.execute("SELECT name, sql FROM sqlite_master WHERE type ="
                          " 'trigger'").fetchall()
    for name, _ in triggers:
        db.execute(f"DROP TRIGGER {name}")
    first0 = {n: r[0] for n, r in ranges[0].items()}
    for table, cols in SEALED.items():
        seqcol = cols.split(",")[0]
        rows = db.execute(f"SELECT {cols}, mac FROM {table} ORDER BY {seqcol}"
                          ).fetchall()
        prev = "0" * 64
        for row in rows:
            row = list(row)
            row[1] -= seconds
            h = hashlib.sha256(prev.encode() + b"".join(
                ns(v) for v in row[:-1])).hexdigest()
            mac = row[-1]
            if row[0] >= first0.get(table, 1 << 62):
                e = next(e for e, _, _ in seals
                         if ranges[e][table][0] <= row[0] <= ranges[e][table][1])
                mac = hmac.new(keys[e], b"roigate entry" + h.encode(),
                               hashlib.sha256).hexdigest()
            db.execute(f"UPDATE {table} SET at = ?, prev_hash = ?, hash = ?,"
                       f" mac = ? WHERE {seqcol} = ?", (row[1], prev, h, mac,
                                                       row[0]))
            for e, _, _ in seals:
                r = ranges[e].get(table)
                if r and r[1] == row[0]:
                    r[2] = h
            prev = h
    prev = "0" * 64
    for e, start, end in seals:
        s = seal_of(keys[e], instance, e, start - seconds, end - seconds,
                    ranges[e], prev)
        db.execute("UPDATE seals SET start_at = ?, end_at = ?, prev_seal = ?,"
                   " seal = ? WHERE epoch = ?", (start - seconds, end - seconds,
                                                 prev, s, e))
        for name, (_, _, head) in ranges[e].items():
            db.execute("UPDATE seal_ranges SET head = ? WHERE epoch = ? AND"
                       " name = ?", (head, e, name))
        prev = s
    for _, sql in triggers:
        db.execute(sql)
    db.commit()
    db.close()


def count(g, table):
    db = sqlite3.connect(os.path.join(g.state, "roigate.db"))
    try:
        return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        db.close()


def check_config(g):
    return subprocess.run([os.path.join(BUILD, "roigated"), "-n", "-f",
                           g.conf], capture_output=True, text=True, timeout=30)


def test_four_year_record_retention_is_refused(gateway_factory):
    g = gateway_factory(retention={"records": "4y"})
    r = check_config(g)
    assert r.returncode != 0
    assert "[retention] records is shorter than six years" in r.stderr, r.stderr
    assert "45 CFR 164.316(b)(2)" in r.stderr
    g.settings["retention"]["records"] = "2191d"        # six years less a day
    g.write_conf()
    assert check_config(g).returncode != 0
    g.settings["retention"]["records"] = "6y"
    g.write_conf()
    r = check_config(g)
    assert r.returncode == 0, r.stderr


def test_old_archive_key_still_works_with_a_note(gateway_factory):
    g = gateway_factory(render={"archive_retention": "10d"})
    r = check_config(g)
    assert r.returncode == 0, r.stderr
    assert "archive_retention is deprecated: it is now [retention] archive" \
        in r.stdout, r.stdout
    g.settings["retention"] = {"archive": "10d"}
    g.write_conf()
    assert check_config(g).returncode == 0
    g.settings["retention"] = {"archive": "20d"}
    g.write_conf()
    r = check_config(g)
    assert r.returncode != 0 and "the same setting" in r.stderr, r.stderr


def test_old_finished_job_folders_go_open_ones_stay(gateway_factory):
    g = gateway_factory()
    g.start()
    g.add_recipient("records-desk")
    deliver(g, 4, prefix="ROI-R")
    ids = [g.job_by_packet(f"ROI-R-{i}")["id"] for i in range(4)]
    assert g.stop() == 0
    # Jobs 0-2 reached their final state 40 days ago (the default retention
    # is 30 days); job 1 as failed, job 2 as a held (open) job; job 3 today.
    old = int(time.time()) - 40 * DAY
    db = sqlite3.connect(os.path.join(g.state, "roigate.db"))
    db.execute("UPDATE jobs SET updated_at = ? WHERE id IN (?, ?, ?)",
               (old, *ids[:3]))
    db.execute("UPDATE jobs SET state = 'failed' WHERE id = ?", (ids[1],))
    db.execute("UPDATE jobs SET state = 'held' WHERE id = ?", (ids[2],))
    db.commit()
    db.close()
    folders = [os.path.join(g.state, "jobs", str(i)) for i in ids]
    assert all(os.path.isdir(f) for f in folders)
    g.start()
    wait_for("the expired job folders to go",
             lambda: not os.path.exists(folders[0]) and
             not os.path.exists(folders[1]))
    assert os.path.isdir(folders[2]), "a held job's documents were removed"
    assert os.path.isdir(folders[3]), "a recent job's documents were removed"
    assert "removed the documents of 2 finished jobs" in g.log()
    r = g.roictl("retry", str(ids[1]))
    assert r.returncode != 0
    assert "its documents were removed after [retention] jobs" in r.stderr, r
    # The records stay: removing them is for roictl prune.
    assert count(g, "disclosures") == 8


def test_prune_dry_run_then_prune_and_the_log_still_verifies(gateway_factory):
    g, keyfile = sealed_gateway(gateway_factory)
    deliver(g, 3)
    wait_sealed(g, 6)
    assert g.stop() == 0
    db_path = os.path.join(g.state, "roigate.db")
    age_sealed_log(db_path, keyfile, SEVEN_YEARS)
    r = verify(g, keyfile)
    assert r.returncode == 0, r.stderr          # the aging itself is sound
    old_audit = count(g, "audit")
    g.start()
    deliver(g, 1, prefix="ROI-NEW")

    r = g.roictl("prune", "--dry-run", check=0)
    assert "would remove records sealed before" in r.stdout, r.stdout
    assert "disclosures  6 entries (1 to 6)" in r.stdout, r.stdout
    assert f"audit        {old_audit} entries (1 to {old_audit})" in r.stdout
    assert count(g, "disclosures") == 8 and count(g, "prunes") == 0
    plan = g.json("prune", "--dry-run")
    assert plan["dry_run"] is True and plan["record"] == 0

    before = db_path + ".before"
    src, dst = sqlite3.connect(db_path), sqlite3.connect(before)
    src.backup(dst)
    src.close(), dst.close()
    r = g.roictl("prune", check=0)
    assert "prune record 1 written (sealed)" in r.stdout, r.stdout
    wait_for("the removal to finish", lambda: "prune 1 done" in g.log())
    assert "removed 6 disclosure" in g.log()
    assert count(g, "disclosures") == 2
    assert count(g, "audit") > 0
    # A second prune finds nothing more.
    r = g.roictl("prune", check=0)
    assert "nothing to prune" in r.stdout, r.stdout

    wait_sealed(g, 8)
    r = g.roictl("verify-log", "--key-file", keyfile, check=0)
    assert "intact and sealed" in r.stdout, r
    assert "disclosure log entries 1 to 6" in r.stdout, r.stdout
    assert "under a sealed record" in r.stdout
    r = g.roictl("verify-log", check=0)         # the unkeyed chain too
    assert "intact: 2 entries" in r.stdout, r
    # The prune and who asked for it are in the audit log.
    ops = [e["op"] for e in g.jsonl("audit", "--limit", "20")]
    assert "prune" in ops
    assert g.stop() == 0
    r = verify(g, keyfile)
    assert r.returncode == 0, r.stderr
    assert "disclosure log entries 1 to 6, audit log entries 1 to" in r.stdout
    assert "pruned on" in r.stdout, r.stdout
    assert "by uid" in r.stdout

    # A removal cut short by a stop: the entries of the cut are back as if
    # their transactions had not run.  They verify as still to go, and the
    # daemon removes them at start.
    put_back(db_path, before, "disclosures", 6)
    r = verify(g, keyfile)
    assert r.returncode == 0, r.stderr
    assert "(6 of them still to be removed)" in r.stdout, r.stdout
    g.start()
    wait_for("the removal to be taken up", lambda: count(g, "disclosures") == 2)
    assert "6 entries still to remove; removing them" in g.log()
    assert g.stop() == 0
    assert verify(g, keyfile).returncode == 0


def put_back(db_path, copy, table, upto):
    db = sqlite3.connect(db_path)
    triggers = db.execute("SELECT name, sql FROM sqlite_master WHERE type ="
                          " 'trigger' AND tbl_name = ?", (table,)).fetchall()
    for name, _ in triggers:
        db.execute(f"DROP TRIGGER {name}")
    db.execute("ATTACH DATABASE ? AS old", (copy,))
    db.execute(f"INSERT INTO {table} SELECT * FROM old.{table} WHERE seq <= ?",
               (upto,))
    db.commit()
    db.execute("DETACH DATABASE old")
    for _, sql in triggers:
        db.execute(sql)
    db.commit()
    db.close()


def test_prune_refused_without_sealing(gw):
    r = gw.roictl("prune", "--dry-run")
    assert r.returncode != 0
    assert "pruned only on a sealed log" in r.stderr, r.stderr


def forge_prune(db_path, state_dir, cut, at):
    """The daemon's user (who holds the current sealing key) removes the
    disclosure entries up to cut, the end of a sealed epoch, and writes a
    prune record for them marked with the current key."""
    db = sqlite3.connect(db_path)
    (epoch, head), = db.execute(
        "SELECT epoch, head FROM seal_ranges WHERE name = 'disclosures' AND"
        " last_seq = ? ORDER BY epoch LIMIT 1", (cut,)).fetchall()
    with open(os.path.join(state_dir, "seal.key")) as f:
        key = bytes.fromhex(next(l.split()[1] for l in f if l.startswith("key ")))
    saved = db.execute("SELECT sql FROM sqlite_master WHERE name ="
                       " 'disclosures_no_delete'").fetchone()[0]
    db.execute("DROP TRIGGER disclosures_no_delete")
    db.execute("DELETE FROM disclosures WHERE seq <= ?", (cut,))
    db.execute(saved)
    row = [1, at, "uid 0 (root)", at, f"disclosures={cut}:{epoch}:{head}"]
    prev = "0" * 64
    h = hashlib.sha256(prev.encode() + b"".join(ns(v) for v in row)).hexdigest()
    mac = hmac.new(key, b"roigate entry" + h.encode(), hashlib.sha256).hexdigest()
    db.execute("INSERT INTO prunes (seq, at, actor, before_at, cuts, prev_hash,"
               " hash, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
               (*row, prev, h, mac))
    db.commit()
    db.close()


def seal_current_epoch(db_path, state_dir, start, end):
    """Seal the open epoch as the daemon would, with the sealing key the
    daemon's user holds, but at times of the attacker's choosing."""
    with open(os.path.join(state_dir, "seal.key")) as f:
        lines = [l.split() for l in f]
    key = bytes.fromhex(next(l[1] for l in lines if l[0] == "key"))
    epoch = int(next(l[1] for l in lines if l[0] == "epoch"))
    first = {l[1]: int(l[2]) for l in lines if l[0] == "first"}
    db = sqlite3.connect(db_path)
    instance = db.execute("SELECT value FROM meta WHERE name = 'instance'"
                          ).fetchone()[0]
    prev = db.execute("SELECT seal FROM seals WHERE epoch = ?",
                      (epoch - 1,)).fetchone()[0]
    ranges = {}
    for table, cols in SEALED.items():
        seqcol = cols.split(",")[0]
        last = db.execute(f"SELECT {seqcol}, hash FROM {table} ORDER BY"
                          f" {seqcol} DESC LIMIT 1").fetchone() or (0, "0" * 64)
        ranges[table] = (first.get(table, 0), last[0], last[1])
    seal = seal_of(key, instance, epoch, start, end, ranges, prev)
    db.execute("INSERT INTO seals VALUES (?, ?, ?, ?, ?)",
               (epoch, start, end, prev, seal))
    for name, (f, l, h) in ranges.items():
        db.execute("INSERT INTO seal_ranges VALUES (?, ?, ?, ?, ?)",
                   (epoch, name, f, l, h))
    db.commit()
    db.close()


def test_forged_prune_is_found(gateway_factory):
    g, keyfile = sealed_gateway(gateway_factory)
    # One packet sealed in an epoch of its own, then two more: an epoch
    # ends inside the log, where a prune may cut.
    deliver(g, 1)
    wait_sealed(g, 2)
    deliver(g, 2, prefix="ROI-S2")
    wait_sealed(g, 6)
    assert g.stop() == 0
    db_path = os.path.join(g.state, "roigate.db")
    db = sqlite3.connect(db_path)
    cut = db.execute("SELECT MAX(last_seq) FROM seal_ranges WHERE name ="
                     " 'disclosures' AND last_seq < 6").fetchone()[0]
    db.close()
    assert cut and cut >= 1
    copy = db_path + ".copy"
    shutil.copy(db_path, copy)

    # Dated now: the entries it removes were sealed minutes ago.
    forge_prune(db_path, g.state, cut, int(time.time()))
    r = verify(g, keyfile)
    assert r.returncode == 65, r
    assert "TAMPERED: prune record 1" in r.stderr, r.stderr
    assert "less than 6 years before its date" in r.stderr
    assert "forged" in r.stderr

    # Dated seven years ahead, to make them look old enough.
    shutil.copy(copy, db_path)
    forge_prune(db_path, g.state, cut, int(time.time()) + SEVEN_YEARS)
    r = verify(g, keyfile)
    assert r.returncode == 65, r
    assert "prune record 1 is dated" in r.stderr, r.stderr
    assert "outside the epoch it was written in" in r.stderr

    # Dated ahead, and its own epoch sealed ahead with the current key too.
    shutil.copy(copy, db_path)
    ahead = int(time.time()) + SEVEN_YEARS
    forge_prune(db_path, g.state, cut, ahead)
    seal_current_epoch(db_path, g.state, ahead - 10, ahead + 10)
    r = verify(g, keyfile)
    assert r.returncode == 65, r
    assert "ends in the future: it was made with a forged time" in r.stderr, \
        r.stderr

    # Removed with no prune record at all: as before, a removal.
    shutil.copy(copy, db_path)
    db = sqlite3.connect(db_path)
    saved = db.execute("SELECT sql FROM sqlite_master WHERE name ="
                       " 'disclosures_no_delete'").fetchone()[0]
    db.execute("DROP TRIGGER disclosures_no_delete")
    db.execute("DELETE FROM disclosures WHERE seq <= ?", (cut,))
    db.execute(saved)
    db.commit()
    db.close()
    r = verify(g, keyfile)
    assert r.returncode == 65 and "missing" in r.stderr, r.stderr
