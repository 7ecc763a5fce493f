"""`roictl status` reads counts the daemon keeps as jobs change state
(src/counts.c), not a count of the table per request: after deliveries,
retries, refusals, holds and cancels, and across a restart, they are the
table's own counts."""
import os
import time

from gateway import Gateway, Packet, wait_state


def table_counts(gw):
    with gw.db() as db:
        states = dict(db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state"))
        tr = dict(db.execute("SELECT transport, COUNT(*) FROM jobs WHERE state NOT"
                             " IN ('delivered', 'failed', 'cancelled') GROUP BY"
                             " transport"))
    return states, tr


def assert_counts_match(gw):
    st = gw.json("status")
    states, tr = table_counts(gw)
    assert {k: v for k, v in st["states"].items() if v} == states
    assert st["transports"] == tr


def test_status_counts_follow_every_change(tmp_path):
    # A retried job waits an hour: it stays deferred while the test looks.
    gw = Gateway(str(tmp_path / "gw"), spool={"settle_ms": "50"},
                 queue={"job_timeout": "120s", "backoff_base": "1h",
                        "backoff_max": "1h"})
    gw.start()
    try:
        assert_counts_match(gw)              # counted at start-up, then followed
        gw.add_recipient("records-desk")
        gw.add_recipient("later", transport="flaky", address="tempfail:50:3600")
        gw.add_recipient("never", transport="flaky", address="permfail")
        for pid, rcpt in (("ROI-ST-1", "records-desk"), ("ROI-ST-2", "later"),
                          ("ROI-ST-3", "never"), ("ROI-ST-4", "later"),
                          ("ROI-ST-5", "records-desk")):
            gw.drop(Packet(pid, recipient=rcpt))
        wait_state(gw, "ROI-ST-1", "delivered", timeout=120)
        wait_state(gw, "ROI-ST-5", "delivered", timeout=120)
        wait_state(gw, "ROI-ST-3", ("failed", "held"), timeout=120)
        wait_state(gw, "ROI-ST-2", "deferred", timeout=120)
        j4 = wait_state(gw, "ROI-ST-4", "deferred", timeout=120)
        assert_counts_match(gw)
        # The oldest waiting job (the index of waiting jobs by age).
        age = gw.json("status")["oldest_queued_age"]
        with gw.db() as db:
            oldest = db.execute("SELECT MIN(created_at) FROM jobs WHERE state IN"
                                " ('queued', 'deferred')").fetchone()[0]
        assert age is not None and abs(age - (int(time.time()) - oldest)) <= 2
        gw.roictl("hold", str(j4["id"]), check=0)
        assert_counts_match(gw)
        j2 = gw.job_by_packet("ROI-ST-2")
        gw.roictl("cancel", str(j2["id"]), check=0)
        assert_counts_match(gw)
        st = gw.json("status")
        assert st["states"]["delivered"] == 2 and st["states"]["held"] >= 1
        assert st["oldest_queued_age"] is None      # nothing waits any more
    finally:
        gw.stop()
    gw.start()
    try:
        assert_counts_match(gw)
    finally:
        gw.stop()
