"""Durability: kill -9 the daemon anywhere, restart it, and every packet is
delivered exactly once with its log entries, or still queued; nothing
accepted is lost; the disclosure log stays intact.  And a log row changed
behind the daemon's back is found by verify-log."""
import os
import random
import sqlite3
import time

import pytest

from gateway import Packet, sha256, wait_for, wait_state


def _deliveries(gw, packet_id):
    base = os.path.join(gw.outbox, "records-desk")
    if not os.path.isdir(base):
        return []
    return [n for n in os.listdir(base)
            if n == packet_id or n == f".{packet_id}.part"]


def _check_exactly_once(gw, packet):
    j = wait_state(gw, packet.packet_id, "delivered", timeout=30)
    assert _deliveries(gw, packet.packet_id) == [packet.packet_id]
    folder = os.path.join(gw.outbox, "records-desk", packet.packet_id)
    assert os.listdir(folder) == [f"{packet.packet_id}.pdf"]
    with open(os.path.join(folder, f"{packet.packet_id}.pdf"), "rb") as f:
        sent = sha256(f.read())
    entries = gw.job(j["id"])["disclosures"]
    outcomes = [e["outcome"] for e in entries]
    # What arrived is what the log says was sent, and a copy of it is kept.
    assert entries[-1]["output_sha256"] == sent
    with open(gw.archived(j["id"], j["attempts"]), "rb") as f:
        assert sha256(f.read()) == sent
    # Every send was logged before it was made, and it ends delivered once.
    assert outcomes[0] == "attempt"
    assert outcomes[-1] == "delivered"
    assert outcomes.count("delivered") == 1
    # Every attempt has its outcome (interrupted when the daemon died).
    for i, o in enumerate(outcomes):
        if o == "attempt":
            assert outcomes[i + 1] in ("delivered", "deferred", "failed",
                                       "interrupted"), outcomes
    return j, outcomes


CRASH_POINTS = [
    # (where, what the log must show for the job)
    ("intake_after_rename", ["attempt", "delivered"]),
    ("intake_after_commit", ["attempt", "delivered"]),
    # The clerk's folder half removed: no half packet is left to be refused.
    ("spool_mid_removal", ["attempt", "delivered"]),
    ("queue_after_attempt", ["attempt", "interrupted", "attempt", "delivered"]),
    ("queue_before_outcome", ["attempt", "interrupted", "attempt", "delivered"]),
]


@pytest.mark.parametrize("point,outcomes", CRASH_POINTS,
                         ids=[c[0] for c in CRASH_POINTS])
def test_kill_at_crash_point(gateway_factory, point, outcomes):
    gw = gateway_factory()
    gw.start()
    gw.add_recipient("records-desk")
    gw.stop()
    gw.start(env={"ROIGATE_TEST_CRASH": point})
    p = Packet("ROI-D-" + point.upper())
    gw.drop(p)
    rc = gw.wait_exit()
    assert rc == -9, f"the daemon did not die at {point}:\n" + gw.log()
    assert f"test crash point {point} reached" in gw.log()
    gw.start()
    j, got = _check_exactly_once(gw, p)
    assert got == outcomes
    if point == "queue_before_outcome":
        # The first send did happen: the retry found it and did not copy.
        assert "already" in gw.job(j["id"])["disclosures"][-1]["detail"]
    # A folder left in incoming/ after its job was committed is known for
    # the same packet and removed, never refused as a second one.
    wait_for("incoming/ to be empty", lambda: gw.incoming_names() == [])
    assert gw.rejected_names() == []
    assert len(gw.jobs()) == 1
    r = gw.roictl("verify-log", check=0)
    assert f"intact: {len(outcomes)} entries" in r.stdout


def test_random_kills_lose_nothing_and_send_nothing_twice(gateway_factory):
    gw = gateway_factory(queue={"workers": "3"})
    gw.start()
    gw.add_recipient("records-desk")
    rnd = random.Random(20261124)
    packets = [Packet(f"ROI-R-{i:03d}") for i in range(24)]
    todo = list(packets)
    kills = 0
    while todo or kills < 6:
        for p in todo[:4]:
            gw.drop(p)
        todo = todo[4:]
        # A random moment: mid-intake, mid-send, between send and record.
        time.sleep(rnd.uniform(0.0, 0.35))
        gw.kill()
        kills += 1
        gw.start()
    for p in packets:
        _check_exactly_once(gw, p)
    assert len(gw.jobs()) == len(packets)
    wait_for("incoming/ to be empty", lambda: gw.incoming_names() == [])
    assert gw.rejected_names() == []
    r = gw.roictl("verify-log", check=0)
    assert "intact" in r.stdout


def test_tampering_with_a_log_row_is_detected(gw):
    for i in range(3):
        gw.drop(Packet(f"ROI-X-{i}"))
    for i in range(3):
        wait_state(gw, f"ROI-X-{i}", "delivered")
    gw.roictl("verify-log", check=0)
    db = sqlite3.connect(os.path.join(gw.state, "roigate.db"))
    # The triggers refuse a plain edit...
    with pytest.raises(sqlite3.DatabaseError):
        db.execute("UPDATE disclosures SET recipient_name = 'Somebody Else' "
                   "WHERE seq = 3")
        db.commit()
    with pytest.raises(sqlite3.DatabaseError):
        db.execute("DELETE FROM disclosures WHERE seq = 6")
        db.commit()
    db.rollback()
    # ...so a determined tamperer drops them first; the chain still tells.
    triggers = [r[0] for r in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND "
        "tbl_name = 'disclosures'")]
    assert triggers
    for t in triggers:
        db.execute(f"DROP TRIGGER {t}")
    db.execute("UPDATE disclosures SET recipient_name = 'Somebody Else' "
               "WHERE seq = 3")
    db.commit()
    db.close()
    r = gw.roictl("verify-log")
    assert r.returncode == 65, r
    assert "entry 3" in r.stderr, r.stderr
    # An operator also sees it in status.
    st = gw.roictl("status", check=0).stdout
    assert "append-only triggers are missing" in st, st


def test_removing_the_last_entries_is_detected(gw):
    gw.drop(Packet("ROI-X-TAIL"))
    wait_state(gw, "ROI-X-TAIL", "delivered")
    db = sqlite3.connect(os.path.join(gw.state, "roigate.db"))
    for t in ("disclosures_no_delete",):
        db.execute(f"DROP TRIGGER {t}")
    db.execute("DELETE FROM disclosures WHERE seq = 2")
    db.commit()
    db.close()
    r = gw.roictl("verify-log")
    assert r.returncode == 65
    assert "entry 2 is missing from the end of the log" in r.stderr, r.stderr


def test_chain_recomputes_independently(gw):
    """The chain as docs/disclosure-log.md describes it, recomputed in
    Python from the database file: an auditor needs no roigate code."""
    import hashlib
    for i in range(2):
        gw.drop(Packet(f"ROI-A-{i}"))
    for i in range(2):
        wait_state(gw, f"ROI-A-{i}", "delivered")

    def ns(v):
        b = ("" if v is None else str(v)).encode()
        return b"%d:%s," % (len(b), b)
    prev = "0" * 64
    n = 0
    for row in gw.db().execute(
            "SELECT seq, at, job_id, packet_id, mrn, patient_name, recipient_id,"
            " recipient_name, recipient_address, description, purpose, basis,"
            " authorization_id, transport, remote_id, outcome, detail, pages,"
            " output_sha256, accountable, prev_hash, hash FROM disclosures "
            "ORDER BY seq"):
        h = hashlib.sha256(prev.encode() +
                           b"".join(ns(v) for v in row[:20])).hexdigest()
        assert row[20] == prev and row[21] == h, f"entry {row[0]}"
        prev = h
        n += 1
    assert n == 4
