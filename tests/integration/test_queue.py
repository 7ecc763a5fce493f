"""The queue: retries with backoff, permanent failures, workers that crash
or hang, and the operator's hold / release / retry / cancel."""
import os

import pytest

from gateway import Packet, wait_for, wait_state


def _events(gw, job_id):
    return [(e["from"], e["to"]) for e in gw.job(job_id)["events"]]


def test_tempfail_is_retried_with_backoff_then_delivered(gw):
    gw.add_recipient("busy-line", transport="flaky", address="tempfail:2")
    gw.drop(Packet("ROI-Q-TEMP", recipient="busy-line"))
    j = wait_state(gw, "ROI-Q-TEMP", "delivered")
    show = gw.job(j["id"])
    assert show["job"]["attempts"] == 3
    tos = [e["to"] for e in show["events"]]
    assert tos.count("deferred") == 2
    # The second wait is longer than the first (exponential backoff).
    deferred = [e for e in show["events"] if e["to"] == "deferred"]
    assert all("temporary failure on attempt" in e["reason"] for e in deferred)
    outcomes = [e["outcome"] for e in show["disclosures"]]
    assert outcomes == ["attempt", "deferred", "attempt", "deferred",
                        "attempt", "delivered"]
    assert len(gw.flaky_deliveries()) == 1
    assert gw.flaky_deliveries()[0][2] == "3"      # delivered on attempt 3


# (backoff_base, backoff_max, temporary failures, the waits between attempts)
BACKOFF = [
    ("1s", "2s", 3, [1, 2, 2]),                 # base, doubled, capped
    ("250ms", "1s", 4, [0.25, 0.5, 1, 1]),      # less than a second, too
]


@pytest.mark.parametrize("base,cap,fails,waits", BACKOFF)
def test_backoff_doubles_up_to_its_cap(gateway_factory, base, cap, fails, waits):
    """When the attempts reached the transport (its own record of each
    call), not the schedule the daemon wrote down: each wait is at least
    the backoff (never early) and not much more (a worker's start and the
    packet's rendering, kept short here: no leak gate, whose OCR is not
    what this measures)."""
    gw = gateway_factory(queue={"backoff_base": base, "backoff_max": cap},
                         render={"verify": "off"})
    gw.start()
    gw.add_recipient("busy-line", transport="flaky", address=f"tempfail:{fails}")
    gw.drop(Packet("ROI-Q-BACKOFF", recipient="busy-line"))
    wait_state(gw, "ROI-Q-BACKOFF", "delivered", timeout=30)
    calls = gw.flaky_calls()
    assert [c[2] for c in calls] == list(range(1, fails + 2)), calls
    got = [b[3] - a[3] for a, b in zip(calls, calls[1:])]
    for i, (g, w) in enumerate(zip(got, waits)):
        assert w - 0.05 <= g <= w + 0.5, (
            f"wait {i + 1} was {g:.3f} s, want {w} s; all: {got}")
    assert [d[2] for d in gw.flaky_deliveries()] == [str(fails + 1)]


def test_permfail_ends_failed_with_reason_in_show(gw):
    gw.add_recipient("closed-desk", transport="flaky", address="permfail")
    gw.drop(Packet("ROI-Q-PERM", recipient="closed-desk"))
    j = wait_state(gw, "ROI-Q-PERM", "failed")
    r = gw.roictl("show", str(j["id"]), check=0)
    assert "the recipient refuses this packet for good" in r.stdout
    assert gw.job(j["id"])["job"]["last_error"].endswith(
        "the recipient refuses this packet for good")
    outcomes = [e["outcome"] for e in gw.job(j["id"])["disclosures"]]
    assert outcomes == ["attempt", "failed"]
    assert gw.flaky_deliveries() == []


def test_retries_run_out_and_the_job_fails(gw):
    gw.add_recipient("never-up", transport="flaky", address="tempfail:99")
    gw.drop(Packet("ROI-Q-GIVEUP", recipient="never-up"))
    j = wait_state(gw, "ROI-Q-GIVEUP", "failed", timeout=30)
    job = gw.job(j["id"])["job"]
    assert job["attempts"] == 5                   # max_attempts in the test config
    assert "temporary failure on attempt 5" in job["last_error"]


def test_worker_crash_is_a_temporary_failure(gw):
    gw.add_recipient("crashy", transport="flaky", address="crash:1")
    gw.drop(Packet("ROI-Q-CRASH", recipient="crashy"))
    j = wait_state(gw, "ROI-Q-CRASH", "delivered")
    show = gw.job(j["id"])
    deferred = [e for e in show["events"] if e["to"] == "deferred"]
    assert len(deferred) == 1
    # The transport runs in the sender (the worker's sandboxed half):
    # its crash is a temporary failure, said in those words.
    assert deferred[0]["reason"].startswith("tempfail: ")
    assert "stopped without an answer" in deferred[0]["reason"]
    assert len(gw.flaky_deliveries()) == 1
    assert gw.proc.poll() is None


def test_hung_worker_is_killed_after_job_timeout(gateway_factory):
    gw = gateway_factory(queue={"job_timeout": "2s"})
    gw.start()
    gw.add_recipient("records-desk")
    gw.add_recipient("hangs", transport="flaky", address="hang:1")
    gw.drop(Packet("ROI-Q-HANG", recipient="hangs"))
    # Meanwhile another packet is served: one hung peer stalls nobody else.
    gw.drop(Packet("ROI-Q-OTHER"))
    wait_state(gw, "ROI-Q-OTHER", "delivered")
    j = wait_state(gw, "ROI-Q-HANG", "delivered", timeout=30)
    deferred = [e for e in gw.job(j["id"])["events"] if e["to"] == "deferred"]
    assert len(deferred) == 1 and "signal 9" in deferred[0]["reason"]
    assert "job timeout" in gw.log()


def test_hold_release_cancel_retry(gw):
    gw.add_recipient("busy-line", transport="flaky", address="tempfail:99:60")
    gw.drop(Packet("ROI-Q-HOLD", recipient="busy-line"))
    j = wait_state(gw, "ROI-Q-HOLD", "deferred")
    jid = str(j["id"])
    # retry_after 60 s: it waits a minute unless an operator steps in.
    gw.roictl("hold", jid, check=0)
    assert gw.job(jid)["job"]["state"] == "held"
    gw.roictl("release", jid, check=0)
    # Released: queued at once, so it is tried again now (and fails again).
    wait_for("a second attempt", lambda: gw.job(jid)["job"]["attempts"] == 2)
    assert ("held", "queued") in _events(gw, jid)
    wait_state(gw, "ROI-Q-HOLD", "deferred")
    gw.roictl("cancel", jid, check=0)
    show = gw.job(jid)
    assert show["job"]["state"] == "cancelled"
    # Who did it is in the history.
    for e in show["events"]:
        if e["to"] in ("held", "cancelled"):
            assert e["actor"] not in ("", "daemon", None), e
    # A cancelled job stays cancelled.
    r = gw.roictl("release", jid)
    assert r.returncode == 65, r.stderr
    assert "cancelled" in r.stderr
    # A failed job can be retried with a fresh round of attempts.
    gw.add_recipient("closed-desk", transport="flaky", address="permfail")
    gw.drop(Packet("ROI-Q-RETRY", recipient="closed-desk"))
    f = wait_state(gw, "ROI-Q-RETRY", "failed")
    gw.roictl("retry", str(f["id"]), check=0)
    wait_for("the retried job to fail again",
             lambda: len([e for e in gw.job(f["id"])["disclosures"]
                          if e["outcome"] == "failed"]) == 2)
    # Unknown jobs are named as such.
    r = gw.roictl("hold", "99999")
    assert r.returncode == 67 and "99999" in r.stderr


def test_sigterm_drains_and_restart_continues(gw):
    gw.add_recipient("slow", transport="flaky", address="slow:700")
    gw.drop(Packet("ROI-Q-DRAIN", recipient="slow"))
    wait_state(gw, "ROI-Q-DRAIN", "sending")
    assert gw.stop() == 0                       # the running send finishes
    assert len(gw.flaky_deliveries()) == 1
    gw.start()
    j = gw.job_by_packet("ROI-Q-DRAIN")
    assert j["state"] == "delivered"
    assert [e["outcome"] for e in gw.job(j["id"])["disclosures"]] == [
        "attempt", "delivered"]
