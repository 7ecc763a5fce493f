"""Forward-secure sealing (docs/disclosure-log.md): what an attacker with
the daemon's own rights can do to the database, and what the verification
key still proves."""
import hashlib
import hmac
import os
import re
import sqlite3
import subprocess
import time

from gateway import BUILD, Packet, wait_for, wait_state

COLS = ("seq, at, job_id, packet_id, mrn, patient_name, recipient_id,"
        " recipient_name, recipient_address, description, purpose, basis,"
        " authorization_id, transport, remote_id, outcome, detail, pages,"
        " output_sha256, accountable")


def setup_seal(g):
    r = subprocess.run([os.path.join(BUILD, "roigated"), "-f", g.conf,
                        "--setup-seal"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert "keep it off this machine" in r.stdout
    key = re.search(r"RGV1(-[0-9a-f]{8}){9}", r.stdout).group(0)
    path = os.path.join(g.root, "verification.key")
    with open(path, "w") as f:
        f.write(key + "\n")
    return path


def sealed_gateway(gateway_factory, interval="1s"):
    g = gateway_factory(log={"seal_interval": interval})
    keyfile = setup_seal(g)
    g.start()
    g.add_recipient("records-desk")
    return g, keyfile


def deliver(g, n, prefix="ROI-S"):
    for i in range(n):
        g.drop(Packet(f"{prefix}-{i}"))
    for i in range(n):
        wait_state(g, f"{prefix}-{i}", "delivered", timeout=60)


def verify(g, keyfile, *extra):
    return subprocess.run([os.path.join(BUILD, "roigate-verify"), "--db",
                           os.path.join(g.state, "roigate.db"), "--key-file",
                           keyfile, *extra], capture_output=True, text=True,
                          timeout=60)


def wait_sealed(g, seq, table="disclosures"):
    """Until a seal covers row seq of a sealed table."""
    def covered():
        db = sqlite3.connect(os.path.join(g.state, "roigate.db"))
        try:
            r = db.execute("SELECT MAX(last_seq) FROM seal_ranges WHERE name ="
                           " ?", (table,)).fetchone()[0]
        finally:
            db.close()
        return r is not None and r >= seq
    wait_for(f"a seal over {table} row {seq}", covered, timeout=20)


def edit_is_noticed(g, keyfile, table, sql):
    """Once sealed, the daemon stopped: roigate-verify passes; then an edit
    of the table made with the daemon's rights (its update trigger
    dropped) is noticed and the table named."""
    wait_sealed(g, 1, table)
    g.stop()
    r = verify(g, keyfile)
    assert r.returncode == 0, r.stdout + r.stderr
    with sqlite3.connect(os.path.join(g.state, "roigate.db")) as db:
        db.execute(f"DROP TRIGGER {table}_no_update")
        db.execute(sql)
    r = verify(g, keyfile)
    assert r.returncode != 0 and table in r.stdout + r.stderr


def ns(v):
    b = ("" if v is None else str(v)).encode()
    return b"%d:%s," % (len(b), b)


def rewrite_chain(db, start, key=None):
    """Recompute the unkeyed chain from entry start on, as the daemon's
    user could; with key (a stolen epoch key), the macs too."""
    rows = db.execute(f"SELECT {COLS}, prev_hash FROM disclosures WHERE seq >="
                      f" ? ORDER BY seq", (start,)).fetchall()
    prev = rows[0][20]
    for row in rows:
        h = hashlib.sha256(prev.encode() +
                           b"".join(ns(v) for v in row[:20])).hexdigest()
        mac = None
        if key is not None:
            mac = hmac.new(key, b"roigate entry" + h.encode(),
                           hashlib.sha256).hexdigest()
            db.execute("UPDATE disclosures SET prev_hash = ?, hash = ?, mac = ?"
                       " WHERE seq = ?", (prev, h, mac, row[0]))
        else:
            db.execute("UPDATE disclosures SET prev_hash = ?, hash = ? WHERE "
                       "seq = ?", (prev, h, row[0]))
        prev = h


def drop_triggers(db, table):
    saved = db.execute("SELECT name, sql FROM sqlite_master WHERE type = "
                       "'trigger' AND tbl_name = ?", (table,)).fetchall()
    for name, _ in saved:
        db.execute(f"DROP TRIGGER {name}")
    return saved


def restore_triggers(db, saved):
    for _, sql in saved:
        db.execute(sql)


def test_intact_sealed_log_verifies_across_restart_and_idle_epochs(gateway_factory):
    g, keyfile = sealed_gateway(gateway_factory)
    deliver(g, 2)
    time.sleep(2.5)                     # epochs with no entries
    assert g.stop() == 0
    time.sleep(2.5)                     # epochs missed while stopped
    g.start()
    deliver(g, 1, prefix="ROI-T")
    wait_sealed(g, 6)
    r = g.roictl("verify-log", "--key-file", keyfile, check=0)
    assert "intact and sealed" in r.stdout, r
    assert g.stop() == 0
    r = verify(g, keyfile)
    assert r.returncode == 0, r.stderr
    assert "6 disclosure entries" in r.stdout, r.stdout
    db = sqlite3.connect(os.path.join(g.state, "roigate.db"))
    epochs = [e for (e,) in db.execute("SELECT epoch FROM seals ORDER BY epoch")]
    assert epochs == list(range(len(epochs))) and len(epochs) >= 6
    # The checkpoints went to the log line too.
    assert "roigate-checkpoint v1" in g.log()


def test_not_set_up_is_a_problem(gw):
    st = gw.roictl("status", check=0).stdout
    assert "not sealed" in st, st
    r = gw.roictl("verify-log", check=0)
    assert "proves nothing" in r.stdout


def test_rewritten_entry_is_named(gateway_factory):
    g, keyfile = sealed_gateway(gateway_factory)
    deliver(g, 16)
    wait_sealed(g, 32)
    assert g.stop() == 0
    db = sqlite3.connect(os.path.join(g.state, "roigate.db"))
    saved = drop_triggers(db, "disclosures")
    db.execute("UPDATE disclosures SET recipient_address = '/tmp/elsewhere'"
               " WHERE seq = 31")
    rewrite_chain(db, 31)
    restore_triggers(db, saved)
    db.commit()
    db.close()
    g.start()
    # The unkeyed chain was recomputed: it cannot tell.
    r = g.roictl("verify-log", check=0)
    assert "proves nothing" in r.stdout
    r = g.roictl("verify-log", "--key-file", keyfile)
    assert r.returncode == 65, r
    assert "entry 31" in r.stderr, r.stderr
    r = verify(g, keyfile)
    assert r.returncode == 65 and "entry 31" in r.stderr, r.stderr


def test_stolen_current_key_cannot_remake_old_entries(gateway_factory):
    g, keyfile = sealed_gateway(gateway_factory)
    deliver(g, 2)
    wait_sealed(g, 4)
    time.sleep(1.5)
    assert g.stop() == 0
    # The thief copies today's sealing key and rewrites entry 2 with it.
    with open(os.path.join(g.state, "seal.key")) as f:
        stolen = bytes.fromhex(re.search(r"^key ([0-9a-f]{64})$", f.read(),
                                         re.M).group(1))
    db = sqlite3.connect(os.path.join(g.state, "roigate.db"))
    saved = drop_triggers(db, "disclosures")
    db.execute("UPDATE disclosures SET recipient_name = 'Somebody Else'"
               " WHERE seq = 2")
    rewrite_chain(db, 2, key=stolen)
    restore_triggers(db, saved)
    db.commit()
    db.close()
    # ...and the daemon keeps sealing with it afterwards.
    g.start()
    deliver(g, 1, prefix="ROI-U")
    wait_sealed(g, 6)
    assert g.stop() == 0
    r = verify(g, keyfile)
    assert r.returncode == 65, r
    assert "entry 2" in r.stderr, r.stderr


def test_cut_tail_is_found_by_checkpoint(gateway_factory):
    g, keyfile = sealed_gateway(gateway_factory)
    deliver(g, 2)
    assert g.stop() == 0                # the shutdown seal sends a checkpoint
    line = [m for m in re.findall(r"roigate-checkpoint v1 [^\n]*", g.log())
            if "disclosures=4:" in m][-1]
    g.start()
    r = g.roictl("verify-log", "--checkpoint", line, check=0)
    assert "checkpoint held" in r.stdout, r
    assert g.stop() == 0
    db = sqlite3.connect(os.path.join(g.state, "roigate.db"))
    drop_triggers(db, "disclosures")
    drop_triggers(db, "counters")
    drop_triggers(db, "seals")
    drop_triggers(db, "seal_ranges")
    db.execute("DELETE FROM disclosures WHERE seq >= 3")
    db.execute("UPDATE counters SET value = 2 WHERE name = 'disclosure_head'")
    db.commit()
    db.close()
    r = verify(g, keyfile, "--checkpoint", line)
    assert r.returncode == 65, r
    assert "no longer holds entry 4" in r.stderr, r.stderr


def test_wrong_key_is_refused_not_tampering(gateway_factory):
    g, keyfile = sealed_gateway(gateway_factory)
    deliver(g, 1)
    wait_sealed(g, 2)
    other = os.path.join(g.root, "other.key")
    # A well-formed key of some other log (checksum computed as roigate does).
    k0 = bytes(range(32))
    check = hashlib.sha256(b"roigate verification key" + k0).hexdigest()[:8]
    hx = k0.hex()
    with open(other, "w") as f:
        f.write("RGV1-" + "-".join(hx[i:i + 8] for i in range(0, 64, 8)) +
                "-" + check + "\n")
    r = g.roictl("verify-log", "--key-file", other)
    assert r.returncode == 77, r
    assert "does not belong to this log" in r.stderr
    assert "TAMPER" not in r.stderr.upper()
    r = verify(g, other)
    assert r.returncode == 77, r
    assert "does not belong to this log" in r.stderr
