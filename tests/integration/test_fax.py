"""The faxapi transport against a local HTTPS stand-in for the Phaxio v2.1
API (tests/integration/fax_server.py)."""
import datetime
import json
import os
import sqlite3
import subprocess
import time

import pytest

from gateway import BUILD, TOP, Gateway, Packet, wait_for, wait_state
from pki import PKI
from sshd import free_port

CREDS = "test_api_key:synthetic_api_secret"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return PKI(str(tmp_path_factory.mktemp("pki")))


class FaxApi:
    def __init__(self, folder, pki):
        os.makedirs(folder, exist_ok=True)
        self.port = free_port()
        self.log = os.path.join(folder, "requests.jsonl")
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(TOP, "tests", "integration",
                                              "fax_server.py"),
             str(self.port), pki.relay[0], pki.relay[1], CREDS, self.log],
            stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise AssertionError("the fax API stand-in did not start")

    def requests(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(line) for line in f]

    def control(self, **knobs):
        """Test knobs of the stand-in (not the provider's API)."""
        with open(self.log[:-len(".jsonl")] + ".control", "w") as f:
            json.dump(knobs, f)

    def lookups(self):
        return [r for r in self.requests() if r["method"] == "GET" and
                r["path"].startswith("/v2.1/faxes?")]

    def posts(self, to=None):
        return [r for r in self.requests() if r["method"] == "POST" and
                (to is None or r.get("to") == to)]

    def stop(self):
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def api(tmp_path, pki):
    a = FaxApi(str(tmp_path / "api"), pki)
    yield a
    a.stop()


def fax_gateway(tmp_path, pki, api, creds=CREDS, name="gw", fax=None,
                start=True, **queue):
    gw = Gateway(str(tmp_path / name), queue={"poll_interval": "200ms",
                                              "backoff_max": "2s", **queue})
    secret = str(tmp_path / f"{name}-fax-credentials")
    with open(secret, "w") as f:
        f.write(creds + "\n")
    os.chmod(secret, 0o600)
    gw.settings["transport faxapi"] = {
        "base_url": f"https://127.0.0.1:{api.port}/v2.1", "ca_file": pki.ca.pem,
        "credentials": secret, "organization": "Example Hospital HIM",
        "timeout": "3", "wait_busy": "1", "wait_no_answer": "1",
        **(fax or {})}
    gw.write_conf()
    if start:
        gw.start()
    return gw


def add_fax(gw, rid, number):
    gw.add_recipient(rid, transport="faxapi", address=number)


def outcomes(gw, j):
    return [d["outcome"] for d in gw.job(j["id"])["disclosures"]]


def test_success_after_two_inprogress_polls(tmp_path, pki, api):
    gw = fax_gateway(tmp_path, pki, api)
    try:
        add_fax(gw, "clinic-fax", "+1 (555) 000-1001")
        gw.drop(Packet("ROI-FAX-1", recipient="clinic-fax"))
        j = wait_state(gw, "ROI-FAX-1", ("delivered", "failed", "held"))
        show = gw.job(j["id"])
        assert j["state"] == "delivered", show["job"]["last_error"]
        posts = api.posts()
        assert len(posts) == 1
        post = posts[0]
        assert post["auth"] and post["to"] == "+15550001001"   # E.164
        inst = gw.instance()
        assert post["tags"] == {"roigate": f"{inst}-{j['id']}-1",
                                "roigate_job": f"{inst}-{j['id']}"}
        assert post["header_text"] == "Example Hospital HIM REQ-2026-0457"
        # One document goes out as "file", as the documentation and
        # phaxio-ruby's recorded traffic send it.
        assert post["fields"] == ["file", "header_text", "tag[roigate]",
                                  "tag[roigate_job]", "to"]
        assert "Testpatient" not in post["header_text"]
        # One PDF: the cover sheet and the three documents, 1-bit for fax.
        assert [f["name"] for f in post["files"]] == ["ROI-FAX-1.pdf"]
        assert post["files"][0]["pdf"] and post["files"][0]["pages"] == 4
        tos = [e["to"] for e in show["events"]]
        assert tos.count("awaiting_confirmation") >= 1
        assert outcomes(gw, j) == ["attempt", "sent", "delivered"]
        d = show["disclosures"][-1]
        assert d["remote_id"] == show["job"]["remote_id"]
        assert d["pages"] == 4 == show["job"]["pages"]
        # Phaxio's recipients[] carry no CSID: none is made up.
        assert "CSID" not in d["detail"]
        assert "completed 20" in d["detail"]
    finally:
        gw.stop()


def test_busy_twice_then_success(tmp_path, pki, api):
    """Busy is dialled again after wait_busy.  The service lists one fax a
    page here: the lookup before the third send reads both pages of the
    job's two earlier (busy) faxes."""
    api.control(max_per_page=1)
    gw = fax_gateway(tmp_path, pki, api)
    try:
        add_fax(gw, "busy-fax", "+15550001002")
        gw.drop(Packet("ROI-FAX-BUSY", recipient="busy-fax"))
        j = wait_state(gw, "ROI-FAX-BUSY", ("delivered", "failed", "held"),
                       timeout=40)
        assert j["state"] == "delivered", gw.job(j["id"])["job"]["last_error"]
        posts = api.posts("+15550001002")
        assert len(posts) == 3                    # three sends, one delivery
        # The busy wait (1 s in this configuration) was honoured.
        assert posts[1]["at"] - posts[0]["at"] >= 1.0
        assert posts[2]["at"] - posts[1]["at"] >= 1.0
        got = outcomes(gw, j)
        assert got.count("delivered") == 1 and got.count("deferred") == 2
        deferred = [d for d in gw.job(j["id"])["disclosures"]
                    if d["outcome"] == "deferred"]
        assert all("Busy" in d["detail"] for d in deferred)
        assert [q["query"]["page"] for q in api.lookups()] == ["1", "1", "1", "2"]
    finally:
        gw.stop()


@pytest.mark.parametrize("number,state,words", [
    # Line errors that say the number cannot take a fax fail at once
    # instead of being re-dialled for days (Phaxio's lineError 34, 73, 50).
    ("+15550001003", "failed", "the number cannot take a fax (lineError 34: "
     "Phone number not operational)"),
    ("+15550001013", "failed", "(lineError 73: Number changed)"),
    ("+15550001014", "failed", "(lineError 50: Call rejected)"),
    # The account cannot pay: held, with every other fax job.
    ("+15550001015", "held", "the fax account cannot send (generalError 5"),
    # The provider could not read our document: held for an administrator.
    ("+15550001016", "held", "could not convert the document "
     "(documentConversionError 133"),
    # A 422 answer: refused with the provider's own words, never resent.
    ("+15550001008", "failed", "Phone number is not a valid fax number"),
])
def test_final_failures(tmp_path, pki, api, number, state, words):
    gw = fax_gateway(tmp_path, pki, api)
    try:
        add_fax(gw, "fax", number)
        gw.drop(Packet("ROI-FAX-F", recipient="fax"))
        j = wait_state(gw, "ROI-FAX-F", ("delivered", "failed", "held"))
        assert j["state"] == state
        assert words in gw.job(j["id"])["job"]["last_error"]
        assert len(api.posts()) == 1                 # never sent again
    finally:
        gw.stop()


@pytest.mark.parametrize("number,words", [
    ("+15550001005", "rate limiting us (HTTP 429"),
    ("+15550001006", "failing (HTTP 500"),
])
def test_429_and_500_are_retried(tmp_path, pki, api, number, words):
    gw = fax_gateway(tmp_path, pki, api)
    try:
        add_fax(gw, "fax", number)
        gw.drop(Packet("ROI-FAX-R", recipient="fax"))
        j = wait_state(gw, "ROI-FAX-R", ("delivered", "failed", "held"))
        assert j["state"] == "delivered"
        deferred = [d for d in gw.job(j["id"])["disclosures"]
                    if d["outcome"] == "deferred"]
        assert len(deferred) == 1 and words in deferred[0]["detail"]
        posts = api.posts(number)
        assert len(posts) == 2
        if number.endswith("5"):                     # Retry-After: 1 honoured
            assert posts[1]["at"] - posts[0]["at"] >= 1.0
    finally:
        gw.stop()


def test_401_holds_every_fax_job(tmp_path, pki, api):
    gw = fax_gateway(tmp_path, pki, api, creds="test_api_key:wrong",
                     workers="1")
    try:
        add_fax(gw, "fax", "+15550001001")
        add_fax(gw, "fax2", "+15550001008")
        gw.add_recipient("records-desk")
        gw.stop()               # a batch waiting when the credentials fail
        gw.drop(Packet("ROI-FAX-401", recipient="fax"))
        gw.drop(Packet("ROI-FAX-401B", recipient="fax2"))
        gw.drop(Packet("ROI-FAX-LOCAL", recipient="records-desk"))
        gw.start()
        a = wait_state(gw, "ROI-FAX-401", ("delivered", "failed", "held"))
        b = wait_state(gw, "ROI-FAX-401B", ("delivered", "failed", "held"))
        assert a["state"] == b["state"] == "held"
        errors = [gw.job(x["id"])["job"]["last_error"] for x in (a, b)]
        assert all("refused our credentials (HTTP 401" in e for e in errors)
        assert any("held with every waiting job of transport faxapi" in e
                   for e in errors)
        # Other transports go on; the refused credentials never leak.
        wait_state(gw, "ROI-FAX-LOCAL", "delivered")
        assert not any(p["auth"] for p in api.posts())
        assert "synthetic_api_secret" not in gw.log()
    finally:
        gw.stop()


def test_hanging_server_times_out_as_tempfail(tmp_path, pki, api):
    gw = fax_gateway(tmp_path, pki, api, job_timeout="20s")
    try:
        add_fax(gw, "fax", "+15550001007")
        gw.drop(Packet("ROI-FAX-HANG", recipient="fax"))
        j = wait_state(gw, "ROI-FAX-HANG", ("deferred", "failed", "held"))
        assert j["state"] == "deferred"
        assert "timed out" in gw.job(j["id"])["job"]["last_error"]
    finally:
        gw.stop()


def test_number_not_in_e164_is_never_dialled(tmp_path, pki, api):
    """Refused when it is added, so no packet can be queued for it."""
    gw = fax_gateway(tmp_path, pki, api)
    try:
        r = gw.roictl("recipient", "add", "fax", "--name", "Fax (synthetic)",
                      "--transport", "faxapi", "--address", "555-0001 ext 7")
        assert r.returncode == 65, r
        assert "is not a fax number in E.164 form" in r.stderr
        assert gw.call("recipient-show", recipient="fax")["code"] == "not_found"
        assert api.requests() == []
    finally:
        gw.stop()


def test_crash_after_acceptance_finds_the_fax_by_tag(tmp_path, pki, api):
    gw = fax_gateway(tmp_path, pki, api)
    add_fax(gw, "clinic-fax", "+15550001001")
    gw.stop()
    gw.start(env={"ROIGATE_TEST_CRASH": "queue_before_outcome"})
    gw.drop(Packet("ROI-FAX-CRASH", recipient="clinic-fax"))
    assert gw.wait_exit() == -9
    assert len(api.posts()) == 1              # the API accepted it
    gw.start()
    try:
        j = wait_state(gw, "ROI-FAX-CRASH", ("delivered", "failed", "held"))
        assert j["state"] == "delivered"
        assert len(api.posts()) == 1          # and it was not sent again
        lookups = api.lookups()
        assert len(lookups) == 2              # before each send
        tag = f"{gw.instance()}-{j['id']}"
        assert all(q["query"]["tag[roigate_job]"] == tag for q in lookups)
        got = outcomes(gw, j)
        assert got[:2] == ["attempt", "interrupted"] and got[-1] == "delivered"
        assert "already sent for this job" in " ".join(
            d["detail"] for d in gw.job(j["id"])["disclosures"])
    finally:
        gw.stop()


def test_no_final_status_is_flagged_not_resent(tmp_path, pki, api):
    gw = fax_gateway(tmp_path, pki, api, confirm_timeout="2s")
    try:
        add_fax(gw, "fax", "+15550001009")       # stays "inprogress"
        gw.drop(Packet("ROI-FAX-STUCK", recipient="fax"))
        j = wait_state(gw, "ROI-FAX-STUCK", ("held", "delivered", "failed"))
        assert j["state"] == "held"
        assert "no final status" in gw.job(j["id"])["job"]["last_error"]
        assert len(api.posts()) == 1              # flagged, not sent again
    finally:
        gw.stop()


def test_due_polls_share_one_worker_and_one_connection(tmp_path, pki, api):
    """Faxes waiting for their status are polled by one worker in a row,
    over one kept-alive HTTPS connection, not a process and a TLS
    handshake each."""
    gw = fax_gateway(tmp_path, pki, api, workers="1", poll_interval="30s")
    add_fax(gw, "fax", "+15550001009")           # stays "inprogress"
    for i in range(3):
        gw.drop(Packet(f"ROI-FAX-POLL{i}", recipient="fax"))
    jobs = [wait_state(gw, f"ROI-FAX-POLL{i}", "awaiting_confirmation")
            for i in range(3)]
    gw.stop()
    # As if the poll interval had passed while the daemon was down: all
    # three polls are due at once when it starts.
    with sqlite3.connect(os.path.join(gw.state, "roigate.db")) as db:
        db.execute("UPDATE jobs SET next_at = 0 WHERE state = 'awaiting_confirmation'")
    restart = time.time()
    gw.start()
    try:
        ids = {gw.job(j["id"])["job"]["remote_id"] for j in jobs}

        def polls():
            return [r for r in api.requests() if r["method"] == "GET" and
                    r["at"] >= restart and r["path"].rsplit("/", 1)[1] in ids]
        wait_for("a poll of each fax", lambda: len(polls()) >= 3)
        assert sorted(p["path"].rsplit("/", 1)[1] for p in polls()[:3]) == sorted(ids)
        assert len({p["peer"] for p in polls()[:3]}) == 1
        assert len(api.posts()) == 3                 # polled, never resent
    finally:
        gw.stop()


def delivered_after_one_deferral(tmp_path, pki, api, number, packet_id):
    """Send one packet; it must be delivered with two sends, one deferred:
    the deferral's words."""
    gw = fax_gateway(tmp_path, pki, api)
    try:
        add_fax(gw, "fax", number)
        gw.drop(Packet(packet_id, recipient="fax"))
        j = wait_state(gw, packet_id, ("delivered", "failed", "held"))
        assert j["state"] == "delivered", gw.job(j["id"])["job"]["last_error"]
        assert len(api.posts()) == 2
        deferred = [d["detail"] for d in gw.job(j["id"])["disclosures"]
                    if d["outcome"] == "deferred"]
        assert len(deferred) == 1
        return deferred[0]
    finally:
        gw.stop()


def test_line_dropped_during_the_fax_is_dialled_again(tmp_path, pki, api):
    """A fax to one number has no "partialsuccess" meaning part of the
    pages: a call that breaks off is a failed fax (faxError), and is
    dialled again like any other line trouble, not held as half sent."""
    why = delivered_after_one_deferral(tmp_path, pki, api, "+15550001004",
                                       "ROI-FAX-DROP")
    assert "(faxError 8: No response after sending a page)" in why


def test_2xx_without_success_is_an_error(tmp_path, pki, api):
    """HTTP 200 with "success": false is no acceptance: the send is
    deferred (with the service's words) and tried again, once."""
    why = delivered_after_one_deferral(tmp_path, pki, api, "+15550001011",
                                       "ROI-FAX-NOSUCCESS")
    assert "HTTP 200 without success (Fax could not be queued)" in why


def crash_after_acceptance(gw, api, packet_id, number="+15550001001"):
    """A fax the service accepted, whose answer the daemon never recorded."""
    add_fax(gw, "clinic-fax", number)
    gw.stop()
    gw.start(env={"ROIGATE_TEST_CRASH": "queue_before_outcome"})
    gw.drop(Packet(packet_id, recipient="clinic-fax"))
    assert gw.wait_exit() == -9
    assert len(api.posts()) == 1


def test_lookup_answer_without_success_sends_nothing(tmp_path, pki, api):
    """A list of faxes answered with "success": false is not an empty
    list: the job waits and looks again rather than dialling twice."""
    gw = fax_gateway(tmp_path, pki, api)
    crash_after_acceptance(gw, api, "ROI-FAX-SOFT")
    api.control(list_unsuccessful=1)
    gw.start()
    try:
        j = wait_state(gw, "ROI-FAX-SOFT", ("delivered", "failed", "held"))
        assert j["state"] == "delivered"
        assert len(api.posts()) == 1
        details = [d["detail"] for d in gw.job(j["id"])["disclosures"]]
        assert any("without success (Could not retrieve faxes)" in d
                   for d in details)
        assert any("already sent for this job" in d for d in details)
    finally:
        gw.stop()


def test_lookup_after_a_week_still_finds_the_fax(tmp_path, pki, api):
    """Phaxio lists only the last week unless created_after says more: the
    lookup asks from the job's acceptance, so a retry eight days later
    still finds the fax instead of sending it again."""
    gw = fax_gateway(tmp_path, pki, api)
    crash_after_acceptance(gw, api, "ROI-FAX-WEEK")
    api.control(clock=8 * 86400)
    gw.start()
    try:
        j = wait_state(gw, "ROI-FAX-WEEK", ("delivered", "failed", "held"))
        assert j["state"] == "delivered"
        assert len(api.posts()) == 1              # not sent again
        q = api.lookups()[-1]["query"]
        accepted = datetime.datetime.fromisoformat(
            gw.job(j["id"])["job"]["created_at"].replace("Z", "+00:00")).timestamp()
        after = datetime.datetime.fromisoformat(q["created_after"]).timestamp()
        assert accepted - 300 <= after <= accepted
        assert q["per_page"] == "1000" and q["page"] == "1"
    finally:
        gw.stop()


def test_header_text_fits_the_provider_and_roigated_n_says_so(tmp_path, pki,
                                                              api):
    org = "Sankt Görans Universitetssjukhus, Avdelning för Journalutlämning"
    gw = fax_gateway(tmp_path, pki, api, fax={"organization": org},
                     start=False)
    r = subprocess.run([os.path.join(BUILD, "roigated"), "-n", "-f", gw.conf],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"organization \"{org}\" is {len(org)} characters; phaxio's fax " \
        "header holds 50, so with the request reference only its first 29 " \
        "are sent" in r.stderr
    gw.start()
    try:
        add_fax(gw, "fax", "+15550001010")
        p = Packet("ROI-FAX-HEADER", recipient="fax")
        p.manifest["request"]["id"] = "REQ-2026-0457"
        gw.drop(p)
        j = wait_state(gw, "ROI-FAX-HEADER", ("delivered", "failed", "held"))
        assert j["state"] == "delivered", gw.job(j["id"])["job"]["last_error"]
        header = api.posts()[0]["header_text"]
        assert len(header) == 50                  # characters, not bytes
        assert header == org[:36] + " REQ-2026-0457"
    finally:
        gw.stop()


@pytest.mark.parametrize("filtered", [True, False],
                         ids=["tag-filter", "provider-ignores-tag-filter"])
def test_two_gateways_on_one_account_take_only_their_own_faxes(
        tmp_path, pki, api, filtered):
    """Two gateways with their own databases (the same job numbers) on one
    fax account: each records only its own fax, and each number gets
    exactly one.  Even when the provider lists every fax (its tag filter
    ignored), the other gateway's fax is logged and ignored."""
    api.control(ignore_tag_filter=not filtered)
    a = fax_gateway(tmp_path, pki, api, name="gw-a")
    b = None
    try:
        add_fax(a, "fax", "+15550001001")
        a.drop(Packet("ROI-FAX-A", recipient="fax"))
        ja = wait_state(a, "ROI-FAX-A", ("delivered", "failed", "held"))
        b = fax_gateway(tmp_path, pki, api, name="gw-b")
        add_fax(b, "fax", "+15550001010")
        b.drop(Packet("ROI-FAX-B", recipient="fax"))
        jb = wait_state(b, "ROI-FAX-B", ("delivered", "failed", "held"))
        assert ja["id"] == jb["id"]                 # the same job number
        assert a.instance() != b.instance()
        assert ja["state"] == jb["state"] == "delivered"
        assert len(api.posts("+15550001001")) == 1
        assert len(api.posts("+15550001010")) == 1
        fa = a.job(ja["id"])["job"]["remote_id"]
        fb = b.job(jb["id"])["job"]["remote_id"]
        assert fa != fb
        post_b = api.posts("+15550001010")[0]
        assert post_b["tags"]["roigate_job"] == f"{b.instance()}-{jb['id']}"
        ignored = [line for line in b.log().splitlines()
                   if f"fax {fa} carries another job's tag" in line]
        assert len(ignored) == (0 if filtered else 1)
        assert not any("+1555" in line for line in ignored)  # ids only
    finally:
        a.stop()
        if b:
            b.stop()
