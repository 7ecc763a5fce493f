"""The smime transport against a real SMTP server with STARTTLS (aiosmtpd),
checked with `openssl cms` as the recipient would."""
import datetime
import email
import hashlib
import os
import re
import sqlite3
import subprocess
import time

import pytest

import docs

from gateway import BUILD, TOP, Gateway, Packet, wait_state
from pki import PKI
from sshd import free_port


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return PKI(str(tmp_path_factory.mktemp("pki")))


class Smtpd:
    def __init__(self, folder, cert=None, key=None, auth=None):
        self.store = folder
        os.makedirs(folder, exist_ok=True)
        self.port = free_port()
        args = ["/usr/bin/python3", os.path.join(TOP, "tests", "integration",
                                                 "smtp_server.py"),
                str(self.port), folder]
        if cert:
            args += [cert, key]
        env = dict(os.environ)
        if auth:
            env["SMTP_AUTH"] = auth
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True,
                                     env=env)
        line = self.proc.stdout.readline()      # the server says when ready
        if line.strip() != "ready":
            raise AssertionError("the SMTP server did not start")

    def messages(self):
        return sorted(n for n in os.listdir(self.store) if n.endswith(".eml"))

    def connections(self):
        p = os.path.join(self.store, "connections")
        return open(p).read().split() if os.path.exists(p) else []

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def smtpd(tmp_path, pki):
    s = Smtpd(str(tmp_path / "mail"), *pki.relay)
    yield s
    s.stop()


def smime_gateway(tmp_path, pki, port, **extra):
    gw = Gateway(str(tmp_path / "gw"))
    gw.settings["transport smime"] = {
        "relay": f"smtp://127.0.0.1:{port}", "ca_file": pki.ca.pem,
        "from": "roi@hospital.test", "from_name": "Example Hospital HIM (synthetic)",
        "cert": pki.gateway[0], "key": pki.gateway[1],
        "template": os.path.join(TOP, "templates", "email.txt"),
        "connect_timeout": "5", "timeout": "30", **extra}
    gw.write_conf()
    gw.start()
    return gw


def add_recipient(gw, rid, address, cert, verify=True):
    """Add (the certificate is checked at once) and, if asked, verify."""
    r = gw.roictl("recipient", "add", rid, "--name", f"{rid} (synthetic)",
                  "--transport", "smime", "--address", address,
                  "--param", f"cert=@{cert}", check=0 if verify else None)
    if verify:
        assert "checked: certificate" in r.stdout
        return gw.roictl("recipient", "verify", rid, "--yes", check=0)
    return r


def one_doc_packet(pid, recipient):
    p = Packet(pid, recipient=recipient)
    p.files = {"labs-2026-10.pdf": p.files["labs-2026-10.pdf"]}
    p.manifest["documents"] = p.manifest["documents"][:1]
    return p


def openssl(*args, input=None):
    r = subprocess.run(["openssl", *args], capture_output=True, input=input)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


def test_signed_encrypted_message_decrypts_and_verifies(tmp_path, pki, smtpd):
    gw = smime_gateway(tmp_path, pki, smtpd.port)
    try:
        r = add_recipient(gw, "dr-ada", "dr.ada@clinic.test", pki.recipient[0])
        assert "is valid and usable for encryption" in r.stdout
        p = one_doc_packet("ROI-MAIL-1", "dr-ada")
        gw.drop(p)
        j = wait_state(gw, "ROI-MAIL-1", ("delivered", "failed", "held", "deferred"))
        show = gw.job(j["id"])
        assert j["state"] == "delivered", show["job"]["last_error"]
        assert smtpd.messages() == ["1.eml"]
        raw = open(os.path.join(smtpd.store, "1.eml"), "rb").read()
        # CRLF throughout; no PHI in the headers.
        assert b"\n" not in raw.replace(b"\r\n", b"")
        head = raw.split(b"\r\n\r\n", 1)[0].decode()
        assert "Subject: Records release for request REQ-2026-0457 (ROI-MAIL-1)" in head
        assert "Testpatient" not in head and "TEST-000123" not in head
        assert "application/pkcs7-mime" in head and "enveloped-data" in head
        # The recipient decrypts it with their key...
        signed = openssl("cms", "-decrypt", "-recip", pki.recipient[0],
                         "-inkey", pki.recipient[1], input=raw)
        assert b"multipart/signed" in signed
        # ...and checks the signature against the gateway's CA.
        inner = openssl("cms", "-verify", "-CAfile", pki.ca.pem, input=signed)
        msg = email.message_from_bytes(inner)
        parts = [q for q in msg.walk() if q.get_filename()]
        assert [q.get_filename() for q in parts] == ["ROI-MAIL-1.pdf"]
        assert parts[0].get_content_type() == "application/pdf"
        data = parts[0].get_payload(decode=True)
        assert data.startswith(b"%PDF-")
        assert hashlib.sha256(data).hexdigest() == show["job"]["output_sha256"]
        body = [q for q in msg.walk() if q.get_content_type() == "text/plain"][0]
        assert "REQ-2026-0457" in body.get_payload(decode=True).decode()
        d = show["disclosures"][-1]
        assert d["outcome"] == "delivered"
        assert "queued as Q00001" in d["detail"]
        fpr = gw.json("recipient", "show", "dr-ada")["params"]["cert_sha256"]
        assert fpr in d["detail"]
        assert d["remote_id"].startswith("<roigate.") and "@hospital.test>" in d["remote_id"]
        assert open(os.path.join(smtpd.store, "1.envelope")).read().endswith(
            "tls=True\n")
    finally:
        gw.stop()


def test_server_without_starttls_is_refused(tmp_path, pki):
    plain = Smtpd(str(tmp_path / "plain"))
    gw = smime_gateway(tmp_path, pki, plain.port)
    try:
        add_recipient(gw, "dr-ada", "dr.ada@clinic.test", pki.recipient[0])
        gw.drop(one_doc_packet("ROI-MAIL-PLAIN", "dr-ada"))
        j = wait_state(gw, "ROI-MAIL-PLAIN", ("failed", "delivered", "held"))
        assert j["state"] == "failed"
        assert "offers no STARTTLS; nothing was sent" in gw.job(j["id"])["job"][
            "last_error"]
        assert plain.messages() == []
    finally:
        gw.stop()
        plain.stop()


def test_server_certificate_from_another_ca_is_refused(tmp_path, pki):
    impostor = Smtpd(str(tmp_path / "impostor"), *pki.impostor_relay)
    gw = smime_gateway(tmp_path, pki, impostor.port)
    try:
        add_recipient(gw, "dr-ada", "dr.ada@clinic.test", pki.recipient[0])
        gw.drop(one_doc_packet("ROI-MAIL-MITM", "dr-ada"))
        j = wait_state(gw, "ROI-MAIL-MITM", ("failed", "delivered", "held"))
        assert j["state"] == "failed"
        assert "certificate does not verify" in gw.job(j["id"])["job"]["last_error"]
        assert impostor.messages() == []
    finally:
        gw.stop()
        impostor.stop()


def test_4xx_is_retried_and_5xx_fails(tmp_path, pki, smtpd):
    gw = smime_gateway(tmp_path, pki, smtpd.port)
    try:
        add_recipient(gw, "busy", "busy@clinic.test", pki.busy[0])
        add_recipient(gw, "gone", "reject@clinic.test", pki.reject[0])
        gw.drop(one_doc_packet("ROI-MAIL-451", "busy"))
        gw.drop(one_doc_packet("ROI-MAIL-550", "gone"))
        j = wait_state(gw, "ROI-MAIL-451", "deferred")
        assert "451 4.2.1 mailbox busy" in gw.job(j["id"])["job"]["last_error"]
        j = wait_state(gw, "ROI-MAIL-550", ("failed", "deferred"))
        assert j["state"] == "failed"
        assert "550 5.1.1 no such mailbox" in gw.job(j["id"])["job"]["last_error"]
        assert smtpd.messages() == []
    finally:
        gw.stop()


def test_bad_recipient_certificates_are_refused_at_verification(tmp_path, pki,
                                                                 smtpd):
    gw = smime_gateway(tmp_path, pki, smtpd.port)
    try:
        cases = [("old", "old@clinic.test", pki.expired[0], "has expired"),
                 ("weak", "weak@clinic.test", pki.weak[0],
                  "has a 1024-bit key; at least 2048 bits"),
                 ("signonly", "sign@clinic.test", pki.no_encipher[0],
                  "does not allow key encipherment"),
                 ("wrongaddr", "someone@else.test", pki.recipient[0],
                  "is not for someone@else.test")]
        for rid, addr, cert, why in cases:
            # Checked when added: the clerk sees the problem at once...
            r = add_recipient(gw, rid, addr, cert, verify=False)
            assert r.returncode == 65, r
            assert "cannot be verified as it is" in r.stderr and why in r.stderr
            # ...and it cannot be verified either.
            r = gw.roictl("recipient", "verify", rid, "--yes")
            assert r.returncode == 69, r
            assert "cannot be verified" in r.stderr and why in r.stderr, r.stderr
            assert gw.json("recipient", "show", rid)["verified"] is False
    finally:
        gw.stop()


def test_expired_certificate_fails_before_any_connection(tmp_path, pki, smtpd):
    soon = pki.ca.issue("soon", email="soon@clinic.test",
                        after=datetime.datetime.utcnow() +
                        datetime.timedelta(seconds=3))
    gw = smime_gateway(tmp_path, pki, smtpd.port)
    try:
        add_recipient(gw, "soon", "soon@clinic.test", soon[0])
        assert gw.json("recipient", "show", "soon")["verified"] is True
        # Time passes (the test's subject, not a synchronisation).
        time.sleep(4)
        before = len(smtpd.connections())
        gw.drop(one_doc_packet("ROI-MAIL-EXP", "soon"))
        j = wait_state(gw, "ROI-MAIL-EXP", ("failed", "held", "delivered"))
        assert j["state"] in ("held", "failed")
        assert "has expired" in gw.job(j["id"])["job"]["last_error"]
        assert len(smtpd.connections()) == before
        assert smtpd.messages() == []
    finally:
        gw.stop()


def test_mdn_requested_when_the_recipient_asks(tmp_path, pki, smtpd):
    gw = smime_gateway(tmp_path, pki, smtpd.port)
    try:
        gw.roictl("recipient", "add", "direct", "--name", "Direct (synthetic)",
                  "--transport", "smime", "--address", "dr.ada@clinic.test",
                  "--param", f"cert=@{pki.recipient[0]}", "--param", "mdn=yes",
                  check=0)
        gw.roictl("recipient", "verify", "direct", "--yes", check=0)
        gw.drop(one_doc_packet("ROI-MAIL-MDN", "direct"))
        wait_state(gw, "ROI-MAIL-MDN", "delivered")
        raw = open(os.path.join(smtpd.store, "1.eml"), "rb").read().decode()
        head = raw.split("\r\n\r\n", 1)[0]
        assert "Disposition-Notification-To: roi@hospital.test" in head
        assert ("Disposition-Notification-Options: "
                "X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true") in head
    finally:
        gw.stop()


def test_trust_anchors_refuse_a_certificate_from_elsewhere(tmp_path, pki, smtpd):
    foreign = pki.other.issue("foreign", email="foreign@clinic.test")
    gw = Gateway(str(tmp_path / "gw"))
    gw.settings["transport smime"] = {
        "relay": f"smtp://127.0.0.1:{smtpd.port}", "ca_file": pki.ca.pem,
        "from": "roi@hospital.test", "cert": pki.gateway[0],
        "key": pki.gateway[1], "trust_anchors": pki.ca.pem,
        "template": os.path.join(TOP, "templates", "email.txt")}
    gw.write_conf()
    gw.start()
    try:
        r = add_recipient(gw, "foreign", "foreign@clinic.test", foreign[0],
                          verify=False)
        assert r.returncode == 65 and "does not chain" in r.stderr
        r = gw.roictl("recipient", "verify", "foreign", "--yes")
        assert r.returncode == 69
        assert "does not chain to the trust anchors" in r.stderr
        # One from the anchored CA is fine.
        r = add_recipient(gw, "dr-ada", "dr.ada@clinic.test", pki.recipient[0])
        assert "verified" in r.stdout
    finally:
        gw.stop()


def test_signing_key_with_loose_permissions_is_refused_at_start(tmp_path, pki):
    gw = Gateway(str(tmp_path / "gw"))
    key = str(tmp_path / "loose.key")
    with open(pki.gateway[1], "rb") as f, open(key, "wb") as g:
        g.write(f.read())
    os.chmod(key, 0o644)
    gw.settings["transport smime"] = {
        "relay": "smtp://127.0.0.1:25", "ca_file": pki.ca.pem,
        "from": "roi@hospital.test", "cert": pki.gateway[0], "key": key}
    gw.write_conf()
    r = subprocess.run([os.path.join(BUILD, "roigated"), "-n", "-f", gw.conf],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "nobody else may read" in r.stderr and "chmod 600" in r.stderr


def test_smtp_auth_from_a_private_file(tmp_path, pki):
    server = Smtpd(str(tmp_path / "authmail"), *pki.relay,
                   auth="roigate:synthetic-secret-1")
    secret = str(tmp_path / "smtp-auth")
    with open(secret, "w") as f:
        f.write("roigate:synthetic-secret-1\n")
    os.chmod(secret, 0o600)
    gw = smime_gateway(tmp_path, pki, server.port, auth_file=secret)
    gw.settings["queue"]["job_timeout"] = "60s"
    gw.write_conf()
    try:
        add_recipient(gw, "dr-ada", "dr.ada@clinic.test", pki.recipient[0])
        gw.drop(one_doc_packet("ROI-MAIL-AUTH", "dr-ada"))
        j = wait_state(gw, "ROI-MAIL-AUTH", ("delivered", "failed", "deferred"))
        assert j["state"] == "delivered", gw.job(j["id"])["job"]["last_error"]
        assert server.messages() == ["1.eml"]
        # The secret is never in the daemon's log.
        assert "synthetic-secret-1" not in gw.log()
    finally:
        gw.stop()
        server.stop()


def test_fifty_megabyte_output_is_sent_whole(tmp_path, pki, smtpd):
    gw = smime_gateway(tmp_path, pki, smtpd.port)
    gw.stop()
    gw.settings["spool"].update({"max_file_size": "64M", "max_packet_size": "128M"})
    gw.settings["queue"]["job_timeout"] = "120s"
    gw.settings["render"] = {"document_dpi": "300", "jpeg_quality": "95"}
    gw.write_conf()
    gw.start()
    try:
        add_recipient(gw, "dr-ada", "dr.ada@clinic.test", pki.recipient[0])
        p = docs.noise_packet("ROI-MAIL-BIG", "dr-ada", pages=10)
        gw.drop(p)
        j = wait_state(gw, "ROI-MAIL-BIG", ("delivered", "failed", "deferred"),
                       timeout=120)
        assert j["state"] == "delivered", gw.job(j["id"])["job"]["last_error"]
        raw = open(os.path.join(smtpd.store, "1.eml"), "rb").read()
        signed = openssl("cms", "-decrypt", "-recip", pki.recipient[0],
                         "-inkey", pki.recipient[1], input=raw)
        inner = openssl("cms", "-verify", "-CAfile", pki.ca.pem, input=signed)
        parts = [q for q in email.message_from_bytes(inner).walk()
                 if q.get_filename()]
        data = parts[0].get_payload(decode=True)
        assert len(data) > 40 * 1024 * 1024
        assert hashlib.sha256(data).hexdigest() == \
            gw.job(j["id"])["job"]["output_sha256"]
    finally:
        gw.stop()


def test_certificate_changed_after_verification_is_held_unsent(tmp_path, pki,
                                                               smtpd):
    swapped = pki.ca.issue("dr-ada-swapped", email="dr.ada@clinic.test")
    gw = smime_gateway(tmp_path, pki, smtpd.port)
    try:
        add_recipient(gw, "dr-ada", "dr.ada@clinic.test", pki.recipient[0])
        pinned = gw.json("recipient", "show", "dr-ada")["params"]["cert_sha256"]
        # Someone puts another certificate in the entry behind the daemon
        # (the directory entry itself, as the store holds it).
        with open(swapped[0]) as f:
            pem = f.read()
        db = sqlite3.connect(os.path.join(gw.state, "roigate.db"))
        with db:
            db.execute("UPDATE recipients SET params = json_set(params, "
                       "'$.cert', ?) WHERE id = 'dr-ada'", (pem,))
        db.close()
        before = len(smtpd.connections())
        gw.drop(one_doc_packet("ROI-MAIL-SWAP", "dr-ada"))
        j = wait_state(gw, "ROI-MAIL-SWAP", ("held", "failed", "delivered"))
        assert j["state"] == "held"
        err = gw.job(j["id"])["job"]["last_error"]
        assert "is not the one verified" in err and pinned in err
        assert len(smtpd.connections()) == before
        assert smtpd.messages() == []
    finally:
        gw.stop()


def cms_print(data, inform="SMIME"):
    return openssl("cms", "-cmsout", "-print", "-inform", inform,
                   input=data).decode()


def capabilities(printed):
    """The algorithms in the SMIMECapabilities attribute of a printed
    SignedData."""
    at = printed.index("object: S/MIME Capabilities")
    block = printed[at:printed.index("object:", at + 1)]
    return re.findall(r"OBJECT\s+:([\w-]+)", block)


def test_signature_advertises_only_aes_and_oaep_is_used_when_asked(
        tmp_path, pki, smtpd):
    gw = smime_gateway(tmp_path, pki, smtpd.port)
    try:
        add_recipient(gw, "dr-ada", "dr.ada@clinic.test", pki.recipient[0])
        gw.roictl("recipient", "add", "dr-ada-oaep", "--name", "Ada (OAEP)",
                  "--transport", "smime", "--address", "dr.ada@clinic.test",
                  "--param", f"cert=@{pki.recipient[0]}",
                  "--param", "key_transport=rsa-oaep", check=0)
        gw.roictl("recipient", "verify", "dr-ada-oaep", "--yes", check=0)
        gw.drop(one_doc_packet("ROI-MAIL-CAPS", "dr-ada"))
        wait_state(gw, "ROI-MAIL-CAPS", "delivered")
        gw.drop(one_doc_packet("ROI-MAIL-OAEP", "dr-ada-oaep"))
        wait_state(gw, "ROI-MAIL-OAEP", "delivered")
        plain, oaep = (open(os.path.join(smtpd.store, n), "rb").read()
                       for n in ("1.eml", "2.eml"))
        # Key transport: PKCS#1 v1.5 by default, RSAES-OAEP when asked.
        assert "rsaEncryption" in cms_print(plain)
        printed = cms_print(oaep)
        assert "rsaesOaep" in printed and "rsaEncryption" not in \
            printed.split("keyEncryptionAlgorithm", 1)[1].split("encryptedKey")[0]
        for raw in (plain, oaep):
            signed = openssl("cms", "-decrypt", "-recip", pki.recipient[0],
                             "-inkey", pki.recipient[1], input=raw)
            openssl("cms", "-verify", "-CAfile", pki.ca.pem, input=signed)
            assert capabilities(cms_print(signed)) == ["aes-256-cbc",
                                                       "aes-128-cbc"]
    finally:
        gw.stop()


def test_unknown_key_transport_is_refused_at_verification(tmp_path, pki, smtpd):
    gw = smime_gateway(tmp_path, pki, smtpd.port)
    try:
        gw.roictl("recipient", "add", "odd", "--name", "Odd", "--transport",
                  "smime", "--address", "dr.ada@clinic.test",
                  "--param", f"cert=@{pki.recipient[0]}",
                  "--param", "key_transport=rsa-md5")
        r = gw.roictl("recipient", "verify", "odd", "--yes")
        assert r.returncode == 69
        assert 'key_transport "rsa-md5" is neither rsa-pkcs1 nor rsa-oaep' in \
            r.stderr
    finally:
        gw.stop()
