"""Request deadlines: open until a job for the request is delivered; 30 days
for a patient's access request plus one 30-day extension; other bases by
[requests] deadline_other; the oldest open request's age in status."""
import datetime

from gateway import Packet, wait_state


def ago(days):
    return (datetime.date.today() - datetime.timedelta(days=days)).isoformat()


def packet(pid, req, days, basis, recipient):
    p = Packet(pid, recipient=recipient)
    p.manifest["request"]["id"] = req
    p.manifest["request"]["received_on"] = ago(days)
    p.manifest["basis"] = basis
    return p


def test_open_requests_deadlines_and_extension(gateway_factory):
    gw = gateway_factory(requests={"deadline_other": "10d"})
    gw.start()
    gw.add_recipient("records-desk")
    gw.add_recipient("broken", transport="flaky", address="permfail")
    # Answered: closed.  Failed sends: still open.
    gw.drop(packet("RQ-1", "REQ-DONE", 40, "patient_access", "records-desk"))
    gw.drop(packet("RQ-2", "REQ-LATE", 35, "patient_access", "broken"))
    gw.drop(packet("RQ-3", "REQ-OTHER", 4, "authorization", "broken"))
    wait_state(gw, "RQ-1", "delivered")
    wait_state(gw, "RQ-2", "failed")
    wait_state(gw, "RQ-3", "failed")
    rq = gw.jsonl("requests")
    assert [r["id"] for r in rq] == ["REQ-LATE", "REQ-OTHER"]
    late, other = rq
    assert late["age_days"] == 35 and late["overdue"] is True
    assert late["due"] == ago(5)
    assert other["due"] == ago(-6) and other["overdue"] is False
    assert [r["id"] for r in gw.jsonl("requests", "--overdue")] == ["REQ-LATE"]
    assert [r["id"] for r in gw.jsonl("requests", "--due-within", "7")] == [
        "REQ-LATE", "REQ-OTHER"]
    # One extension for the patient's request; never a second; not for others.
    gw.roictl("requests", "extend", "REQ-LATE", "--reason",
              "records in off-site storage; told the patient in writing",
              check=0)
    late = gw.jsonl("requests")[0]
    assert late["due"] == ago(-25) and late["overdue"] is False
    assert "off-site" in late["extension"]["reason"]
    assert gw.roictl("requests", "extend", "REQ-LATE", "--reason",
                     "again").returncode == 65
    assert gw.roictl("requests", "extend", "REQ-OTHER", "--reason",
                     "x").returncode == 65
    assert gw.roictl("requests", "extend", "REQ-NONE", "--reason",
                     "x").returncode == 67
    assert gw.json("status")["oldest_open_request_age"] == 35
    assert "Oldest open request:     35 days" in gw.roictl("status",
                                                          check=0).stdout
