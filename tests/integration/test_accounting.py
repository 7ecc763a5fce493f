"""The accounting of disclosures (45 CFR 164.528): roictl accounting.

A synthetic disclosure log is written into the daemon's database (hash-
chained exactly as docs/disclosure-log.md says, so verify-log still passes),
then the report is compared with golden files: exempt disclosures left out,
repeated ones summarized, a suspension holding entries back, an interrupted
send marked "possibly disclosed", failed sends left out.  Regenerate the
golden files with ROIGATE_GOLDEN_UPDATE=1 and read the diff.
"""
import calendar
import hashlib
import json
import os
import sqlite3
import subprocess
import time

import pytest

from gateway import Gateway, Packet, golden, report_pdf, wait_state

MRN = "TEST-ACC-1"
GENERATED = "2030-01-02T03:04:05Z"
PERIOD = ("--from", "2025-01-01", "--to", "2026-12-31",
          "--generated", GENERATED)


def ts(s):
    return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))


def ns(v):
    b = ("" if v is None else str(v)).encode()
    return b"%d:%s," % (len(b), b)


COLS = ("seq", "at", "job_id", "packet_id", "mrn", "patient_name",
        "recipient_id", "recipient_name", "recipient_address", "description",
        "purpose", "basis", "authorization_id", "transport", "remote_id",
        "outcome", "detail", "pages", "output_sha256", "accountable")

EXEMPT = {"patient_access", "authorization", "treatment", "payment",
          "operations"}

# (job, time, basis, recipient id, name, address, purpose, outcomes)
JOBS = [
    (1, "2026-02-01T10:00:00Z", "patient_access", "patient-home",
     "Pat Example", "+15550100", "patient's own request", ["delivered"]),
    (2, "2026-02-02T10:00:00Z", "authorization", "law-firm", "Example Law LLP",
     "+15550101", "personal injury claim", ["delivered"]),
    (3, "2026-03-02T10:00:00Z", "subpoena", "county-court",
     "Clerk of the County Court", "+15550102", "subpoena 2026-SC-77",
     ["delivered"]),
    (4, "2026-04-01T09:00:00Z", "required_by_law", "state-health",
     "State Health Department", "sftp://health.example.gov",
     "communicable disease report", ["delivered"]),
    (5, "2026-05-01T09:00:00Z", "required_by_law", "state-health",
     "State Health Department", "sftp://health.example.gov",
     "communicable disease report", ["delivered"]),
    (6, "2026-05-31T09:00:00Z", "required_by_law", "state-health",
     "State Health Department", "sftp://health.example.gov",
     "communicable disease report", ["delivered"]),
    (7, "2026-06-10T15:00:00Z", "court_order", "county-court",
     "Clerk of the County Court", "+15550102", "court order 2026-CO-12",
     ["interrupted"]),
    (8, "2026-06-20T15:00:00Z", "required_by_law", "state-health",
     "State Health Department", "sftp://health.example.gov",
     "lead screening report", ["failed"]),
    (9, "2026-07-01T11:00:00Z", "required_by_law", "state-oversight",
     "State Medicaid Fraud Control Unit", "+15550103", "oversight audit",
     ["delivered"]),
    (11, "2026-08-05T08:00:00Z", "court_order", "county-court",
     "Clerk of the County Court", "+15550102", "court order 2026-CO-31",
     ["deferred", "delivered"]),
    (12, "2019-01-05T08:00:00Z", "subpoena", "county-court",
     "Clerk of the County Court", "+15550102", "subpoena 2019-SC-1",
     ["delivered"]),
]


def write_log(db_path):
    db = sqlite3.connect(db_path)
    seq, prev = db.execute("SELECT COALESCE(MAX(seq), 0), COALESCE((SELECT hash"
                           " FROM disclosures ORDER BY seq DESC LIMIT 1), ?)"
                           " FROM disclosures", ("0" * 64,)).fetchone()
    rows = []
    for job, at, basis, rid, name, addr, purpose, outcomes in JOBS:
        t = ts(at)
        # Each try is an "attempt" entry, then its outcome, a minute apart.
        tries = [e for o in outcomes for e in ("attempt", o)]
        for k, o in enumerate(tries):
            rows.append((t + k * 60, job, MRN, basis, rid, name, addr, purpose,
                         o))
    # Another patient's disclosure: never in this one's accounting.
    for k, o in enumerate(("attempt", "delivered")):
        rows.append((ts("2026-03-03T10:00:00Z") + k * 60, 10, "TEST-OTHER",
                     "subpoena", "county-court", "Clerk of the County Court",
                     "+15550102", "subpoena 2026-SC-78", o))
    for at, job, mrn, basis, rid, name, addr, purpose, outcome in rows:
        seq += 1
        v = dict(seq=seq, at=at, job_id=job, packet_id=f"PKT-{job}", mrn=mrn,
                 patient_name="Pat Example", recipient_id=rid,
                 recipient_name=name, recipient_address=addr,
                 description="2 documents: lab (2026-01-14) HbA1c result; "
                 "discharge_summary (2026-01-20)", purpose=purpose,
                 basis=basis, authorization_id="", transport="local",
                 remote_id="", outcome=outcome, detail="", pages=5,
                 output_sha256="ab" * 32,
                 accountable=0 if basis in EXEMPT else 1)
        h = hashlib.sha256(prev.encode() + b"".join(ns(v[c]) for c in COLS)
                           ).hexdigest()
        db.execute(f"INSERT INTO disclosures ({', '.join(COLS)}, prev_hash,"
                   f" hash) VALUES ({', '.join('?' * (len(COLS) + 2))})",
                   [v[c] for c in COLS] + [prev, h])
        prev = h
    db.commit()
    db.close()


@pytest.fixture
def agw(tmp_path):
    g = Gateway(str(tmp_path), daemon={"organization": "Example Hospital HIM"})
    g.start()
    g.stop()
    write_log(os.path.join(g.state, "roigate.db"))
    g.start()
    # The Medicaid fraud unit asked in writing until 2099: its entry is
    # held back.  The court's request was oral: 30 days at most, long over
    # by the report's time.  The health department's was ended early.
    g.roictl("accounting", "suspend", "--agency", "state-oversight",
             "--until", "2099-01-01", "--mrn", MRN, check=0)
    g.roictl("accounting", "suspend", "--agency", "county-court", "--until",
             "2099-01-01", "--oral", check=0)
    g.roictl("accounting", "suspend", "--agency", "State Health Department",
             "--until", "2099-01-01", check=0)
    g.roictl("accounting", "suspend", "--end", "3", check=0)
    yield g
    if g.proc is not None:
        assert g.stop() == 0, g.log()


def test_text_and_json_match_golden(agw):
    text = agw.roictl("accounting", "--mrn", MRN, *PERIOD, check=0)
    golden("accounting.txt", text.stdout)
    assert "held back" in text.stderr
    js = agw.roictl("accounting", "--mrn", MRN, "--format", "json", *PERIOD,
                    check=0)
    golden("accounting.json", js.stdout)
    rep = json.loads(js.stdout)
    e = rep["entries"]
    purposes = [x["purpose"] for x in e]
    # Exempt (patient, authorization), failed, out of period, other
    # patient, suspended: left out.
    assert "patient's own request" not in purposes
    assert "personal injury claim" not in purposes
    assert "lead screening report" not in purposes
    assert "subpoena 2019-SC-1" not in purposes
    assert "subpoena 2026-SC-78" not in purposes
    assert "oversight audit" not in purposes
    # Three to the health department: one summary; the interrupted one.
    s = [x for x in e if x["type"] == "summary"]
    assert len(s) == 1 and s[0]["count"] == 3
    assert s[0]["date"] == "2026-04-01" and s[0]["last_date"] == "2026-05-31"
    assert s[0]["frequency"] == "about every 30 days"
    inter = [x for x in e if x["status"] == "possibly_disclosed"]
    assert [x["job"] for x in inter] == [7]
    # The retried job is listed once, on the day it was delivered.
    assert [x["job"] for x in e if x["purpose"] == "court order 2026-CO-31"
            ] == [11]
    assert rep["period"] == {"from": "2025-01-01", "to": "2026-12-31"}


def test_suspension_list_and_end(agw):
    s = agw.jsonl("accounting", "suspend", "--list")
    assert [x["id"] for x in s] == [1, 2, 3]
    assert s[2]["ended_at"] is not None
    oral = s[1]
    # Oral: in effect 30 days at most, whatever the date it names.
    end = calendar.timegm(time.strptime(oral["effective_end"],
                                        "%Y-%m-%dT%H:%M:%SZ"))
    assert oral["oral"] and end <= time.time() + 30 * 86400 + 60
    # Once the written one is ended, the held entry is listed again.
    agw.roictl("accounting", "suspend", "--end", "1", check=0)
    rep = json.loads(agw.roictl("accounting", "--mrn", MRN, "--format", "json",
                                *PERIOD, check=0).stdout)
    assert "oversight audit" in [x["purpose"] for x in rep["entries"]]
    # Sealed records: append-only in the database too.
    with sqlite3.connect(os.path.join(agw.state, "roigate.db")) as db:
        with pytest.raises(sqlite3.DatabaseError):
            db.execute("UPDATE suspensions SET until_at = 0")
        with pytest.raises(sqlite3.DatabaseError):
            db.execute("DELETE FROM suspensions")
    agw.roictl("verify-log", check=0)


def test_pdf_is_checked_deterministic_and_audited(agw, tmp_path):
    # It names a patient: report_pdf checks the file is 0600 and that a
    # link put in its place is not followed.
    data, text = report_pdf(agw, tmp_path, "accounting", "--mrn", MRN,
                            *PERIOD)
    for s in ("Example Hospital HIM", "Pat Example", "MRN TEST-ACC-1",
              "2025-01-01 to 2026-12-31", "Page 1 of 1", GENERATED,
              "3 disclosures for this purpose", "Possibly disclosed",
              "Clerk of the County Court", "164.528(a)"):
        assert s in text, f"{s!r} not in the PDF"
    assert "oversight audit" not in text
    sha = hashlib.sha256(data).hexdigest()
    audit = agw.jsonl("audit", "--limit", "1000")
    rows = [x for x in audit if x.get("op") == "accounting"]
    assert rows and sha in rows[-1]["detail"]
    assert MRN not in json.dumps(rows)


def test_pdf_paginates(tmp_path):
    out = accounting_pdf(tmp_path, [
        (100 + i, f"2026-01-{1 + i % 28:02d}T10:00:00Z", "subpoena",
         f"court-{i}", f"Court {i}", "+1555", f"subpoena {i}", ["delivered"])
        for i in range(30)])
    text = subprocess.run(["pdftotext", out, "-"], check=True,
                          capture_output=True, text=True).stdout
    # 30 entries, five a page (templates/accounting): six pages.
    assert "Page 1 of 6" in text and "Page 6 of 6" in text
    assert "Page 7" not in text


def accounting_pdf(tmp_path, jobs):
    """The accounting PDF of a log of jobs (as JOBS)."""
    g = Gateway(str(tmp_path))
    g.start()
    g.stop()
    global JOBS
    saved = JOBS
    JOBS = jobs
    try:
        write_log(os.path.join(g.state, "roigate.db"))
    finally:
        JOBS = saved
    g.start()
    try:
        out = str(tmp_path / "a.pdf")
        g.roictl("accounting", "--mrn", MRN, "--format", "pdf", "-o", out,
                 *PERIOD, check=0)
    finally:
        assert g.stop() == 0
    return out


def test_pdf_draws_every_entrys_own_characters(tmp_path):
    # Each entry is a sheet of its own in one document, its fonts cut to its
    # characters: the second entry's Ω must not be drawn from the first
    # entry's cut, which has none.
    shown = []
    for i, last in enumerate(("Ωmega Court", "Ψmega Court")):
        os.makedirs(tmp_path / str(i))
        out = accounting_pdf(tmp_path / str(i), [
            (200 + k, f"2026-03-{1 + k:02d}T10:00:00Z", "subpoena", f"court-{k}",
             name, "+1555", f"subpoena {k}", ["delivered"])
            for k, name in enumerate(["Tòa án Nguyễn", last])])
        subprocess.run(["qpdf", "--check", out], check=True, capture_output=True)
        text = subprocess.run(["pdftotext", out, "-"], check=True,
                              capture_output=True, text=True).stdout
        assert "Tòa án Nguyễn" in text and last in text
        shown.append(subprocess.run(["pdftoppm", "-r", "100", "-gray", out],
                                    check=True, capture_output=True).stdout)
    assert shown[0] != shown[1]


def test_a_real_delivery_is_accounted_and_exempt_left_out(gw):
    p = Packet("ACC-REAL-1")
    gw.drop(p)
    wait_state(gw, "ACC-REAL-1", ["delivered"])
    mrn = p.manifest["patient"]["mrn"]
    rep = json.loads(gw.roictl("accounting", "--mrn", mrn, "--format", "json",
                               check=0).stdout)
    # Under an authorization: exempt from the accounting.
    assert rep["entries"] == []
    assert "authorized" in rep["excluded"]


def test_roles_and_usage(gw):
    r = gw.roictl("accounting", check=None)
    assert r.returncode == 64
    r = gw.call("accounting", mrn="X", format="docx")
    assert r["code"] == "bad_request"
    r = gw.roictl("accounting", "--help", check=0)
    assert "164.528" in r.stdout


def test_suspensions_are_sealed(gateway_factory):
    from test_sealing import setup_seal, edit_is_noticed
    g = gateway_factory(log={"seal_interval": "1s"})
    keyfile = setup_seal(g)
    g.start()
    g.roictl("accounting", "suspend", "--agency", "state-oversight",
             "--until", "2099-01-01", check=0)
    # Someone with the daemon's rights shortens the suspension: noticed.
    edit_is_noticed(g, keyfile, "suspensions",
                    "UPDATE suspensions SET until_at = 0")
