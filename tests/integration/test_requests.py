"""Request deadlines: a request is open until its jobs are delivered (a
failed packet sent again counts as redone); 30 days for a patient's access
request plus one 30-day extension, given within the 30 days, recorded as a
sealed row; other bases by [requests] deadline_other; the oldest open
request's age in status.  The listing is compared with golden files (text
and JSON, before and after the extension), its dates written as days from
today so that the files hold on any day; regenerate them with
ROIGATE_GOLDEN_UPDATE=1 and read the diff."""
import datetime
import os
import re
import sqlite3

import pytest

from gateway import Packet, golden, wait_for, wait_state

def ago(days):
    return (datetime.date.today() - datetime.timedelta(days=days)).isoformat()


def packet(pid, req, days, basis, recipient):
    p = Packet(pid, recipient=recipient)
    p.manifest["request"]["id"] = req
    p.manifest["request"]["received_on"] = ago(days)
    p.manifest["basis"] = basis
    return p


def relative(text):
    """Dates as TODAY-N / TODAY+N, times of today as TODAYTHH:MM:SSZ, the
    recorder's uid as UID: the same file on any day, for any tester."""
    today = datetime.date.today()

    def day(m):
        n = (today - datetime.date.fromisoformat(m.group(0))).days
        return "TODAY" if n == 0 else f"TODAY{-n:+d}"
    text = re.sub(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", "TIME", text)
    text = re.sub(r"\d{4}-\d{2}-\d{2}", day, text)
    text = re.sub(r'"received_at":\d+', '"received_at":"UNIX(received_on)"',
                  text)
    return re.sub(r"uid \d+ \([^)]*\)", "uid UID (USER)", text)


def golden_rel(name, got):
    golden(name, relative(got))


@pytest.fixture
def rgw(gateway_factory):
    gw = gateway_factory(requests={"deadline_other": "10d"})
    gw.start()
    gw.add_recipient("records-desk")
    gw.add_recipient("broken", transport="flaky", address="permfail")
    # A line that stays busy: the job waits (deferred) an hour.
    gw.add_recipient("busy", transport="flaky", address="tempfail:100:3600")
    # Answered: closed.  Failed sends: still open.
    gw.drop(packet("RQ-1", "REQ-DONE", 40, "patient_access", "records-desk"))
    wait_state(gw, "RQ-1", "delivered")
    gw.drop(packet("RQ-2", "REQ-LATE", 35, "patient_access", "broken"))
    wait_state(gw, "RQ-2", "failed")
    gw.drop(packet("RQ-3", "REQ-OTHER", 4, "authorization", "broken"))
    wait_state(gw, "RQ-3", "failed")
    # Half answered: one packet delivered, the other still waiting: open.
    gw.drop(packet("RQ-4", "REQ-PART", 20, "patient_access", "records-desk"))
    wait_state(gw, "RQ-4", "delivered")
    gw.drop(packet("RQ-5", "REQ-PART", 20, "patient_access", "busy"))
    wait_state(gw, "RQ-5", "deferred")
    # Failed, then sent again and delivered: redone, closed (and the
    # oldest request with a job not delivered: status passes over it).
    gw.drop(packet("RQ-6", "REQ-REDONE", 50, "patient_access", "broken"))
    wait_state(gw, "RQ-6", "failed")
    gw.drop(packet("RQ-7", "REQ-REDONE", 50, "patient_access", "records-desk"))
    wait_state(gw, "RQ-7", "delivered")
    return gw


def test_open_requests_deadlines_and_extension(rgw):
    gw = rgw
    rq = gw.jsonl("requests")
    assert [r["id"] for r in rq] == ["REQ-LATE", "REQ-PART", "REQ-OTHER"]
    late, part, other = rq
    assert late["age_days"] == 35 and late["overdue"] is True
    assert late["due"] == ago(5) and late["days_left"] == -5
    assert late["jobs"] == [2] and late["received_on"] == ago(35)
    assert part["due"] == ago(-10) and part["jobs"] == [4, 5]
    assert other["due"] == ago(-6) and other["overdue"] is False
    golden_rel("requests.txt", gw.roictl("requests", check=0).stdout)
    golden_rel("requests.json", gw.roictl("--json", "requests", check=0).stdout)
    assert [r["id"] for r in gw.jsonl("requests", "--overdue")] == ["REQ-LATE"]
    assert [r["id"] for r in gw.jsonl("requests", "--due-within", "7d")] == [
        "REQ-LATE", "REQ-OTHER"]
    assert [r["id"] for r in gw.jsonl("requests", "--due-within", "10")] == [
        "REQ-LATE", "REQ-PART", "REQ-OTHER"]
    assert gw.roictl("requests", "--due-within", "soon").returncode == 64

    # One extension of 30 days, within the first 30.
    r = gw.roictl("requests", "extend", "REQ-PART", "--reason",
                  "records in off-site storage; told the patient in writing",
                  check=0)
    assert "extended" in r.stdout
    part = gw.jsonl("requests")[1]
    assert part["due"] == ago(-40) and part["overdue"] is False
    assert "off-site" in part["extension"]["reason"]
    golden_rel("requests-extended.txt", gw.roictl("requests", check=0).stdout)
    golden_rel("requests-extended.json",
           gw.roictl("--json", "requests", check=0).stdout)

    # Never a second; not after the 30 days; not for other bases; not for
    # a request that is answered or unknown.  Each says why.
    r = gw.roictl("requests", "extend", "REQ-PART", "--reason", "again")
    assert r.returncode == 65 and "extended already" in r.stderr
    assert "one 30-day extension" in r.stderr
    r = gw.roictl("requests", "extend", "REQ-LATE", "--reason", "late")
    assert r.returncode == 65 and "30 days ended on " + ago(5) in r.stderr
    r = gw.roictl("requests", "extend", "REQ-OTHER", "--reason", "x")
    assert r.returncode == 65 and "not a patient's access request" in r.stderr
    for rid in ("REQ-DONE", "REQ-NONE"):
        r = gw.roictl("requests", "extend", rid, "--reason", "x")
        assert r.returncode == 67 and "no open request" in r.stderr
    assert gw.roictl("requests", "extend", "REQ-PART").returncode == 64

    # The extension is written once: the database refuses an edit.
    with sqlite3.connect(os.path.join(gw.state, "roigate.db")) as db:
        with pytest.raises(sqlite3.DatabaseError):
            db.execute("UPDATE request_extensions SET at = 0")
        with pytest.raises(sqlite3.DatabaseError):
            db.execute("DELETE FROM request_extensions")
    audit = [a for a in gw.jsonl("audit", "--limit", "1000")
             if a.get("op") == "requests" and a.get("target") == "request REQ-PART"]
    assert [a["outcome"] for a in audit] == ["ok", "error"]

    assert gw.json("status")["oldest_open_request_age"] == 35
    assert gw.jsonl("requests")[0]["age_days"] == 35
    assert "Oldest open request:     35 days" in gw.roictl("status",
                                                          check=0).stdout
    # Once the waiting packet is delivered, the request is answered.
    # (Deferred a moment before its worker is reaped: "try again".)
    wait_for("the cancel to be taken",
             lambda: gw.roictl("cancel", "5").returncode == 0)
    gw.drop(packet("RQ-8", "REQ-PART", 20, "patient_access", "records-desk"))
    wait_state(gw, "RQ-8", "delivered")
    assert "REQ-PART" not in [r["id"] for r in gw.jsonl("requests")]


def test_the_extension_is_sealed(gateway_factory):
    from test_sealing import setup_seal, edit_is_noticed
    g = gateway_factory(log={"seal_interval": "1s"})
    keyfile = setup_seal(g)
    g.start()
    g.add_recipient("busy", transport="flaky", address="tempfail:100:3600")
    g.drop(packet("RQ-S", "REQ-SEALED", 3, "patient_access", "busy"))
    wait_state(g, "RQ-S", "deferred")
    g.roictl("requests", "extend", "REQ-SEALED", "--reason",
             "records at the other campus", check=0)
    # Someone with the daemon's rights backdates the extension: noticed.
    edit_is_noticed(g, keyfile, "request_extensions",
                    "UPDATE request_extensions SET at = at - 86400 * 40")


def test_a_request_near_its_deadline_is_an_alert(gateway_factory):
    gw = gateway_factory(alerts={"check_interval": "300ms",
                                 "deadline_within": "5d"})
    gw.start()
    gw.add_recipient("records-desk")
    gw.add_recipient("busy", transport="flaky", address="tempfail:100:3600")
    # 27 days old: due in 3.  10 days old: due in 20, no alert for it.
    gw.drop(packet("RQ-A1", "REQ-NEAR", 27, "patient_access", "busy"))
    gw.drop(packet("RQ-A2", "REQ-FAR", 10, "patient_access", "busy"))
    near = wait_state(gw, "RQ-A1", "deferred")["id"]
    wait_state(gw, "RQ-A2", "deferred")

    def deadline_alerts():
        return [a for a in gw.jsonl("alerts") if a.get("rule") == "deadline"]
    a = wait_for("the deadline alert", deadline_alerts)[0]
    assert a["subject"] == "requests" and a["status"] == "firing"
    assert "request REQ-NEAR, due " + ago(-3) in a["summary"]
    assert "1 open records requests" in a["summary"]
    # Answered (sent again to a desk that delivers): the alert resolves.
    wait_for("the cancel to be taken",
             lambda: gw.roictl("cancel", str(near)).returncode == 0)
    gw.drop(packet("RQ-A3", "REQ-NEAR", 27, "patient_access", "records-desk"))
    wait_state(gw, "RQ-A3", "delivered")
    wait_for("the resolution", lambda: [a for a in deadline_alerts()
                                        if a["status"] == "resolved"])


def test_deadline_alert_counts_the_requests_at_its_edges(gateway_factory):
    """Requests on either side of the alert's edge, of both deadlines
    (30 days, deadline_other's 10), are counted as roictl requests counts
    them."""
    gw = gateway_factory(alerts={"check_interval": "300ms",
                                 "deadline_within": "5d"},
                         requests={"deadline_other": "10d"})
    gw.start()
    gw.add_recipient("busy", transport="flaky", address="tempfail:100:3600")
    for pid, req, days, basis in (
            ("RQ-E1", "REQ-ACCESS-27", 27, "patient_access"),   # due in 3
            ("RQ-E2", "REQ-ACCESS-25", 25, "patient_access"),   # due in 5
            ("RQ-E3", "REQ-ACCESS-24", 24, "patient_access"),   # due in 6
            ("RQ-E4", "REQ-AUTH-6", 6, "authorization"),        # due in 4
            ("RQ-E5", "REQ-AUTH-4", 4, "authorization"),        # due in 6
            ("RQ-E6", "REQ-ACCESS-40", 40, "patient_access")):  # 10 overdue
        gw.drop(packet(pid, req, days, basis, "busy"))
        wait_state(gw, pid, "deferred")
    listed = {r["id"]: r["days_left"] for r in gw.jsonl("requests")}
    assert listed == {"REQ-ACCESS-27": 3, "REQ-ACCESS-25": 5,
                      "REQ-ACCESS-24": 6, "REQ-AUTH-6": 4, "REQ-AUTH-4": 6,
                      "REQ-ACCESS-40": -10}
    a = wait_for("the alert to count all six packets' requests", lambda: [
        a for a in gw.jsonl("alerts") if a.get("rule") == "deadline" and
        "4 open records requests" in a["summary"]])[0]
    assert "(1 overdue)" in a["summary"]
    assert "request REQ-ACCESS-40, due " + ago(10) in a["summary"]


def test_deadline_alert_counts_a_request_by_the_date_it_is_listed_with(
        gateway_factory):
    """A request whose jobs give different received_on dates (sent again
    with the date corrected, the first still waiting on a busy line) is
    listed by its newest job's date; the alert counts it as the listing
    does."""
    gw = gateway_factory(alerts={"check_interval": "300ms",
                                 "deadline_within": "5d"})
    gw.start()
    gw.add_recipient("records-desk")
    gw.add_recipient("busy", transport="flaky", address="tempfail:100:3600")
    gw.drop(packet("RQ-M1", "REQ-MIXED", 2, "patient_access", "busy"))
    wait_state(gw, "RQ-M1", "deferred")
    gw.drop(packet("RQ-M2", "REQ-MIXED", 40, "patient_access", "records-desk"))
    wait_state(gw, "RQ-M2", "delivered")
    listed = {r["id"]: r["days_left"] for r in gw.jsonl("requests")}
    assert listed == {"REQ-MIXED": -10}
    a = wait_for("the deadline alert", lambda: [
        a for a in gw.jsonl("alerts") if a.get("rule") == "deadline" and
        a["status"] == "firing"])[0]
    assert "request REQ-MIXED" in a["summary"] and "(1 overdue)" in a["summary"]
