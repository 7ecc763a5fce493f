"""The daily reconciliation: roictl report daily.

One day's real work through the daemon: packets delivered by the local
transport, one failed (the flaky transport's permfail), one held by an
operator, one fax the provider took and never confirmed (the fax API
stand-in keeps +15550001009 "inprogress"), and one send interrupted by the
daemon's death after its attempt was logged (then sent again).  The report
is compared with golden files (text and JSON; times of day, the fax id and
the tester's uid written as placeholders so the files hold on any day) and
its PDF is checked with pdftotext and qpdf.  Regenerate the golden files
with ROIGATE_GOLDEN_UPDATE=1 and read the diff.
"""
import datetime
import hashlib
import json
import re

import pytest

from gateway import (Packet, golden, report_paginated, report_pdf, wait_for,
                     wait_state)
# The fax API stand-in and its certificates, as the fax tests have them.
from test_fax import add_fax, api, fax_gateway, pki  # noqa: F401

GENERATED = "2030-01-02T03:04:05Z"


@pytest.fixture
def day(tmp_path, pki, api):
    gw = fax_gateway(tmp_path, pki, api, start=False)
    gw.settings["daemon"]["organization"] = "Example Hospital HIM"
    gw.write_conf()
    # The first run dies right after its first send's attempt is logged.
    gw.start(env={"ROIGATE_TEST_CRASH": "queue_after_attempt"})
    gw.add_recipient("records-desk")
    gw.add_recipient("broken", transport="flaky", address="permfail")
    gw.add_recipient("busy", transport="flaky", address="tempfail:100:3600")
    add_fax(gw, "clinic-fax", "+15550001009")    # never confirmed
    gw.drop(Packet("DAY-INT"))
    assert gw.wait_exit() == -9, gw.log()
    gw.start()
    wait_state(gw, "DAY-INT", "delivered")       # sent again after the restart
    gw.drop(Packet("DAY-OK"))
    wait_state(gw, "DAY-OK", "delivered")
    gw.drop(Packet("DAY-FAIL", recipient="broken"))
    wait_state(gw, "DAY-FAIL", "failed")
    gw.drop(Packet("DAY-HOLD", recipient="busy"))
    j = wait_state(gw, "DAY-HOLD", "deferred")
    # Deferred in the database a moment before its worker is reaped: the
    # daemon says "try again in a moment", as it would to an operator.
    wait_for("the hold to be taken",
             lambda: gw.roictl("hold", str(j["id"])).returncode == 0)
    wait_state(gw, "DAY-HOLD", "held")
    gw.drop(Packet("DAY-FAX", recipient="clinic-fax"))
    wait_state(gw, "DAY-FAX", "awaiting_confirmation")
    yield gw
    if gw.proc is not None:
        assert gw.stop() == 0, gw.log()


def placeholders(text):
    """Today's date and times, the fax id and uids as placeholders."""
    text = re.sub(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", "TIME", text)
    text = text.replace(datetime.date.today().isoformat(), "TODAY")
    text = re.sub(r"\b\d{2}:\d{2}:\d{2}\b", "HH:MM:SS", text)
    text = re.sub(r"remote id [^)\s]+", "remote id FAXID", text)
    text = re.sub(r'"remote_id": "[^"]+"', '"remote_id": "FAXID"', text)
    return re.sub(r"uid \d+ \([^)]*\)", "uid UID (USER)", text)


def report(gw, *args, fmt="json"):
    r = gw.roictl("report", "daily", "--format", fmt, "--generated", GENERATED,
                  *args, check=0)
    return json.loads(r.stdout) if fmt == "json" else r.stdout


def test_the_day_matches_golden(day):
    text = report(day, fmt="text")
    golden("daily.txt", placeholders(text))
    js = day.roictl("report", "daily", "--format", "json", "--generated",
                    GENERATED, check=0).stdout
    golden("daily.json", placeholders(js))
    rep = json.loads(js)
    assert rep["date"] == datetime.date.today().isoformat()
    assert rep["complete"] is False
    assert rep["totals"] == {"accepted": 5, "delivered": 2, "failed": 1,
                             "held": 1, "cancelled": 0,
                             "awaiting_confirmation": 1}
    rows = {(r["transport"], r["recipient"]): r for r in rep["recipients"]}
    assert set(rows) == {("local", "records-desk"), ("flaky", "broken"),
                         ("flaky", "busy"), ("faxapi", "clinic-fax")}
    assert rows[("local", "records-desk")]["delivered"] == 2
    assert rows[("faxapi", "clinic-fax")]["awaiting_confirmation"] == 1
    # Not confirmed: the fax (sent, the provider has not confirmed) and the
    # send the daemon's death interrupted (it may have reached the desk).
    unsure = {u["packet_id"]: u for u in rep["unconfirmed"]}
    assert set(unsure) == {"DAY-FAX", "DAY-INT"}
    assert unsure["DAY-FAX"]["status"] == "awaiting_confirmation"
    assert unsure["DAY-FAX"]["detail"] and unsure["DAY-FAX"]["remote_id"]
    assert unsure["DAY-INT"]["status"] == "interrupted"
    assert unsure["DAY-INT"]["state"] == "delivered"
    exc = {e["packet_id"]: e["status"] for e in rep["exceptions"]}
    assert exc == {"DAY-FAIL": "failed", "DAY-HOLD": "held"}
    # No patient in it: jobs by id, packet and request only.
    assert "Testpatient" not in js and "MRN" not in js
    for needle in ("Not yet confirmed (2)", "DAY-FAX", "interrupted",
                   "Failed or held this day (2)", "the day is not over"):
        assert needle in text, needle


def test_another_day_and_bad_dates(day):
    yesterday = (datetime.date.today() - datetime.timedelta(days=1)).isoformat()
    rep = report(day, "--date", yesterday)
    assert rep["date"] == yesterday and rep["complete"] is True
    assert set(rep["totals"].values()) == {0}
    # The fax taken today was not yet sent yesterday: nothing unconfirmed.
    assert rep["unconfirmed"] == [] and rep["recipients"] == []
    r = day.roictl("report", "daily", "--date", "yesterday")
    assert r.returncode == 65 and "a day, as 2026-12-01" in r.stderr
    assert day.roictl("report", "daily", "--format", "docx").returncode == 64
    assert day.roictl("report").returncode == 64
    r = day.roictl("report", "daily", user="nobody")
    assert r.returncode != 0


def test_pdf_is_checked_deterministic_and_audited(day, tmp_path):
    data, text = report_pdf(day, tmp_path, "report", "daily", "--generated",
                            GENERATED)
    today = datetime.date.today().isoformat()
    for s in ("Example Hospital HIM", f"Daily reconciliation: {today}",
              "Page 1 of 1", GENERATED, "records-desk", "clinic-fax",
              "Not yet confirmed (2)", "DAY-FAX", "DAY-INT", "interrupted",
              "Failed or held this day (2)", "DAY-FAIL", "DAY-HOLD",
              "The day is not over"):
        assert s in text, f"{s!r} not in the PDF"
    sha = hashlib.sha256(data).hexdigest()
    rows = [x for x in day.jsonl("audit", "--limit", "1000")
            if x.get("op") == "report-daily" and x.get("outcome") == "ok"]
    assert rows and sha in rows[-1]["detail"]
    assert f"daily report {today}" == rows[-1]["target"]


def test_pdf_paginates_from_an_edited_template(day, tmp_path):
    report_paginated(day, tmp_path, "daily", "report", "daily")


@pytest.mark.parametrize("tz", ["Pacific/Kiritimati", "Pacific/Pago_Pago"])
def test_the_day_is_local(gateway_factory, tz):
    """UTC+14 and UTC-11: for most of a UTC day one of them is on another
    date; the day, its bounds and the counts follow the daemon's TZ."""
    from zoneinfo import ZoneInfo
    gw = gateway_factory()
    gw.start(env={"TZ": tz})
    gw.add_recipient("records-desk")
    gw.drop(Packet("DAY-TZ"))
    wait_state(gw, "DAY-TZ", "delivered")
    rep = report(gw)
    local = datetime.datetime.now(ZoneInfo(tz))
    assert rep["date"] == local.date().isoformat()
    midnight = datetime.datetime.combine(local.date(), datetime.time(),
                                         ZoneInfo(tz))
    utc = midnight.astimezone(datetime.timezone.utc)
    assert rep["from"] == utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert rep["totals"]["delivered"] == 1
    # The same packet on the neighbouring days: not there.
    for d in (-1, 1):
        other = (local.date() + datetime.timedelta(days=d)).isoformat()
        assert report(gw, "--date", other)["totals"]["delivered"] == 0
