"""Seeing the queue: roictl shape (Postfix's qshape) and list --json with
the fields postqueue -j users look for."""
import json
import time


from gateway import Packet, wait_for, wait_state


def test_shape_buckets_waiting_jobs_by_recipient_and_age(gw):
    gw.add_recipient("slow-fax", transport="flaky", address="ok")
    gw.add_recipient("other-desk")
    gw.stop()
    for i in range(3):
        gw.drop(Packet(f"ROI-SH-A{i}", recipient="slow-fax"))
    gw.drop(Packet("ROI-SH-B0", recipient="other-desk"))
    gw.start()
    wait_for("4 jobs", lambda: len(gw.jobs()) == 4)
    # Age them as a witness: arrival times 7 minutes and 2 days ago.
    gw.stop()
    now = int(time.time())
    import sqlite3
    db = sqlite3.connect(f"{gw.state}/roigate.db")
    # next_at is in milliseconds (schema 6): an hour from now.
    db.execute("UPDATE jobs SET state = 'queued', next_at = ?",
               ((now + 3600) * 1000,))
    db.execute("UPDATE jobs SET created_at = ? WHERE recipient_id = 'slow-fax'",
               (now - 7 * 60,))
    db.execute("UPDATE jobs SET created_at = ? WHERE recipient_id = "
               "'other-desk'", (now - 2 * 86400,))
    db.commit()
    db.close()
    gw.start()
    sh = gw.json("shape")
    assert sh["buckets"] == ["5m", "10m", "20m", "40m", "80m", "160m", "320m",
                             "640m", "1d", "1d+"]
    assert sh["total"]["total"] == 4
    rows = {r["recipient"]: r for r in sh["recipients"]}
    assert [r["recipient"] for r in sh["recipients"]] == ["slow-fax",
                                                          "other-desk"]
    assert rows["slow-fax"]["counts"][1] == 3            # 5m < age <= 10m
    assert rows["other-desk"]["counts"][-1] == 1         # 1d+
    assert rows["slow-fax"]["transport"] == "flaky"
    text = gw.roictl("shape", check=0).stdout.splitlines()
    assert text[0].split() == ["T"] + sh["buckets"]
    assert text[1].split() == ["TOTAL", "4", "0", "3", "0", "0", "0", "0", "0",
                               "0", "0", "1"]
    assert text[2].split()[:3] == ["slow-fax", "3", "0"]


def test_list_json_has_postqueue_fields(gw):
    gw.drop(Packet("ROI-LJ-1"))
    wait_state(gw, "ROI-LJ-1", "delivered")
    r = gw.roictl("--json", "list", check=0)
    j = json.loads(r.stdout.splitlines()[0])
    for k in ("id", "state", "recipient", "transport", "attempts",
              "arrival_time", "next_attempt", "last_error", "pages", "bytes"):
        assert k in j or k == "last_error", k
    assert isinstance(j["arrival_time"], int) and j["arrival_time"] > 0
    assert j["next_attempt"] is None            # delivered: none
    assert j["pages"] == 4 and j["bytes"] > 1000
    assert j["recipient"] == "records-desk" and j["transport"] == "local"
