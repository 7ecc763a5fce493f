"""Per-recipient limits and send windows: max_concurrent for a recipient
and for a transport instance, and send_window (with a window computed
from now, in a named zone of the TZ database)."""
import datetime
import zoneinfo

from gateway import Gateway, Packet, wait_for, wait_state


def add(gw, rid, address, *params, transport="flaky"):
    ps = []
    for p in params:
        ps += ["--param", p]
    gw.roictl("recipient", "add", rid, "--name", f"Test {rid}", "--transport",
              transport, "--address", address, "--organization",
              "Example Clinic (synthetic)", *ps, check=0)
    gw.roictl("recipient", "verify", rid, check=0)


def overlaps(calls, ms=1.0):
    starts = sorted(c[3] for c in calls)
    return any(b - a < ms for a, b in zip(starts, starts[1:]))


def test_recipient_takes_one_at_a_time(tmp_path):
    gw = Gateway(str(tmp_path), queue={"workers": "4"})
    gw.start()
    try:
        add(gw, "one-line-fax", "slow:1200", "max_concurrent=1")
        for i in range(3):
            gw.drop(Packet(f"ROI-LIM-{i}", recipient="one-line-fax"))
        seen = set()

        def busy():
            for j in gw.jobs():
                if j["state"] == "queued" and "waiting: recipient busy" in (
                        j.get("last_error") or ""):
                    seen.add(j["id"])
            return seen
        wait_for("a job waiting for the busy recipient", busy, 20)
        sh = gw.json("shape")
        assert sh["recipients"][0]["limited"] >= 1
        assert "recipient busy" in sh["recipients"][0]["limit_reason"]
        for i in range(3):
            wait_state(gw, f"ROI-LIM-{i}", "delivered", timeout=30)
        assert not overlaps(gw.flaky_calls()), gw.flaky_calls()
        # Waiting counted no attempt.
        assert all(j["attempts"] == 1 for j in gw.jobs())
    finally:
        gw.stop()


def test_transport_instance_limit(tmp_path):
    gw = Gateway(str(tmp_path), queue={"workers": "4"},
                 transport_flaky={"max_concurrent": "1"})
    gw.start()
    try:
        add(gw, "desk-a", "slow:1000")
        add(gw, "desk-b", "slow:1000")
        gw.drop(Packet("ROI-TL-A", recipient="desk-a"))
        gw.drop(Packet("ROI-TL-B", recipient="desk-b"))
        wait_state(gw, "ROI-TL-A", "delivered", timeout=30)
        wait_state(gw, "ROI-TL-B", "delivered", timeout=30)
        assert not overlaps(gw.flaky_calls(), 0.9), gw.flaky_calls()
        events = [e["reason"] for j in gw.jobs() for e in gw.job(j["id"])["events"]]
        assert any("waiting: transport flaky busy" in (r or "") for r in events)
    finally:
        gw.stop()


def chicago_days():
    now = datetime.datetime.now(zoneinfo.ZoneInfo("America/Chicago"))
    tomorrow = now + datetime.timedelta(days=1)
    return now.strftime("%a"), tomorrow.strftime("%a")


def test_send_window(tmp_path):
    gw = Gateway(str(tmp_path))
    gw.start()
    try:
        today, tomorrow = chicago_days()
        add(gw, "closed-fax", "ok", f"send_window={tomorrow} 00:00-24:00 "
            "America/Chicago")
        add(gw, "open-fax", "ok", f"send_window={today} 00:00-24:00 "
            "America/Chicago")
        add(gw, "urgent-fax", "ok", f"send_window={tomorrow} 00:00-24:00 "
            "America/Chicago", "send_window_urgent=bypass")
        gw.drop(Packet("ROI-W-CLOSED", recipient="closed-fax"))
        gw.drop(Packet("ROI-W-OPEN", recipient="open-fax"))
        urgent = Packet("ROI-W-URGENT", recipient="urgent-fax")
        urgent.manifest.setdefault("cover_sheet", {})["urgent"] = True
        gw.drop(urgent)
        wait_state(gw, "ROI-W-OPEN", "delivered")
        wait_state(gw, "ROI-W-URGENT", "delivered")
        want = f"waiting for the recipient's send window (opens {tomorrow} 00:00)"
        j = wait_for("the closed window's wait", lambda: (
            gw.job_by_packet("ROI-W-CLOSED") or {}).get("last_error") == want
            and gw.job_by_packet("ROI-W-CLOSED"))
        assert j["state"] == "queued" and j["attempts"] == 0
        nxt = datetime.datetime.fromtimestamp(
            j["next_attempt"], zoneinfo.ZoneInfo("America/Chicago"))
        assert (nxt.strftime("%a"), nxt.hour, nxt.minute) == (tomorrow, 0, 0)
        assert not [c for c in gw.flaky_calls() if c[1] == "ROI-W-CLOSED"]
        # A bad window is refused when the recipient is added.
        r = gw.roictl("recipient", "add", "bad-fax", "--name", "Bad",
                      "--transport", "flaky", "--address", "ok", "--param",
                      "send_window=Mon-Fri 08:00-18:00 Mars/Olympus")
        assert r.returncode == 65 and "not a time zone" in r.stderr
    finally:
        gw.stop()
