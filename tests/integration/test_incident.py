"""Incidents: a misdirected send is contained at once (recipient disabled,
its waiting jobs held, each change naming the incident), the four-factor
assessment is prefilled from the log and superseded, never edited, and the
report gives the 60-day deadline from discovery.  Sealed records."""
import hashlib
import os
import sqlite3

import pytest

from gateway import Packet, report_paginated, report_pdf, wait_for, wait_state


def check_pdf(gw, tmp_path):
    """The PDF of incident 1 (report_pdf checks the file): what the
    notification needs; its SHA-256 in the audit log."""
    generated = "2026-12-01T09:00:00Z"
    data, text = report_pdf(gw, tmp_path, "incident", "report", "1",
                            "--generated", generated)
    for s in ("Health Information Management", "Incident 1 (misdirected)",
              "Page 1 of 1", generated, "faxed to the wrong clinic",
              "Discovered", "2026-11-30T00:00:00Z",
              "Notify by", "2027-01-29T00:00:00Z", "60 days from discovery",
              "Wrong Clinic at slow:4000 (fax-x)", "lab (2026-10-14)",
              "TEST-000123", "recipient fax-x disabled",
              "Disclosures involved (", "superseded",
              "(in force)", "determination low_probability",
              "confirmed in writing it destroyed", "not required"):
        assert s in text, f"{s!r} not in the PDF"
    sha = hashlib.sha256(data).hexdigest()
    rows = [x for x in gw.jsonl("audit", "--limit", "1000")
            if x.get("op") == "incident-show" and x.get("outcome") == "ok"]
    assert rows and sha in rows[-1]["detail"], rows[-1:]
    assert rows[-1]["target"] == "incident 1"


def test_misdirected_is_contained_assessed_and_reported(gw, tmp_path):
    gw.roictl("recipient", "add", "fax-x", "--name", "Wrong Clinic",
              "--transport", "flaky", "--address", "slow:4000",
              "--param", "max_concurrent=1", check=0)
    gw.roictl("recipient", "verify", "fax-x", check=0)
    for n in (1, 2, 3):
        gw.drop(Packet(f"INC-{n}", recipient="fax-x"))
    wait_for("one sending, two waiting", lambda: sorted(
        j["state"] for j in gw.jobs()) == ["queued", "queued", "sending"])
    jobs = {j["state"]: j for j in gw.jobs()}
    sending = jobs["sending"]["id"]
    waiting = [j["id"] for j in gw.jobs() if j["state"] == "queued"]
    gw.roictl("hold", str(waiting[1]), check=0)
    r = gw.json("incident", "open", "--job", str(sending), "--kind",
                "misdirected", "--note", "faxed to the wrong clinic",
                "--discovered", "2026-11-30")
    assert r["id"] == 1 and r["kind"] == "misdirected"
    assert "recipient fax-x disabled" in r["containment"]
    assert r["disclosures"] and r["disclosures"][0]["outcome"] == "attempt"
    assert [x["id"] for x in gw.jsonl("recipient", "list")
            if x.get("disabled")] == ["fax-x"]
    for jid in waiting:
        assert gw.job(jid)["job"]["state"] == "held"
        assert any("incident 1" in (e.get("actor") or "")
                   for e in gw.job(jid)["events"]), gw.job(jid)["events"]
    wait_state(gw, gw.job(sending)["job"]["packet_id"],
               "delivered")
    # The four factors, prefilled from the log; then a new assessment.
    a = gw.json("incident", "assess", "1", "--determination", "breach")
    f = a["assessment"]["factors"]
    assert "lab (2026-10-14)" in f["nature"]
    assert "Wrong Clinic" in f["unauthorized_person"]
    assert "delivered" in f["acquired_or_viewed"]
    assert "disabled" in f["mitigation"]
    b = gw.json("incident", "assess", "1", "--determination",
                "low_probability", "--acquired",
                "the clinic confirmed in writing it destroyed the pages unread")
    assert b["assessment"]["supersedes"] == a["assessment"]["id"]
    assert [x["determination"] for x in b["assessments"]] == [
        "breach", "low_probability"]
    rep = gw.json("incident", "report", "1")
    assert rep["notify_by"] == "2027-01-29T00:00:00Z"   # 60 days from discovery
    assert rep["mrn"] == "TEST-000123"
    assert "not required" in rep["notification"]
    text = gw.roictl("incident", "report", "1", check=0).stdout
    assert "Notify by: 2027-01-29" in text and "destroyed the pages" in text
    assert "Disclosed to: Wrong Clinic at slow:4000 (fax-x)" in text
    assert "What was done: recipient fax-x disabled" in text
    check_pdf(gw, tmp_path)
    assert [x["id"] for x in gw.jsonl("incident", "list")] == [1]
    with sqlite3.connect(os.path.join(gw.state, "roigate.db")) as db:
        for t in ("incidents", "assessments"):
            with pytest.raises(sqlite3.DatabaseError):
                db.execute(f"UPDATE {t} SET at = 0")
            with pytest.raises(sqlite3.DatabaseError):
                db.execute(f"DELETE FROM {t}")
    gw.roictl("verify-log", check=0)


def test_incident_arguments(gw):
    r = gw.roictl("incident", "open", "--job", "99", "--kind", "misdirected",
                  "--note", "x")
    assert r.returncode == 67
    r = gw.call("incident-open", job=1, kind="lost", note="x")
    assert r["code"] in ("bad_request", "not_found")
    r = gw.roictl("incident", "assess", "7", "--determination", "maybe")
    assert r.returncode in (64, 65, 67)
    assert gw.roictl("incident", "--help", check=0).stdout.count("164.402")
    assert gw.roictl("incident", "report", "1", "--format",
                     "docx").returncode == 64
    assert gw.roictl("incident", "list", "-o", "x.pdf").returncode == 64
    r = gw.call("incident-show", incident=1, report="yes", format="docx")
    assert r["code"] == "bad_request"


def test_report_pdf_paginates_from_an_edited_template(gw, tmp_path):
    gw.drop(Packet("INC-PAGES"))
    wait_state(gw, "INC-PAGES", "delivered")
    job = [j["id"] for j in gw.jobs()][0]
    gw.json("incident", "open", "--job", str(job), "--kind", "wrong_documents",
            "--note", "the discharge summary was not asked for")
    gw.json("incident", "assess", "1", "--determination", "breach")
    text = report_paginated(gw, tmp_path, "incident", "incident", "report",
                            "1")
    assert "the discharge summary was not asked for" in text
