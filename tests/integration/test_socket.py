"""The control socket under every role and every kind of bad input:
peer credentials decide, everything is audited, nothing is half-accepted,
and other clients are served meanwhile."""
import array
import json
import os
import socket
import struct
import subprocess
import sys
import time

import pytest

from gateway import BUILD, Gateway, Packet, wait_for, wait_state

SUBMIT, OPERATE, AUDIT, ADMIN, GROUPED = 4001, 4002, 4003, 4004, 4005
AUDITORS_GID = 4100
ME = os.getuid()

# Identity (uid, gid, supplementary groups) of each test caller.
WHO = {
    "submit": (SUBMIT, SUBMIT, []),
    "operate": (OPERATE, OPERATE, []),
    "audit": (AUDIT, AUDIT, []),
    "admin": (ADMIN, ADMIN, []),
    # audit through a supplementary group (gid:4100), as the kernel reports it
    "audit-by-group": (GROUPED, GROUPED, [AUDITORS_GID]),
}


def frame(obj):
    body = json.dumps(obj).encode() if not isinstance(obj, bytes) else obj
    return struct.pack(">I", len(body)) + body


def read_frame(s):
    hdr = b""
    while len(hdr) < 4:
        chunk = s.recv(4 - len(hdr))
        if not chunk:
            return None
        hdr += chunk
    n = struct.unpack(">I", hdr)[0]
    body = b""
    while len(body) < n:
        chunk = s.recv(n - len(body))
        if not chunk:
            return None
        body += chunk
    return json.loads(body)


def connect(gw):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(gw.sock)
    return s


@pytest.fixture
def roles_gw(gateway_factory):
    g = gateway_factory(roles={
        "submit": f"uid:{SUBMIT} uid:{ME}",
        "operate": f"uid:{OPERATE} uid:{ME}",
        "audit": f"uid:{AUDIT} gid:{AUDITORS_GID} uid:{ME}",
        "admin": f"uid:{ADMIN} uid:{ME}",
    })
    g.start()
    g.open_to_others()
    g.add_recipient("records-desk")
    g.drop(Packet("ROI-S-SEED"))
    wait_state(g, "ROI-S-SEED", "delivered")
    yield g


def _packet_for(gw, who):
    folder = os.path.join(gw.root, "packets", who)
    Packet(f"ROI-S-{who.upper()}").write(folder)
    for f in os.listdir(folder):
        os.chmod(os.path.join(folder, f), 0o644)
    os.chmod(folder, 0o755)
    os.chmod(os.path.dirname(folder), 0o755)
    return folder


# (operation, the roles allowed)
MATRIX = [
    (("status",), {"submit", "operate", "audit", "admin"}),
    (("list",), {"operate", "audit", "admin"}),
    (("show", "1"), {"submit", "operate", "audit", "admin"}),
    (("hold", "1"), {"operate"}),
    (("log",), {"audit"}),
    (("verify-log",), {"audit"}),
    (("audit",), {"audit"}),
    (("recipient", "list"), {"operate", "audit", "admin"}),
    (("recipient", "add", "NEW", "--name", "New Desk", "--transport", "local",
      "--address", "new-desk"), {"admin"}),
    (("submit", "PACKET"), {"submit"}),
]


def test_each_role_allowed_and_denied_and_audited(roles_gw):
    gw = roles_gw
    for who, ident in WHO.items():
        role = who.split("-")[0]
        for args, allowed in MATRIX:
            args = tuple(a.replace("NEW", f"desk-{ident[0]}") for a in args)
            if args[0] == "submit":
                args = ("submit", _packet_for(gw, who))
            r = gw.roictl(*args, user=ident)
            if role in allowed:
                assert r.returncode != 77, (who, args, r.stderr)
                assert r.returncode in (0, 65), (who, args, r.stderr)
            else:
                assert r.returncode == 77, (who, args, r.returncode, r.stderr)
                assert "permission denied" in r.stderr
    # Every request is in the audit log with who asked and what happened.
    audit = gw.jsonl("audit", "--limit", "1000")
    for who, ident in WHO.items():
        role = who.split("-")[0]
        rows = [a for a in audit if a["uid"] == ident[0]]
        ops = {}
        for a in rows:
            ops.setdefault(a["op"], set()).add(a["outcome"])
        for args, allowed in MATRIX:
            op = args[0] if args[0] != "recipient" else f"recipient-{args[1]}"
            assert op in ops, (who, op, rows)
            if role in allowed:
                assert "denied" not in ops[op], (who, op, ops[op])
            else:
                assert ops[op] == {"denied"}, (who, op, ops[op])
    # The submitter's packet was accepted and delivered; nobody else's was.
    wait_state(gw, "ROI-S-SUBMIT", "delivered")
    assert gw.job_by_packet("ROI-S-OPERATE") is None


def test_root_has_no_role_unless_configured(gateway_factory):
    gw = gateway_factory(roles={"admin": f"uid:{ADMIN}", "operate": "",
                                "audit": "", "submit": ""})
    gw.settings["roles"] = {"admin": f"uid:{ADMIN}"}
    gw.write_conf()
    gw.start()
    r = gw.roictl("status")
    assert r.returncode == 77 and "permission denied" in r.stderr
    gw.open_to_others()
    r = gw.roictl("status", user=WHO["admin"])
    assert r.returncode == 0


def test_bad_requests_get_plain_errors_and_the_connection_survives(gw):
    s = connect(gw)
    cases = [
        (b"{not json", "bad_request"),
        (b"[1, 2, 3]", "bad_request"),
        ({"v": 99, "id": 1, "op": "status"}, "bad_request"),
        ({"id": 2, "op": "status"}, "bad_request"),
        ({"v": 1, "id": 3, "op": "launch-missiles"}, "bad_request"),
        ({"v": 1, "id": 4, "op": "show", "job": "seven"}, "bad_request"),
        ({"v": 1, "id": 5, "op": "submit", "manifest": {}, "files": ["a"]},
         "bad_request"),
    ]
    for req, code in cases:
        s.sendall(frame(req))
        r = read_frame(s)
        assert r is not None and r["ok"] is False and r["code"] == code, (req, r)
        assert r["error"]
    s.sendall(frame({"v": 1, "id": 9, "op": "status"}))
    r = read_frame(s)
    assert r["ok"] is True and r["id"] == 9
    s.close()
    errors = [a for a in gw.jsonl("audit", "--limit", "100")
              if a["outcome"] == "error"]
    assert len(errors) >= len(cases)


def test_broken_frames_close_the_connection_not_the_daemon(gw):
    # Oversized: refused with the limit named, then closed.
    s = connect(gw)
    s.sendall(struct.pack(">I", 50 * 1024 * 1024))
    r = read_frame(s)
    assert r["code"] == "bad_request" and "limit" in r["error"]
    assert read_frame(s) is None
    s.close()
    # Zero-length frame.
    s = connect(gw)
    s.sendall(struct.pack(">I", 0))
    r = read_frame(s)
    assert r is None or r["ok"] is False
    s.close()
    # Truncated: a header promising more than ever comes, then hang-up.
    s = connect(gw)
    s.sendall(struct.pack(">I", 1000) + b'{"v": 1, "op": "sta')
    s.close()
    # Too many descriptors in one request.
    s = connect(gw)
    fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(70)]
    try:
        body = frame({"v": 1, "id": 1, "op": "status"})
        s.sendmsg([body], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                            array.array("i", fds))])
        r = read_frame(s)
        assert r["code"] == "bad_request"
        assert "too many file descriptors" in r["error"]
    finally:
        for fd in fds:
            os.close(fd)
        s.close()
    gw.roictl("status", check=0)


def test_idle_client_is_closed_and_others_are_served(gateway_factory):
    gw = gateway_factory(control={"idle_timeout": "1s"})
    gw.start()
    idle = connect(gw)
    t0 = time.monotonic()
    # Meanwhile, another client is answered at once.
    gw.roictl("status", check=0)
    assert time.monotonic() - t0 < 1
    # The daemon closes the idle connection after idle_timeout (recv
    # returns at the close: an event, not a guess).
    idle.settimeout(10)
    assert idle.recv(100) == b""
    assert time.monotonic() - t0 >= 0.9
    idle.close()


def test_disconnect_mid_submit_accepts_nothing(gw):
    p = Packet("ROI-S-HALF")
    folder = os.path.join(gw.root, "half")
    p.write(folder)
    names = sorted(p.files)
    fds = [os.open(os.path.join(folder, n), os.O_RDONLY) for n in names]
    body = json.dumps({"v": 1, "id": 1, "op": "submit",
                       "manifest": p.manifest, "files": names}).encode()
    s = connect(gw)
    hdr = struct.pack(">I", len(body))
    s.sendmsg([hdr + body[:len(body) // 2]],
              [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    s.close()
    for fd in fds:
        os.close(fd)
    # The daemon is fine, accepted nothing, and left nothing half-made.
    gw.roictl("status", check=0)
    assert gw.job_by_packet("ROI-S-HALF") is None
    staging = os.path.join(gw.state, "submit")
    assert not os.path.isdir(staging) or os.listdir(staging) == []
    # The same packet, sent whole, is accepted.
    gw.roictl("submit", folder, check=0)
    wait_state(gw, "ROI-S-HALF", "delivered")


def test_fifty_clients_submit_while_one_sends_garbage(gateway_factory):
    gw = gateway_factory(control={"max_clients": "128",
                                  "max_clients_per_uid": "60"},
                         queue={"workers": "4"})
    gw.start()
    gw.add_recipient("records-desk")
    folders = []
    for i in range(50):
        folder = os.path.join(gw.root, "many", f"p{i}")
        Packet(f"ROI-M-{i:03d}").write(folder)
        folders.append(folder)
    # The garbage comes from another user (as from a broken or hostile
    # program): the per-user connection limit keeps it from crowding out
    # the records system, however fast it reconnects.
    gw.open_to_others()
    garbage = subprocess.Popen(
        [sys.executable, "-c", GARBAGE, gw.sock], user=4009, group=4009,
        extra_groups=[], stdout=subprocess.PIPE, text=True)
    try:
        procs = [subprocess.Popen([os.path.join(BUILD, "roictl"), "-s", gw.sock,
                                   "submit", f], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
                 for f in folders]
        results = [(p.wait(60), p.stdout.read(), p.stderr.read()) for p in procs]
    finally:
        garbage.terminate()
        sent = garbage.communicate(timeout=10)[0]
    for rc, out, err in results:
        assert rc == 0, err
        assert out.startswith("accepted as job ")
    assert int(sent.split()[-1]) > 0, sent
    for i in range(50):
        wait_state(gw, f"ROI-M-{i:03d}", "delivered", timeout=60)
    assert len(gw.jobs()) == 50


# Connects again and again, sending random bytes: framing garbage, bad
# JSON, and half frames.  Prints how many connections it made.
GARBAGE = r"""
import os, signal, socket, struct, sys
n = 0
def done(*a):
    print(n, flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, done)
while True:
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sys.argv[1])
        s.sendall(struct.pack(">I", 200) + os.urandom(200) + os.urandom(64))
        s.close()
        n += 1
    except OSError:
        pass
"""
