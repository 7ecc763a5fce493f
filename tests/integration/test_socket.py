"""The control socket under every role and every kind of bad input:
peer credentials decide, everything is audited, nothing is half-accepted,
and other clients are served meanwhile."""
import array
import json
import os
import socket
import sqlite3
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
    # A long backoff keeps the busy-line job deferred (holdable) throughout.
    g = gateway_factory(roles={
        "submit": f"uid:{SUBMIT} uid:{ME}",
        "operate": f"uid:{OPERATE} uid:{ME}",
        "audit": f"uid:{AUDIT} gid:{AUDITORS_GID} uid:{ME}",
        "admin": f"uid:{ADMIN} uid:{ME}",
    }, queue={"backoff_base": "10m", "backoff_max": "10m"})
    g.start()
    g.open_to_others()
    g.add_recipient("records-desk")
    g.add_recipient("busy-line", transport="flaky", address="tempfail:99")
    g.drop(Packet("ROI-S-SEED"))
    wait_state(g, "ROI-S-SEED", "delivered")
    g.drop(Packet("ROI-S-WAIT", recipient="busy-line"))
    wait_state(g, "ROI-S-WAIT", "deferred")
    yield g


def _packet_for(gw, who):
    folder = os.path.join(gw.root, "packets", who)
    Packet(f"ROI-S-{who.upper()}").write(folder)
    for f in os.listdir(folder):
        os.chmod(os.path.join(folder, f), 0o644)
    os.chmod(folder, 0o755)
    os.chmod(os.path.dirname(folder), 0o755)
    return folder


# What an allowed operation shows (its --json output: its lines, each a JSON
# object) and did.
def _status_ran(gw, out, ident):
    [out] = out
    assert set(out["states"]) == {
        "queued", "rendering", "sending", "awaiting_confirmation", "deferred",
        "delivered", "failed", "held", "cancelled"}
    assert out["states"]["delivered"] >= 1          # ROI-S-SEED


def _list_ran(gw, out, ident):
    if ident[0] == SUBMIT:
        # A submitter sees only its own jobs (none yet: it submits last).
        assert out == []
        return
    assert {"ROI-S-SEED", "ROI-S-WAIT"} <= {j["packet_id"] for j in out}


def _show_ran(gw, out, ident):
    [out] = out
    assert out["job"]["id"] == 1 and out["job"]["packet_id"] == "ROI-S-SEED"


def _hold_ran(gw, out, ident):
    [out] = out
    job = gw.job_by_packet("ROI-S-WAIT")
    assert out == {"job": job["id"], "state": "held"}
    assert job["state"] == "held"
    last = gw.job(job["id"])["events"][-1]
    assert (last["from"], last["to"]) == ("deferred", "held")
    assert last["actor"] == f"uid {ident[0]}"


def _hold_not_run(gw, ident):
    # Still as it was: deferred until the operator (who comes second) holds it.
    want = "deferred" if ident[0] == SUBMIT else "held"
    assert gw.job_by_packet("ROI-S-WAIT")["state"] == want


def _log_ran(gw, out, ident):
    seed = [e["outcome"] for e in out if e["packet_id"] == "ROI-S-SEED"]
    assert seed == ["attempt", "delivered"]


def _verify_ran(gw, out, ident):
    [out] = out
    assert out == {"ok": True, "entries": len(gw.log_entries()),
                   "sealed": False, "checkpoint": False}


def _audit_ran(gw, out, ident):
    assert out and all({"uid", "op", "outcome"} <= set(a) for a in out)


def _recipients_ran(gw, out, ident):
    assert {"records-desk", "busy-line"} <= {r["id"] for r in out}


def _added(gw, out, ident):
    [out] = out
    rid = f"desk-{ident[0]}"
    assert out["id"] == rid
    r = gw.json("recipient", "show", rid)
    assert (r["name"], r["address"], r["verified"]) == ("New Desk", "new-desk",
                                                        False)


def _not_added(gw, ident):
    gw.roictl("recipient", "show", f"desk-{ident[0]}", check=67)


def _submitted(gw, out, ident):
    [out] = out
    assert gw.job_by_packet("ROI-S-SUBMIT")["id"] == out["job"]


# (operation, the roles allowed, the op as audited, its effect when allowed,
#  the check that nothing happened when denied)
MATRIX = [
    (("status",), {"submit", "operate", "audit", "admin"}, "status",
     _status_ran, None),
    (("list",), {"submit", "operate", "audit", "admin"}, "list", _list_ran, None),
    (("show", "1"), {"submit", "operate", "audit", "admin"}, "show",
     _show_ran, None),
    (("hold", "WAIT"), {"operate"}, "hold", _hold_ran, _hold_not_run),
    (("log",), {"audit"}, "log", _log_ran, None),
    (("verify-log",), {"audit"}, "verify-log", _verify_ran, None),
    (("audit", "--limit", "5"), {"audit"}, "audit", _audit_ran, None),
    (("recipient", "list"), {"operate", "audit", "admin"}, "recipient-list",
     _recipients_ran, None),
    (("recipient", "add", "NEW", "--name", "New Desk", "--transport", "local",
      "--address", "new-desk"), {"admin"}, "recipient-add", _added,
     _not_added),
    (("submit", "PACKET"), {"submit"}, "submit", _submitted, None),
]


def _audited_since(gw, last, uid):
    """The audit rows after id last, of the caller uid only (the test's own
    look at the audit log is audited too, under its own uid)."""
    rows = gw.jsonl("audit", "--limit", "50")
    return [a for a in rows if a["id"] > last and a["uid"] == uid]


def test_each_role_allowed_and_denied_and_audited(roles_gw):
    gw = roles_gw
    wait_job = gw.job_by_packet("ROI-S-WAIT")["id"]
    last = max(a["id"] for a in gw.jsonl("audit", "--limit", "1"))
    for who, ident in WHO.items():
        role = who.split("-")[0]
        for args, allowed, op, ran, not_run in MATRIX:
            args = tuple(a.replace("NEW", f"desk-{ident[0]}")
                         .replace("WAIT", str(wait_job)) for a in args)
            if args[0] == "submit":
                args = ("submit", _packet_for(gw, who))
            r = gw.roictl("--json", *args, user=ident)
            rows = _audited_since(gw, last, ident[0])
            last = max([last] + [a["id"] for a in rows])
            if role in allowed:
                # Allowed: it ran, and says so with exit 0.  Job 1 came
                # from the spool: nobody's, so a submitter is told it does
                # not exist.
                if (role, args[0]) == ("submit", "show"):
                    assert r.returncode == 67, (who, args, r.returncode, r.stderr)
                    assert "no job 1" in r.stderr, r.stderr
                else:
                    assert r.returncode == 0, (who, args, r.returncode, r.stderr)
                    out = [json.loads(x) for x in r.stdout.splitlines() if x]
                    ran(gw, out, ident)
                # One audit row for the request, with who asked and the
                # outcome (recipient add also probes the new recipient).
                assert rows, (who, args, "not audited")
                first, rest = rows[0], rows[1:]
                assert (first["op"], first["gid"]) == (op, ident[1]), rows
                assert first["outcome"] == ("error" if (role, args[0]) == (
                    "submit", "show") else "ok"), rows
                probes = [] if op != "recipient-add" else [
                    ("recipient-probe", "ok")] * len(rest)
                assert [(a["op"], a["outcome"]) for a in rest] == probes, rows
            else:
                # Denied: EX_NOPERM, a plain reason, and no effect; counted
                # in one row per uid and minute, written at its end.
                assert r.returncode == 77, (who, args, r.returncode, r.stderr)
                assert "permission denied" in r.stderr, r.stderr
                if not_run:
                    not_run(gw, ident)
                assert rows == [], (who, args, rows)
    # The submitter's packet was accepted and delivered; nobody else's was.
    wait_state(gw, "ROI-S-SUBMIT", "delivered")
    for who in WHO:
        if who != "submit":
            assert gw.job_by_packet(f"ROI-S-{who.upper()}") is None, who
    # The refused requests of each uid in one counted row, written when its
    # minute ends or, here, when the daemon stops.
    assert gw.stop() == 0
    audit = audit_rows(gw)
    for who, ident in WHO.items():
        role = who.split("-")[0]
        denied = [a for a in audit if a["uid"] == ident[0] and
                  a["outcome"] == "denied"]
        assert len(denied) == 1, (who, denied)
        assert "permission denied" in denied[0]["detail"], denied
        for args, allowed, op, ran, not_run in MATRIX:
            if role not in allowed:
                assert op in denied[0]["detail"], (who, op, denied)


def audit_rows(gw):
    """The audit table as the daemon left it (read after it stopped)."""
    with gw.db() as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM audit ORDER BY id")]


def test_submitter_sees_only_its_own_jobs_and_only_their_state(gateway_factory):
    other = 4011
    gw = gateway_factory(roles={
        "submit": f"uid:{SUBMIT} uid:{other}", "operate": f"uid:{ME}",
        "audit": f"uid:{ME}", "admin": f"uid:{ME}"})
    gw.start()
    gw.open_to_others()
    gw.add_recipient("records-desk")
    gw.drop(Packet("ROI-S-SPOOL"))          # from the spool: nobody's
    r = gw.roictl("submit", _packet_for(gw, "submit"), user=WHO["submit"],
                  check=0)
    mine = int(r.stdout.split()[-1])
    wait_state(gw, "ROI-S-SUBMIT", "delivered")
    spool = wait_state(gw, "ROI-S-SPOOL", "delivered")["id"]

    def ask(uid, op, **args):
        return run_as(gw, uid, {"v": 1, "id": 1, "op": op, **args})

    jobs = ask(SUBMIT, "list")["result"]["jobs"]
    assert [j["id"] for j in jobs] == [mine]
    assert set(jobs[0]) == {"id", "packet_id", "state", "attempts",
                            "created_at", "updated_at", "next_at",
                            "last_error"}
    shown = ask(SUBMIT, "show", job=mine)["result"]
    assert list(shown) == ["job"] and shown["job"]["state"] == "delivered"
    for phi in ("mrn", "patient_name", "recipient", "recipient_id", "source"):
        assert phi not in shown["job"]
    # Others' jobs do not exist for a submitter, nor its jobs for another.
    for uid, job in ((SUBMIT, spool), (other, mine), (SUBMIT, 99999)):
        r = ask(uid, "show", job=job)
        assert r["ok"] is False and r["code"] == "not_found", r
        assert r["error"] == f"no job {job}"
    assert ask(other, "list")["result"]["jobs"] == []
    assert ask(SUBMIT, "status")["result"]["last_errors"] == []
    assert ask(SUBMIT, "log")["code"] == "denied"
    # Operators see everything; each read of patient details or the log
    # is audited with what was read.
    full = gw.json("show", str(mine))
    assert full["job"]["patient_name"] and full["events"]
    gw.log_entries("--job", str(mine))
    gw.log_entries()
    assert gw.stop() == 0
    rows = audit_rows(gw)
    shows = [a for a in rows if a["op"] == "show" and a["uid"] == ME]
    assert shows[-1]["target"] == f"job {mine}"
    assert shows[-1]["detail"].startswith("patient details, ")
    logs = [a for a in rows if a["op"] == "log" and a["uid"] == ME]
    assert logs[0]["target"] == f"job {mine}"
    assert set(logs[1]["target"].split()[1:]) == {str(mine), str(spool)}
    sub = [a for a in rows if a["op"] == "show" and a["uid"] == SUBMIT
           and a["outcome"] == "ok"]
    assert sub[0]["target"] == f"job {mine}"
    assert sub[0]["detail"] == "state only (submitter)"


def test_refused_requests_are_counted_not_each_written(gw):
    gw.open_to_others()
    with gw.db() as db:
        before = db.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
    n = 3000
    flood = subprocess.run(
        [sys.executable, "-c", FLOOD, gw.sock, str(n)], user=4009, group=4009,
        extra_groups=[], capture_output=True, text=True, timeout=120)
    assert flood.returncode == 0, flood.stderr
    assert flood.stdout.split() == ["denied", str(n)], flood.stdout
    with gw.db() as db:
        during = db.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
    assert during - before <= 2, during - before
    # The count is written when the minute ends, or at shutdown.
    assert gw.stop() == 0
    rows = [a for a in audit_rows(gw) if a["uid"] == 4009]
    assert len(rows) == 1, rows
    assert rows[0]["outcome"] == "denied" and rows[0]["op"] == "log"
    assert rows[0]["detail"].startswith(f"{n} refused requests in ")
    assert f"(log {n})" in rows[0]["detail"]
    assert "the first: permission denied: log needs the role audit" in \
        rows[0]["detail"]


def run_as(gw, uid, req):
    """One request from another uid (a child that drops to it)."""
    r = subprocess.run([sys.executable, "-c", ONE, gw.sock, json.dumps(req)],
                       user=uid, group=uid, extra_groups=[],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


ONE = r"""
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
body = sys.argv[2].encode()
s.sendall(struct.pack(">I", len(body)) + body)
n = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))[0]
print(s.recv(n, socket.MSG_WAITALL).decode())
"""

# Sends N requests it may not make, as fast as the daemon answers; prints
# the code of the answers and how many came.
FLOOD = r"""
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
n = int(sys.argv[2])
body = json.dumps({"v": 1, "id": 1, "op": "log"}).encode()
codes = {}
for i in range(0, n, 100):
    k = min(100, n - i)
    s.sendall((struct.pack(">I", len(body)) + body) * k)
    for _ in range(k):
        m = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))[0]
        c = json.loads(s.recv(m, socket.MSG_WAITALL))["code"]
        codes[c] = codes.get(c, 0) + 1
for c, k in codes.items():
    print(c, k)
"""


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
    # Zero-length frame: refused as empty, then closed.
    s = connect(gw)
    s.sendall(struct.pack(">I", 0))
    r = read_frame(s)
    assert r["ok"] is False and r["code"] == "bad_request", r
    assert r["error"] == "frame of 0 bytes is empty", r
    assert read_frame(s) is None
    s.close()
    # Truncated: a header promising more than ever comes.  While it waits
    # for the rest, another client is answered; when the sender stops
    # sending (half-close), it gets an error reply and the connection is
    # closed, and the audit log says so.
    s = connect(gw)
    s.sendall(struct.pack(">I", 1000) + b'{"v": 1, "op": "sta')
    other = connect(gw)
    other.sendall(frame({"v": 1, "id": 7, "op": "status"}))
    r = read_frame(other)
    assert r["ok"] is True and r["id"] == 7, r
    other.close()
    s.shutdown(socket.SHUT_WR)
    r = read_frame(s)
    assert r is not None, "no reply to a truncated frame"
    assert r["ok"] is False and r["code"] == "bad_request", r
    assert r["error"] == "connection closed mid-frame", r
    assert read_frame(s) is None
    s.close()
    # The same with an outright hang-up: nobody to answer, but noted.
    s = connect(gw)
    s.sendall(struct.pack(">I", 1000) + b'{"v": 1, "op": "sta')
    s.close()

    def mid_frame():
        return [a for a in gw.jsonl("audit", "--limit", "20")
                if (a["op"], a["outcome"], a["detail"]) ==
                ("(bad frame)", "error", "connection closed mid-frame")]
    wait_for("the hang-up in the audit log", lambda: len(mid_frame()) == 2)
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
    jobs = os.path.join(gw.state, "jobs")
    assert [n for n in os.listdir(jobs) if n.startswith(".stage-")] == []
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
