"""Evidence is never overwritten or forgotten: roigated makes a new database
only in an empty state folder (or when told to with --init), refuses a
missing, empty or damaged one beside the records of an earlier one, and
names what it keeps so that nothing repeats across databases."""
import os
import random
import sqlite3
import subprocess

import pytest

from gateway import BUILD, Packet, sha256, wait_state


def _deliver_some(gw, n=3):
    for i in range(n):
        gw.drop(Packet(f"ROI-E-{i}"))
    for i in range(n):
        wait_state(gw, f"ROI-E-{i}", "delivered")


def _start_fails(gw):
    r = subprocess.run([os.path.join(BUILD, "roigated"), "-f", gw.conf],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0, r
    return r.stderr


def _archive(gw):
    d = os.path.join(gw.state, "archive")
    return {n: sha256(open(os.path.join(d, n), "rb").read())
            for n in sorted(os.listdir(d))}


@pytest.mark.parametrize("how", ["deleted", "empty", "garbage"])
def test_a_lost_database_is_refused_not_made_anew(gw, how):
    _deliver_some(gw)
    before = _archive(gw)
    assert gw.stop() == 0
    db = os.path.join(gw.state, "roigate.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.unlink(db + suffix)
    if how == "empty":
        open(db, "w").close()
    elif how == "garbage":
        with open(db, "wb") as f:
            f.write(random.Random(7).randbytes(8192))
    err = _start_fails(gw)
    if how == "garbage":
        assert "roigate.db" in err and "restore it from the backup" in err, err
    else:
        assert "missing or empty" in err, err
        assert "jobs/ (3 entries)" in err and "archive/ (3 entries)" in err, err
        assert "restore roigate.db from the backup" in err, err
        assert "--init" in err
    # Nothing was touched: no new database, every job folder and copy kept.
    assert _archive(gw) == before
    assert sorted(os.listdir(os.path.join(gw.state, "jobs"))) == ["1", "2", "3"]
    assert gw.rejected_names() == []
    if how == "deleted":
        assert not os.path.exists(db)


def test_a_damaged_database_is_refused(gw):
    _deliver_some(gw, 20)
    assert gw.stop() == 0
    db = os.path.join(gw.state, "roigate.db")
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("VACUUM")       # every page in use: the damage lands in one
    con.close()
    size = os.path.getsize(db)
    assert size > 40960
    with open(db, "r+b") as f:
        f.seek((size // 2) & ~4095)
        f.write(random.Random(8).randbytes(8192))
    err = _start_fails(gw)
    assert "is damaged (SQLite's quick_check:" in err, err
    assert "restore it from the backup" in err


def test_init_starts_anew_and_keeps_the_old_records(gw):
    _deliver_some(gw)
    old = gw.instance()
    before = _archive(gw)
    assert all(n.startswith(old + "-") for n in before)
    assert gw.stop() == 0
    os.unlink(os.path.join(gw.state, "roigate.db"))
    r = subprocess.run([os.path.join(BUILD, "roigated"), "-f", gw.conf,
                        "--init"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "database ready" in r.stdout
    kept = [n for n in os.listdir(gw.state) if n.startswith("previous-")]
    assert len(kept) == 1
    prev = os.path.join(gw.state, kept[0])
    assert sorted(os.listdir(os.path.join(prev, "jobs"))) == ["1", "2", "3"]
    assert {n: sha256(open(os.path.join(prev, "archive", n), "rb").read())
            for n in os.listdir(os.path.join(prev, "archive"))} == before
    gw.start()
    gw.add_recipient("records-desk")
    new = gw.instance()
    assert new != old and len(new) == 16
    # Job numbers start again, under names that cannot meet the old ones.
    p = Packet("ROI-E-AFTER")
    gw.drop(p)
    j = wait_state(gw, p.packet_id, "delivered")
    assert j["id"] == 1
    assert os.path.exists(gw.archived(1, 1))
    assert not os.path.exists(os.path.join(prev, "archive",
                                           os.path.basename(gw.archived(1, 1))))
