"""Bad input found by an outside review of the intake: each case gets a
plain reason, loses nothing, and the daemon keeps serving everyone else."""
import array
import copy
import fcntl
import json
import os
import socket
import struct
import subprocess
import sys
import time

import pytest

from gateway import BUILD, Packet, wait_for, wait_rejected, wait_state

# Connections that each pass 64 descriptors with the first byte of a frame
# and never finish it.  The program says "read N" once the daemon has read
# what each of its N connections sent (nothing left in its socket's
# queue, SIOCOUTQ), or "stuck N" after 20 s, then holds on until its
# standard input closes.
HOG = r'''
import array, fcntl, os, socket, struct, sys, time
path, n = sys.argv[1], int(sys.argv[2])
fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(64)]
socks = []
for i in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendmsg([b"\0"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                         array.array("i", fds))])
    socks.append(s)
def unread(s):
    b = fcntl.ioctl(s.fileno(), 0x5411, b"\0\0\0\0")  # SIOCOUTQ
    return struct.unpack("i", b)[0]
deadline = time.monotonic() + 20
while any(unread(s) for s in socks) and time.monotonic() < deadline:
    time.sleep(0.05)
left = sum(1 for s in socks if unread(s))
print(f"stuck {left}" if left else f"read {n}", flush=True)
sys.stdin.read()
'''


def connect(gw):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(gw.sock)
    return s


def frame(obj):
    body = json.dumps(obj).encode()
    return struct.pack(">I", len(body)) + body


def read_frame(s):
    hdr = s.recv(4, socket.MSG_WAITALL)
    if len(hdr) < 4:
        return None
    n = struct.unpack(">I", hdr)[0]
    return json.loads(s.recv(n, socket.MSG_WAITALL))


def hogs(gw, uids, n=16):
    """One HOG per uid (callers with no role), each with n connections."""
    procs = [subprocess.Popen([sys.executable, "-c", HOG, gw.sock, str(n)],
                              user=uid, group=uid, extra_groups=[],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True) for uid in uids]
    return procs, [p.stdout.readline().strip() for p in procs]


def limit_files(gw, n):
    """Start the daemon with an open-file limit of n (as LimitNOFILE= in
    its unit would), whatever user it runs as."""
    wrapper = os.path.join(gw.root, "roigated-limited")
    with open(wrapper, "w") as f:
        f.write(f'#!/bin/sh\nulimit -n {n} || exit 1\nexec {gw.daemon} "$@"\n')
    os.chmod(wrapper, 0o755)
    gw.daemon = wrapper
    gw.start()
    gw.add_recipient("records-desk")


def release(procs):
    for p in procs:
        p.stdin.close()
        p.wait(10)


def test_connections_holding_descriptors_leave_the_daemon_serving(
        gateway_factory):
    # roigated.service gave it LimitNOFILE=4096 (8192 now).  64
    # connections from four users with no role (16 each,
    # max_clients_per_uid), each passing 64 descriptors and never
    # finishing its frame, would hold 4096: nothing left to accept a
    # connection, take a packet from the spool or open the database,
    # until the idle timeout closes them (and they come again).
    # (max_clients raised so that the limit on connections without a
    # role, a quarter of it, lets all 64 in.)
    gw = gateway_factory(control={"max_clients": "256"})
    limit_files(gw, 4096)
    gw.open_to_others()
    procs, said = hogs(gw, [4011, 4012, 4013, 4014])
    try:
        assert said == ["read 16"] * 4, said
        t = time.monotonic()
        gw.roictl("status", check=0)
        assert time.monotonic() - t < 5
        p = Packet("ROI-R-FDS")
        gw.drop(p)
        wait_state(gw, p.packet_id, "delivered")
        assert len(os.listdir(f"/proc/{gw.proc.pid}/fd")) < 1000
    finally:
        release(procs)
    assert "Too many open files" not in gw.log()


# Connections that send nothing; says how many of its N the daemon
# refused at once (one frame, then closed), and holds the others open
# until its standard input closes.
IDLE = r'''
import json, socket, struct, sys
path, n = sys.argv[1], int(sys.argv[2])
socks, refused = [], []
for i in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    socks.append(s)
for s in socks:
    s.settimeout(2)
    try:
        hdr = s.recv(4, socket.MSG_WAITALL)
    except socket.timeout:
        continue
    if len(hdr) == 4:
        body = s.recv(struct.unpack(">I", hdr)[0], socket.MSG_WAITALL)
        refused.append(json.loads(body)["error"])
print(json.dumps({"refused": len(refused), "why": sorted(set(refused))}),
      flush=True)
sys.stdin.read()
'''


def test_users_without_a_role_cannot_keep_out_those_with_one(gateway_factory):
    # Clerks are in the socket's group; one without a role may do
    # nothing, and all of them together hold at most a quarter of
    # max_clients (64): four such users with 16 idle connections each
    # (max_clients_per_uid) leave room for those with a role.
    gw = gateway_factory()
    gw.start()
    gw.add_recipient("records-desk")
    gw.open_to_others()
    procs = [subprocess.Popen([sys.executable, "-c", IDLE, gw.sock, "16"],
                              user=uid, group=uid, extra_groups=[],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True) for uid in (4021, 4022, 4023, 4024)]
    try:
        said = [json.loads(p.stdout.readline()) for p in procs]
        assert sum(d["refused"] for d in said) == 64 - 16, said
        assert {w for d in said for w in d["why"]} == {
            "too many connections from users with no role on this gateway; "
            "an administrator gives roles in [roles] of roigate.conf"}, said
        r = gw.roictl("status")
        assert r.returncode == 0, r.stderr
        p = Packet("ROI-R-NOROLE")
        gw.drop(p)
        wait_state(gw, p.packet_id, "delivered")
    finally:
        release(procs)


def test_out_of_descriptors_waits_instead_of_spinning(gateway_factory):
    # A submitter's connections keep their descriptors (they may be a
    # packet's documents).  With too low a limit the daemon runs out: it
    # says so once and takes connections again when descriptors are
    # free, instead of failing accept() on every turn of its loop (a
    # busy loop writing a log line each time, gigabytes in a minute).
    gw = gateway_factory()
    limit_files(gw, 1024)
    procs, said = hogs(gw, [os.getuid()])
    try:
        waiting = subprocess.Popen([os.path.join(BUILD, "roictl"), "-s",
                                    gw.sock, "status"],
                                   stdout=subprocess.PIPE, text=True)
        wait_for("the pause in the log", lambda: "new connections wait: no "
                 "file descriptor is left" in gw.log())
    finally:
        release(procs)
    assert waiting.wait(30) == 0
    log = gw.log()
    assert log.count("new connections wait") == 1, log[-2000:]
    assert log.count("control: accept") == 0, log[-2000:]


def test_connection_over_the_limit_is_told_why(gw):
    # The daemon answers a connection over max_clients_per_uid (16) with
    # one frame and closes it at once: roictl says that reason (exit 75,
    # try later), not "Broken pipe" from the request it could not send.
    idle = [connect(gw) for _ in range(16)]
    try:
        r = gw.roictl("status")
        assert r.returncode == 75, (r.returncode, r.stderr)
        assert r.stderr.strip() == ("roictl: too many connections from your "
                                    "user; close some"), r.stderr
    finally:
        for s in idle:
            s.close()
    wait_for("status once they are closed",
             lambda: gw.roictl("status").returncode == 0)


def _passed(kind, path):
    """A descriptor of the kind a broken client might pass for path."""
    if kind == "write-only":
        return os.open(path, os.O_WRONLY)
    if kind == "O_PATH":
        return os.open(path, os.O_PATH)
    if kind == "folder":
        return os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)
    if kind == "pipe":
        r, w = os.pipe()
        os.write(w, b"synthetic\n")
        os.close(w)
        return r
    if kind == "socket":
        a, b = socket.socketpair()
        b.close()
        return a.detach()
    if kind == "device":
        return os.open("/dev/null", os.O_RDONLY)
    if kind == "sealed memfd":
        fd = os.memfd_create("doc", os.MFD_ALLOW_SEALING)
        with open(path, "rb") as f:
            os.write(fd, f.read())
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL |
                    fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW |
                    fcntl.F_SEAL_WRITE)
        return fd
    if kind == "read to its end":
        fd = os.open(path, os.O_RDONLY)
        os.lseek(fd, 0, os.SEEK_END)
        return fd
    raise ValueError(kind)


NOT_READABLE = ("is not open for reading: pass it opened for reading "
                "(O_RDONLY), not write-only or O_PATH")
NOT_A_FILE = ("is not a regular file: pass a file (or memfd), not a pipe, "
              "socket or device")


@pytest.mark.parametrize("kind,reason", [
    ("write-only", NOT_READABLE), ("O_PATH", NOT_READABLE),
    ("folder", NOT_A_FILE), ("pipe", NOT_A_FILE), ("socket", NOT_A_FILE),
    ("device", NOT_A_FILE), ("sealed memfd", None),
    ("read to its end", None)])
def test_submit_with_a_descriptor_of_the_wrong_kind(gw, kind, reason):
    # The second document is passed as KIND: refused with a reason that
    # says what to pass instead (nothing taken), or, for a file the daemon
    # can read whole whatever its seals or offset, accepted.
    p = Packet("ROI-R-FD-" + kind.upper().replace(" ", "-"))
    folder = os.path.join(gw.root, "desk", p.packet_id)
    p.write(folder)
    names = [d["file"] for d in p.manifest["documents"]]
    fds = [os.open(os.path.join(folder, n), os.O_RDONLY) if i != 1 else
           _passed(kind, os.path.join(folder, n)) for i, n in enumerate(names)]
    s = connect(gw)
    try:
        s.sendmsg([frame({"v": 1, "id": 1, "op": "submit",
                          "manifest": p.manifest, "files": names})],
                  [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                    array.array("i", fds))])
        r = read_frame(s)
    finally:
        s.close()
        for fd in fds:
            os.close(fd)
    if reason is None:
        assert r["ok"] is True, r
        wait_state(gw, p.packet_id, "delivered")
        return
    assert r["code"] == "invalid", r
    assert r["reasons"] == [f"{names[1]} {reason}"], r
    assert gw.job_by_packet(p.packet_id) is None
    assert os.listdir(os.path.join(gw.state, "jobs")) == []


@pytest.mark.parametrize("name,shown", [
    ("ROI\\back", "ROI\\back"), ("ROI\nline", "ROI?line"),
    ("ROI\ttab", "ROI?tab")])
def test_folder_with_an_odd_name_is_refused_not_ignored(gw, name, shown):
    # A folder whose name holds a line break, a tab or a backslash was
    # never looked at: left in incoming/ for ever, with no reason
    # anywhere.  It is refused with one, and the next packet is taken.
    p = Packet("ROI-R-ODD")
    gw.drop(p, name)
    wait_rejected(gw, name)
    reason = gw.reason(name)
    assert (f'- the name "{shown}" holds a control character (a line '
            "break, a tab?) or a backslash: give the folder a plain name "
            "and copy it into incoming/ again\n") in reason, reason
    assert sorted(os.listdir(os.path.join(gw.rejected, name))) == sorted(
        list(p.files) + ["manifest.json", "REASON.txt"])
    good = Packet("ROI-R-ODD-AFTER")
    gw.drop(good)
    wait_state(gw, good.packet_id, "delivered")


def test_single_file_with_a_long_name_gets_its_reason(gw):
    # A file dropped alone is moved to rejected/ with NAME.REASON.txt
    # beside it; for a name of 250 bytes that name was too long, and the
    # clerk got no reason at all.  It is cut, between characters.
    name = "\u00e9" * 120 + "-scan.pdf"      # 249 bytes
    with open(os.path.join(gw.incoming, name), "wb") as f:
        f.write(b"%PDF-1.4 synthetic\n")
    wait_rejected(gw, name)
    keep = name.encode()[:244].decode(errors="ignore")
    with open(os.path.join(gw.rejected, keep + ".REASON.txt"),
              encoding="utf-8") as f:
        reason = f.read()
    assert "is a single file, not a packet folder" in reason, reason
    assert sorted(gw.rejected_names()) == sorted([name, keep + ".REASON.txt"])


def test_reason_shows_odd_file_names_as_text(gw):
    # REASON.txt names the files that do not belong; a name with a line
    # break broke the list, and one cut after 100 bytes in the middle of a
    # character made REASON.txt not UTF-8.
    p = Packet("ROI-R-STRAY")
    long_name = "a" + "\u00e9" * 120

    def strays(folder):
        for n in ("note\nfor me.txt", long_name):
            with open(os.path.join(folder, n), "w") as f:
                f.write("synthetic\n")
    p.extra.append(strays)
    gw.drop(p)
    wait_rejected(gw, p.packet_id)
    reason = gw.reason(p.packet_id)          # read as UTF-8
    lines = reason.splitlines()
    assert ("- file note?for me.txt is not listed in the manifest: remove it "
            "or list it under documents") in lines, reason
    assert (f"- file a{chr(0xe9) * 49}... is not listed in the manifest: "
            "remove it or list it under documents") in lines, reason


@pytest.mark.parametrize("first_ok", [True, False],
                         ids=["taken", "refused"])
def test_folder_renamed_while_read_and_replaced_loses_nothing(gw, first_ok):
    # A clerk drops a packet, thinks better of it while roigated reads it
    # (a large packet takes a while: every document is opened by its
    # reader), renames it aside and drops the corrected one under the same
    # name.  The daemon took (or refused) the first, then removed (or
    # moved to rejected/ with the first one's reasons) the folder by its
    # name: the corrected packet, never looked at.  It is taken.
    first = Packet("ROI-R-FIRST")
    if not first_ok:
        first.manifest["recipient"] = "nobody-here"
    note = first.doc("discharge-summary.txt")
    for i in range(300):
        d = copy.deepcopy(note)
        d["file"] = f"note-{i:03d}.txt"
        first.manifest["documents"].append(d)
        first.files[d["file"]] = first.files[note["file"]] + b"%d\n" % i
    corrected = Packet("ROI-R-CORRECTED")
    ready = os.path.join(gw.incoming, ".corrected")
    corrected.write(ready)
    path = os.path.join(gw.incoming, gw.drop(first, "desk-drop"))
    fds = f"/proc/{gw.proc.pid}/fd"

    def reading(where):
        for f in os.listdir(fds):
            try:
                if os.readlink(os.path.join(fds, f)) == where:
                    return True
            except FileNotFoundError:
                pass
        return False
    wait_for("roigated to read the folder", lambda: reading(path),
             interval=0.002)
    os.rename(path, path + ".aside")
    os.rename(ready, path)
    assert reading(path + ".aside"), "taken before the swap: proves nothing"
    wait_state(gw, "ROI-R-CORRECTED", "delivered")
    if first_ok:
        # Taken (its 301 pages may take a loaded machine past job_timeout:
        # what it became after is not this test's business).
        assert gw.job_by_packet("ROI-R-FIRST")["id"] == 1
        # The folder set aside is known for job 1's own and removed.
        wait_for("incoming/ to empty", lambda: gw.incoming_names() == [])
        assert gw.rejected_names() == []
    else:
        wait_rejected(gw, "desk-drop.aside")
        assert ('- recipient "nobody-here" is not in the verified recipient '
                'directory\n') in gw.reason("desk-drop.aside")
        assert gw.rejected_names() == ["desk-drop.aside"]
        assert gw.job_by_packet("ROI-R-FIRST") is None


@pytest.mark.parametrize("doc,rect,size", [
    # A 300 dpi scan's pixels given for a PDF's points: below its foot.
    ("labs-2026-10.pdf", {"x": 150, "y": 2400, "w": 900, "h": 60},
     "612 x 792 points"),
    ("chest-xray.png", {"x": 5000, "y": 10, "w": 20, "h": 20}, None)])
def test_rectangle_off_the_page_fails_the_job(gw, doc, rect, size):
    # A rectangle wholly outside its page covered nothing and the job was
    # delivered: what the clerk meant to black out was sent.  It fails,
    # as a rectangle on a page the document does not have does.
    p = Packet("ROI-R-OFFPAGE-" + doc.split(".")[1].upper())
    p.doc(doc)["redact"] = {"rects": [dict(page=1, **rect)]}
    gw.drop(p)
    j = wait_state(gw, p.packet_id, "failed")
    err = j["last_error"]
    assert (f"a redaction rectangle on page 1 starts at x {rect['x']}, y "
            f"{rect['y']}, outside the page") in err, err
    assert "check the redactions marked for it. Nothing was sent" in err, err
    if size:
        assert f"({size})" in err, err
    assert not os.path.exists(gw.outbox) or os.listdir(gw.outbox) == []


TOO_MUCH = ("documents[0].redact.patterns[0].regex: repeats too much for the "
            "gateway (its {n,m} counts, nested or one after another, come to "
            "more than 2000 copies of what they repeat): write it with "
            "smaller counts")


@pytest.mark.parametrize("regex,refused", [
    # glibc's regcomp, which the intake runs in the daemon itself: 8 GB
    # and more than a minute; 1.4 GB and 2.4 s; both of 27 bytes or less.
    ("((a{1,255}){1,255}){1,255}", True),
    ("(.{0,255}){0,255}", True),
    ("x{1000}y{1000}z{1000}", True),
    ("(a{,255}){,255}", True),      # glibc's {,n}
    ("(" * 65 + "a" + ")" * 65, True),
    ("([[:alnum:]]{1,40}[ -]){1,48}", False),     # 41 x 48 = 1968
    ("CLM-[0-9]{6}", False),
    ("[]{]{3}[{]", False)])
def test_regex_that_repeats_too_much_is_refused_at_once(gw, regex, refused):
    p = Packet("ROI-R-REGEX")
    p.doc("labs-2026-10.pdf")["redact"] = {"patterns": [
        {"regex": regex, "expect": 0}]}
    gw.drop(p)
    t = time.monotonic()
    if refused:
        wait_rejected(gw, p.packet_id)
        assert gw.reason(p.packet_id).split("\n\n")[1] == f"- {TOO_MUCH}"
    else:
        wait_state(gw, p.packet_id, ("queued", "running", "delivered",
                                     "failed"))
    assert time.monotonic() - t < 10
    t = time.monotonic()
    gw.roictl("status", check=0)
    assert time.monotonic() - t < 1


def _submit(gw, p, names, paths, req=None):
    """Submit p over the socket, passing paths (opened read-only) as names."""
    folder = os.path.join(gw.root, "desk", p.packet_id)
    p.write(folder)
    fds = [os.open(os.path.join(folder, f), os.O_RDONLY) for f in paths]
    s = connect(gw)
    try:
        s.sendmsg([frame(req or {"v": 1, "id": 1, "op": "submit",
                                 "manifest": p.manifest, "files": names})],
                  [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                    array.array("i", fds))])
        return read_frame(s)
    finally:
        s.close()
        for fd in fds:
            os.close(fd)


def test_submitted_reason_file_not_listed_is_refused(gw):
    # Over the socket every file passed is the client's: an unlisted
    # REASON.txt was taken along silently into jobs/N (only the spool's
    # folders may hold reason files, roigate's own from a refusal).
    p = Packet("ROI-R-SUBMIT-REASON")
    p.files["REASON.txt"] = b"synthetic\n"
    names = [d["file"] for d in p.manifest["documents"]] + ["REASON.txt"]
    r = _submit(gw, p, names, names)
    assert r["code"] == "invalid", r
    assert r["reasons"] == ["file REASON.txt is not listed in the manifest: "
                            "remove it or list it under documents"], r
    assert os.listdir(os.path.join(gw.state, "jobs")) == []


def test_submitted_file_name_that_is_not_a_string(gw):
    p = Packet("ROI-R-SUBMIT-NAME")
    names = [d["file"] for d in p.manifest["documents"]]
    req = {"v": 1, "id": 1, "op": "submit", "manifest": p.manifest,
           "files": [5] + names[1:]}
    r = _submit(gw, p, None, names, req)
    assert (r["code"], r["error"]) == (
        "bad_request", "submit: files[0] must be a file name (a string)"), r
