"""The sftp transport against a real OpenSSH sshd on 127.0.0.1."""
import hashlib
import os
import subprocess

import pytest

import docs

from gateway import BUILD, Gateway, Packet, pdf_pages, sha256, wait_for, wait_state
from sshd import Sshd, ThrottleProxy, keygen


@pytest.fixture
def sshd(tmp_path):
    s = Sshd(str(tmp_path / "sshd"))
    s.start()
    yield s
    s.kill()


def sftp_gateway(tmp_path, sshd, **overrides):
    gw = Gateway(str(tmp_path / "gw"), **overrides)
    gw.settings["transport sftp"] = {"identity": sshd.client_key,
                                     "connect_timeout": "3", "timeout": "10"}
    for k, v in overrides.get("transport_sftp", {}).items():
        gw.settings["transport sftp"][k] = v
    gw.write_conf()
    gw.start()
    return gw


def add_sftp_recipient(gw, rid, address, expect, *params):
    """Add an SFTP recipient and verify it as an administrator would: the
    daemon probes the server and pins the host key the partner told us."""
    args = ["recipient", "add", rid, "--name", f"Partner {rid} (synthetic)",
            "--transport", "sftp", "--address", address]
    for p in params:
        args += ["--param", p]
    gw.roictl(*args, check=0)
    return gw.roictl("recipient", "verify", rid, "--expect", expect, check=0)


def test_delivery_with_bytes_and_hash_checked_on_the_server(tmp_path, sshd):
    gw = sftp_gateway(tmp_path, sshd)
    try:
        add_sftp_recipient(gw, "payer-sftp", sshd.address(), sshd.fingerprint)
        p = Packet("ROI-SFTP-1", recipient="payer-sftp")
        gw.drop(p)
        j = wait_state(gw, "ROI-SFTP-1", ("delivered", "failed", "held"))
        show = gw.job(j["id"])
        assert j["state"] == "delivered", show["job"]["last_error"]
        # One PDF named after the packet, the bytes the log recorded.
        assert os.listdir(sshd.inbox) == ["ROI-SFTP-1.pdf"]
        path = os.path.join(sshd.inbox, "ROI-SFTP-1.pdf")
        with open(path, "rb") as f:
            got = hashlib.sha256(f.read()).hexdigest()
        assert os.stat(path).st_mode & 0o777 == 0o600
        assert pdf_pages(path) == 4
        d = show["disclosures"][-1]
        assert got == d["output_sha256"] == show["job"]["output_sha256"]
        assert d["outcome"] == "delivered"
        assert d["remote_id"] == sshd.address()
        assert sshd.fingerprint in d["detail"]
        assert "OpenSSH" in d["detail"]
        assert "verified by reading back" in d["detail"]
    finally:
        gw.stop()


def test_send_whose_answer_was_lost_is_not_duplicated(tmp_path, sshd):
    """The daemon dies after the upload but before recording it; on restart
    the send is logged interrupted and retried, and the retry finds the
    files complete on the server instead of sending a second copy."""
    gw = sftp_gateway(tmp_path, sshd)
    add_sftp_recipient(gw, "payer-sftp", sshd.address(), sshd.fingerprint)
    gw.stop()
    gw.start(env={"ROIGATE_TEST_CRASH": "queue_before_outcome"})
    p = Packet("ROI-SFTP-LOST", recipient="payer-sftp")
    gw.drop(p)
    assert gw.wait_exit() == -9
    before = {n: os.stat(os.path.join(sshd.inbox, n)).st_mtime_ns
              for n in os.listdir(sshd.inbox)}
    assert list(before) == ["ROI-SFTP-LOST.pdf"]
    gw.start()
    try:
        j = wait_state(gw, "ROI-SFTP-LOST", "delivered")
        after = {n: os.stat(os.path.join(sshd.inbox, n)).st_mtime_ns
                 for n in os.listdir(sshd.inbox)}
        assert after == before            # same files, not written again
        entries = gw.job(j["id"])["disclosures"]
        assert [e["outcome"] for e in entries] == [
            "attempt", "interrupted", "attempt", "delivered"]
        assert "already there" in entries[-1]["detail"]
    finally:
        gw.stop()


def test_retry_never_takes_a_file_it_cannot_read_back_as_delivered(
        tmp_path, sshd):
    """The retry after a lost answer finds a file of the right name and
    size, but the server no longer lets it be read: without the SHA-256
    compared it is not taken as delivered (nor replaced); the job is held
    for an administrator."""
    gw = sftp_gateway(tmp_path, sshd)
    add_sftp_recipient(gw, "payer-sftp", sshd.address(), sshd.fingerprint)
    gw.stop()
    gw.start(env={"ROIGATE_TEST_CRASH": "queue_before_outcome"})
    gw.drop(Packet("ROI-SFTP-UNREADABLE", recipient="payer-sftp"))
    assert gw.wait_exit() == -9
    path = os.path.join(sshd.inbox, "ROI-SFTP-UNREADABLE.pdf")
    with open(path, "rb") as f:
        sent = f.read()
    os.chmod(path, 0o200)                    # write-only for the account
    gw.start()
    try:
        j = wait_state(gw, "ROI-SFTP-UNREADABLE",
                       ("delivered", "held", "failed"))
        assert j["state"] == "held"
        err = gw.job(j["id"])["job"]["last_error"]
        assert "cannot be read back to compare its SHA-256; not taken as " \
            "delivered" in err
        outcomes = [e["outcome"] for e in gw.job(j["id"])["disclosures"]]
        assert "delivered" not in outcomes
        with open(path, "rb") as f:
            assert f.read() == sent           # not replaced either
        assert os.listdir(sshd.inbox) == ["ROI-SFTP-UNREADABLE.pdf"]
    finally:
        gw.stop()


def test_verify_shows_and_pins_the_host_key(tmp_path, sshd):
    gw = sftp_gateway(tmp_path, sshd)
    try:
        gw.roictl("recipient", "add", "payer-sftp", "--name", "Payer (synthetic)",
                  "--transport", "sftp", "--address", sshd.address(), check=0)
        # Not verified: nothing may go there yet.
        assert gw.json("recipient", "show", "payer-sftp")["verified"] is False
        # A value that is not what the server offers is refused.
        r = gw.roictl("recipient", "verify", "payer-sftp", "--expect",
                      "SHA256:" + "B" * 43)
        assert r.returncode == 65
        assert f"offers host_key {sshd.fingerprint}" in r.stderr
        assert gw.json("recipient", "show", "payer-sftp")["verified"] is False
        # Without a terminal, roictl will not guess: --yes or --expect.
        r = gw.roictl("recipient", "verify", "payer-sftp")
        assert r.returncode == 64 and "--yes" in r.stderr
        r = gw.roictl("recipient", "verify", "payer-sftp", "--yes", check=0)
        assert f"offers host key {sshd.fingerprint}" in r.stdout
        assert "our key is accepted for user nobody" in r.stdout
        rc = gw.json("recipient", "show", "payer-sftp")
        assert rc["verified"] is True
        assert rc["params"]["host_key"] == sshd.fingerprint
        # The daemon only pins what its probe saw, whatever a client sends.
        r = gw.call("recipient-verify", recipient="payer-sftp",
                    pin={"param": "host_key", "value": "SHA256:" + "C" * 43})
        assert r["ok"] is False and r["code"] == "conflict"
        assert "was not what the last probe of payer-sftp found" in r["error"]
        assert gw.json("recipient", "show", "payer-sftp")["params"][
            "host_key"] == sshd.fingerprint
        audit = gw.jsonl("audit", "--limit", "50")
        assert any(a["op"] == "recipient-probe" for a in audit)
    finally:
        gw.stop()


def test_changed_host_key_is_refused_and_held(tmp_path, sshd):
    gw = sftp_gateway(tmp_path, sshd)
    try:
        add_sftp_recipient(gw, "payer-sftp", sshd.address(), sshd.fingerprint)
        old = sshd.fingerprint
        sshd.kill()
        sshd.new_host_key()
        sshd.start()
        gw.drop(Packet("ROI-SFTP-KEY", recipient="payer-sftp"))
        j = wait_state(gw, "ROI-SFTP-KEY", ("held", "failed", "delivered"))
        assert j["state"] == "held"
        err = gw.job(j["id"])["job"]["last_error"]
        assert "host key mismatch" in err
        assert f"the server offered {sshd.fingerprint} but {old} is pinned" in err
        assert os.listdir(sshd.inbox) == []
    finally:
        gw.stop()


def test_wrong_client_key_is_a_permanent_failure(tmp_path, sshd):
    other = keygen(os.path.join(sshd.root, "someone_else"))
    sshd.authorize(other + ".pub")
    gw = sftp_gateway(tmp_path, sshd)
    try:
        add_sftp_recipient(gw, "payer-sftp", sshd.address(), sshd.fingerprint)
        gw.drop(Packet("ROI-SFTP-AUTH", recipient="payer-sftp"))
        j = wait_state(gw, "ROI-SFTP-AUTH", ("failed", "held", "delivered"))
        assert j["state"] == "failed"
        assert "refused our key for user nobody" in gw.job(j["id"])["job"][
            "last_error"]
        assert gw.job(j["id"])["job"]["attempts"] == 1
    finally:
        gw.stop()


def test_folder_without_write_permission_is_a_clear_permfail(tmp_path, sshd):
    gw = sftp_gateway(tmp_path, sshd)
    try:
        add_sftp_recipient(gw, "payer-sftp", sshd.address(sshd.readonly),
                           sshd.fingerprint)
        gw.drop(Packet("ROI-SFTP-RO", recipient="payer-sftp"))
        j = wait_state(gw, "ROI-SFTP-RO", ("failed", "held", "delivered"))
        assert j["state"] == "failed"
        err = gw.job(j["id"])["job"]["last_error"]
        assert "permission denied" in err and sshd.readonly in err
    finally:
        gw.stop()


def test_missing_folder_is_a_clear_permfail(tmp_path, sshd):
    gw = sftp_gateway(tmp_path, sshd)
    try:
        add_sftp_recipient(gw, "payer-sftp", sshd.address("/no/such/folder"),
                           sshd.fingerprint)
        gw.drop(Packet("ROI-SFTP-NOFOLDER", recipient="payer-sftp"))
        j = wait_state(gw, "ROI-SFTP-NOFOLDER", ("failed", "held", "delivered"))
        assert j["state"] == "failed"
        assert "no such file or folder" in gw.job(j["id"])["job"]["last_error"]
    finally:
        gw.stop()


def test_server_that_never_answers_times_out_as_tempfail(tmp_path, sshd):
    proxy = ThrottleProxy(sshd.port, None)
    gw = sftp_gateway(tmp_path, sshd, transport_sftp={"connect_timeout": "1"})
    try:
        add_sftp_recipient(gw, "silent", sshd.address(port=proxy.port),
                           sshd.fingerprint)
        # The server now accepts the TCP connection and never answers.
        proxy.silent = True
        gw.drop(Packet("ROI-SFTP-SILENT", recipient="silent"))
        j = wait_state(gw, "ROI-SFTP-SILENT", ("deferred", "failed", "held"))
        assert j["state"] == "deferred"
        err = gw.job(j["id"])["job"]["last_error"]
        assert "cannot connect to 127.0.0.1" in err
        assert "Timeout" in err, err
    finally:
        gw.stop()
        proxy.close()


def test_sshd_stopped_mid_upload_then_delivered_once(tmp_path, sshd):
    """An output of about 40 MB (eight pages of noise scanned at 300 dpi),
    throttled to about 25 MB/s on its way to the server so that sshd can
    be killed half-way; restarted, the job is retried and delivered
    exactly once with no .part left behind."""
    proxy = ThrottleProxy(sshd.port, 25 * 1024 * 1024)
    gw = sftp_gateway(tmp_path, sshd,
                      spool={"max_file_size": "64M", "max_packet_size": "128M"},
                      queue={"job_timeout": "120s", "max_attempts": "50",
                             "backoff_max": "1s"},
                      render={"document_dpi": "300", "jpeg_quality": "95"})
    try:
        add_sftp_recipient(gw, "bulk", sshd.address(port=proxy.port),
                           sshd.fingerprint)
        p = docs.noise_packet("ROI-SFTP-BIG", "bulk", pages=8)
        gw.drop(p)
        part = os.path.join(sshd.inbox, "ROI-SFTP-BIG.pdf.part")
        wait_for("the upload to be under way", lambda: os.path.exists(part) and
                 os.stat(part).st_size > 5 * 1024 * 1024, timeout=60)
        sshd.kill()
        j = wait_state(gw, "ROI-SFTP-BIG", "deferred", timeout=60)
        sshd.start()
        j = wait_state(gw, "ROI-SFTP-BIG", "delivered", timeout=120)
        assert sorted(os.listdir(sshd.inbox)) == ["ROI-SFTP-BIG.pdf"]
        with open(os.path.join(sshd.inbox, "ROI-SFTP-BIG.pdf"), "rb") as f:
            got = hashlib.sha256(f.read()).hexdigest()
        assert got == gw.job(j["id"])["job"]["output_sha256"]
        outcomes = [d["outcome"] for d in gw.job(j["id"])["disclosures"]]
        assert outcomes[0] == "attempt" and "deferred" in outcomes
        assert outcomes[-1] == "delivered" and outcomes.count("delivered") == 1
    finally:
        gw.stop()
        proxy.close()


def test_key_file_with_loose_permissions_is_refused_at_start(tmp_path, sshd):
    gw = Gateway(str(tmp_path / "gw"))
    gw.settings["transport sftp"] = {"identity": sshd.client_key}
    gw.write_conf()
    os.chmod(sshd.client_key, 0o644)
    r = subprocess.run([os.path.join(BUILD, "roigated"), "-n", "-f", gw.conf],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "others may read the private key; run chmod 600" in r.stderr
    assert f"{gw.conf}:" in r.stderr
    os.chmod(sshd.client_key, 0o600)
    r = subprocess.run([os.path.join(BUILD, "roigated"), "-n", "-f", gw.conf],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


def _logins(sshd):
    with open(os.path.join(sshd.root, "sshd.log")) as f:
        return f.read().count("Accepted publickey for nobody")


def test_jobs_that_come_together_share_one_connection(tmp_path, sshd):
    gw = sftp_gateway(tmp_path, sshd, queue={"workers": "1"})
    try:
        add_sftp_recipient(gw, "payer-sftp", sshd.address(), sshd.fingerprint)
        add_sftp_recipient(gw, "other-sftp", sshd.address(sshd.inbox + "/other"),
                           sshd.fingerprint)
        os.mkdir(os.path.join(sshd.inbox, "other"))
        os.chown(os.path.join(sshd.inbox, "other"), *_nobody())
        before = _logins(sshd)
        gw.stop()                   # queue a burst while nothing runs
        for i in range(5):
            gw.drop(Packet(f"ROI-SFTP-B{i}", recipient="payer-sftp"))
        for i in range(2):
            gw.drop(Packet(f"ROI-SFTP-O{i}", recipient="other-sftp"))
        gw.start()
        for i in range(5):
            wait_state(gw, f"ROI-SFTP-B{i}", "delivered")
        for i in range(2):
            wait_state(gw, f"ROI-SFTP-O{i}", "delivered")
        # One connection per recipient, never one shared between them.
        assert _logins(sshd) - before == 2
        details = [gw.job_by_packet(f"ROI-SFTP-B{i}") for i in range(5)]
        reused = [d for d in details if "connection reused" in
                  gw.job(d["id"])["disclosures"][-1]["detail"]]
        assert len(reused) == 4
        names = os.listdir(sshd.inbox)
        assert sum(n.startswith("ROI-SFTP-B") for n in names) == 5
        assert not any(n.startswith("ROI-SFTP-O") for n in names)
        assert len(os.listdir(os.path.join(sshd.inbox, "other"))) == 2
    finally:
        gw.stop()


def _nobody():
    import pwd
    pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid
