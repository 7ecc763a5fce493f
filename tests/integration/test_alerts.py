"""Alerts fire once and resolve once: a fax account refused for twenty jobs
is one mail (and one more when it works again), delivered over STARTTLS to
a real SMTP server (aiosmtpd); a program alert gets the alert as JSON."""
import email
import json
import os
import stat

import pytest

from gateway import Gateway, Packet, wait_for, wait_state
from pki import PKI
from test_fax import CREDS, FaxApi, fax_gateway
from test_smime import Smtpd


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return PKI(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture
def api(tmp_path, pki):
    a = FaxApi(str(tmp_path / "api"), pki)
    yield a
    a.stop()


@pytest.fixture
def smtpd(tmp_path, pki):
    s = Smtpd(str(tmp_path / "mail"), *pki.relay)
    yield s
    s.stop()


def mails(smtpd):
    out = []
    for name in smtpd.messages():
        with open(os.path.join(smtpd.store, name), "rb") as f:
            out.append(email.message_from_bytes(f.read()))
    return out


def test_refused_fax_account_is_one_alert_and_one_resolution(tmp_path, pki, api,
                                                             smtpd):
    gw = fax_gateway(tmp_path, pki, api, creds="test_api_key:wrong",
                     workers="2")
    gw.stop()
    gw.settings["alerts"] = {
        "mail_to": "him-admin@example.org, oncall@example.org",
        "mail_from": "roigate@example.org",
        "smtp_url": f"smtp://127.0.0.1:{smtpd.port}", "ca_file": pki.ca.pem,
        "check_interval": "300ms"}
    gw.write_conf()
    gw.start()
    secret = str(tmp_path / "gw-fax-credentials")    # fax_gateway's name
    try:
        gw.add_recipient("fax", transport="faxapi", address="+15550001001")
        ids = []
        for i in range(20):
            gw.drop(Packet(f"ROI-AL-{i:02d}", recipient="fax"))
        for i in range(20):
            ids.append(wait_state(gw, f"ROI-AL-{i:02d}", "held", timeout=60)["id"])
        wait_for("the alert mail", lambda: len(smtpd.messages()) >= 1, 20)
        # Several check intervals with twenty held jobs: still one mail.
        import time
        time.sleep(1.5)
        got = mails(smtpd)
        assert len(got) == 1, [m["Subject"] for m in got]
        m = got[0]
        assert m["Subject"] == "[roigate ALERT] credentials: transport faxapi"
        body = m.get_payload()
        assert "Status:   firing" in body and "Rule:     credentials" in body
        env = open(os.path.join(smtpd.store, "1.envelope")).read()
        assert "tls=True" in env
        assert "him-admin@example.org oncall@example.org" in env
        # No PHI: the sample patient's name and MRN appear nowhere.
        patient = Packet("x").manifest["patient"]
        assert patient["name"] not in body and patient["mrn"] not in body
        open_ = gw.jsonl("alerts")
        assert [(a["rule"], a["status"]) for a in open_] == [("credentials",
                                                              "firing")]
        assert open_[0]["count"] >= 1
        # The account is fixed; the jobs are released; the faxes go out.
        with open(secret, "w") as f:
            f.write(CREDS + "\n")
        gw.roictl("release", *map(str, ids), check=0)
        for i in range(20):
            wait_state(gw, f"ROI-AL-{i:02d}", "delivered", timeout=120)
        wait_for("the resolution mail", lambda: len(smtpd.messages()) >= 2, 20)
        time.sleep(1)
        got = mails(smtpd)
        assert [m["Subject"] for m in got] == [
            "[roigate ALERT] credentials: transport faxapi",
            "[roigate RESOLVED] credentials: transport faxapi"]
        assert gw.jsonl("alerts")[0]["status"] == "resolved"
        out = gw.roictl("alerts", check=0).stdout
        assert "credentials" in out and "resolved" in out
    finally:
        gw.stop()


def test_program_gets_the_alert_as_json(tmp_path):
    got = tmp_path / "alerts"
    got.mkdir()
    prog = tmp_path / "alert-hook"
    prog.write_text("#!/bin/sh\nexec cat > \"$1/$$.json\"\n")
    prog.chmod(prog.stat().st_mode | stat.S_IXUSR)
    gw = Gateway(str(tmp_path / "gw"),
                 alerts={"program": f"{prog} {got}", "program_timeout": "5s",
                         "check_interval": "300ms"})
    gw.start()
    try:
        gw.add_recipient("broken", transport="flaky", address="permfail")
        gw.add_recipient("records-desk")
        gw.drop(Packet("ROI-AL-PF", recipient="broken"))
        j = wait_state(gw, "ROI-AL-PF", ("failed", "held"))
        assert j["state"] == "failed"
        def alert():
            # The program writes its file as it reads: whole once it parses.
            for n in os.listdir(got):
                try:
                    return json.loads(open(os.path.join(got, n)).read())
                except ValueError:
                    pass
            return None
        a = wait_for("the program's alert", alert, 20)
        assert a["status"] == "firing" and a["rule"] == "failed"
        assert a["subject"] == "transport flaky" and a["jobs"] == [j["id"]]
        assert a["source"] == "roigate" and a["instance"] == gw.instance()
        # A delivery on the same transport ends it.
        gw.add_recipient("fine", transport="flaky", address="ok")
        gw.drop(Packet("ROI-AL-OK", recipient="fine"))
        wait_state(gw, "ROI-AL-OK", "delivered")
        def alerts():
            out = []
            for n in os.listdir(got):
                try:
                    out.append(json.load(open(os.path.join(got, n)))["status"])
                except ValueError:
                    return None             # one still being written
            return out if len(out) >= 2 else None
        assert sorted(wait_for("the resolution", alerts, 20)) == ["firing",
                                                                 "resolved"]
    finally:
        gw.stop()
