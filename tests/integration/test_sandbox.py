"""The renderer's and the sender's sandboxes (src/sandbox.c, src/worker.c).

A hostile document can read its own pages and nothing else: the renderer
runs with no_new_privs and a seccomp filter (Seccomp: 2), under Landlock,
holds only its documents and its output; the sender runs with
no_new_privs and none of the worker's descriptors.  The escapes are tried
by a test-only build of the daemon (build/tests/roigated-hooks: the
renderer of a packet named ROI-HOOK-* does what ROIGATE_TEST_SANDBOX says
once it is sandboxed); build/roigated, the one `make install` installs,
has no such hook.
"""
import os
import socket

import pytest

import docs
from gateway import BUILD, Gateway, Packet, wait_for, wait_state

HOOKS = os.path.join(BUILD, "tests", "roigated-hooks")
STOPPED = ("the document tried to do something a document may not: it was "
           "stopped; nothing was sent")


def descendants(pid):
    out = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(c) for c in f.read().split()]
    except FileNotFoundError:
        return out
    for k in kids:
        out.append(k)
        out.extend(descendants(k))
    return out


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return fields


def fds(pid):
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:
            pass
    return out


def find(gw, name, timeout=20):
    return wait_for(name, lambda: [p for p in descendants(gw.proc.pid)
                                   if comm(p) == name], timeout=timeout)[0]


def hooked(tmp_path, hook, **overrides):
    overrides.setdefault("queue", {"job_timeout": "60s"})
    g = Gateway(str(tmp_path), **overrides)
    g.daemon = HOOKS
    g.env["ROIGATE_TEST_SANDBOX"] = hook
    g.start()
    g.add_recipient("records-desk")
    return g


@pytest.fixture
def gateways():
    made = []
    yield made
    for g in made:
        if g.proc is not None:
            g.stop()


def test_renderer_and_sender_are_confined(tmp_path, gateways):
    gw = hooked(tmp_path, "pause=3")
    gateways.append(gw)
    gw.drop(Packet("ROI-HOOK-PAUSE"))
    render = find(gw, "roigate-render")
    st = status(render)
    assert st["NoNewPrivs"] == "1" and st["Seccomp"] == "2", st
    # Its descriptors: /dev/null, its report socket, its output and its
    # documents; not the job's folder, the spool, the database.
    held = fds(render)
    assert not [f for f in held if f.endswith("roigate.db") or
                f.endswith("/jobs") or "spool" in f], held
    assert not [f for f in held if os.path.isdir(f)], held
    send = find(gw, "roigate-send")
    st = status(send)
    assert st["NoNewPrivs"] == "1", st
    held = fds(send)
    assert not [f for f in held if "roigate.db" in f or "/jobs" in f or
                "spool" in f or os.path.isdir(f)], held
    assert status(find(gw, "roigate-worker"))["NoNewPrivs"] == "1"
    wait_state(gw, "ROI-HOOK-PAUSE", "delivered", timeout=30)


def _escape(tmp_path, gateways, hook, syscall):
    gw = hooked(tmp_path, hook)
    gateways.append(gw)
    gw.drop(Packet("ROI-HOOK-ESCAPE"))
    j = wait_state(gw, "ROI-HOOK-ESCAPE", ("failed", "held", "delivered"),
                   timeout=30)
    job = gw.job(j["id"])
    assert j["state"] == "failed", job
    assert job["job"]["last_error"] == STOPPED, job["job"]["last_error"]
    assert job["disclosures"] == []
    assert f"stopped by its sandbox: system call {syscall} " in gw.log()
    # The daemon goes on, and so do other jobs.
    gw.drop(Packet("ROI-AFTER-ESCAPE"))
    wait_state(gw, "ROI-AFTER-ESCAPE", "delivered", timeout=30)
    return gw


def test_renderer_cannot_open_the_database_for_writing(tmp_path, gateways):
    db = os.path.join(str(tmp_path), "state", "roigate.db")
    gw = _escape(tmp_path, gateways, f"open-db={db}", "openat")
    assert gw.json("status")


def test_renderer_cannot_make_a_file(tmp_path, gateways):
    target = os.path.join(str(tmp_path), "escaped.txt")
    _escape(tmp_path, gateways, f"create={target}", "openat")
    assert not os.path.exists(target)


def test_renderer_cannot_connect(tmp_path, gateways):
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    ls.settimeout(0.2)
    port = ls.getsockname()[1]
    _escape(tmp_path, gateways, f"connect={port}", "socket")
    with pytest.raises(socket.timeout):
        ls.accept()
    ls.close()


def test_renderer_cannot_exec(tmp_path, gateways):
    _escape(tmp_path, gateways, "exec", "execve")


# The sanitizers' shadow memory takes terabytes of address space: that
# build sets no address-space limit (src/sandbox.c).
@pytest.mark.skipif(os.path.basename(BUILD) == "build-san",
                    reason="no address-space limit under ASan")
def test_renderer_past_its_address_space_fails_the_job(tmp_path, gateways):
    """Memory MuPDF does not count (here: the hook's own allocations) meets
    the address-space limit: the job fails with the memory reason."""
    gw = hooked(tmp_path, "alloc")
    gateways.append(gw)
    gw.drop(Packet("ROI-HOOK-ALLOC"))
    j = wait_state(gw, "ROI-HOOK-ALLOC", ("failed", "held", "delivered"),
                   timeout=60)
    err = gw.job(j["id"])["job"]["last_error"]
    assert j["state"] == "failed", err
    assert "needs more memory than the renderer may have" in err, err
    gw.drop(Packet("ROI-AFTER-ALLOC"))
    wait_state(gw, "ROI-AFTER-ALLOC", "delivered", timeout=30)


def path_pdf():
    """An ordinary first page (intake reads only that one), then a page
    whose one path has sixteen million segments: some 300 MB to hold,
    100 KB in the file."""
    from test_render import _deflated
    z = _deflated(b"1 1 l 2 2 l " * 4096, 4096)
    ops = b"0 0 m\n"
    w = docs.PdfWriter()
    w.add(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % (len(z)) + z +
          b"\nendstream")
    plain = docs.text_ops(["An ordinary first page"]).encode()
    w.add(b"<< /Length %d >>\nstream\n" % len(plain) + plain + b"\nendstream")
    w.add(b"<< /Length %d >>\nstream\n" % len(ops) + ops + b"\nendstream")
    w.add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    w.add("<< /Type /Page /Parent 7 0 R /MediaBox [0 0 612 792] /Contents 2 0 R "
          "/Resources << /Font << /F1 4 0 R >> >> >>")
    w.add("<< /Type /Page /Parent 7 0 R /MediaBox [0 0 612 792] "
          "/Contents [3 0 R 1 0 R] >>")
    w.add("<< /Type /Pages /Kids [5 0 R 6 0 R] /Count 2 >>")
    return w.save(w.add("<< /Type /Catalog /Pages 7 0 R >>"))


def test_document_past_max_memory_fails_and_others_go_on(gateway_factory):
    """A page that needs more than [render] max_memory: the job fails with
    the memory reason, and the job beside it is delivered."""
    gw = gateway_factory(render={"max_memory": "64M"},
                         spool={"max_file_size": "8M", "max_packet_size": "16M"},
                         queue={"job_timeout": "60s"})
    gw.start()
    gw.add_recipient("records-desk")
    p = Packet("ROI-BIG-IMAGE")
    p.files = {"path.pdf": path_pdf()}
    p.manifest["documents"] = [dict(p.manifest["documents"][0], file="path.pdf")]
    gw.drop(p)
    gw.drop(Packet("ROI-NEXT-TO-BIG"))
    wait_state(gw, "ROI-NEXT-TO-BIG", "delivered", timeout=30)
    j = wait_state(gw, "ROI-BIG-IMAGE", ("failed", "held", "delivered"), timeout=60)
    err = gw.job(j["id"])["job"]["last_error"]
    assert j["state"] == "failed", err
    assert ("document path.pdf page 2: needs more than 64 MB to render; the "
            "document may be damaged or built to exhaust the reader") in err, err
    assert gw.job(j["id"])["disclosures"] == []
    assert gw.json("status")


def test_intake_probe_is_sandboxed(gateway_factory):
    from test_render import slow_pdf, write_packet
    gw = gateway_factory(spool={"max_file_size": "8M", "max_packet_size": "8M"})
    gw.start()
    folder = os.path.join(gw.incoming, ".slow")
    write_packet(folder, {"slow.pdf": slow_pdf()})
    os.rename(folder, os.path.join(gw.incoming, "slow"))
    probe = wait_for("the document reader", lambda: descendants(gw.proc.pid),
                     timeout=20)[0]
    # Caught just after its fork it may still be entering the sandbox (it
    # does so before reading a byte): the slow document keeps it reading
    # for seconds, so it must be seen in the sandbox well before it ends.
    wait_for("the document reader in its sandbox",
             lambda: status(probe)["Seccomp"] == "2", timeout=5)
    st = status(probe)
    assert st["NoNewPrivs"] == "1" and st["Seccomp"] == "2", st
    assert not [f for f in fds(probe) if "roigate.db" in f or os.path.isdir(f)]


def test_sandbox_off_still_splits_the_worker(gateway_factory):
    gw = gateway_factory(render={"sandbox": "off"})
    gw.daemon = HOOKS
    gw.env["ROIGATE_TEST_SANDBOX"] = "pause=2"
    gw.settings["queue"]["job_timeout"] = "60s"
    gw.write_conf()
    gw.start()
    gw.add_recipient("records-desk")
    gw.drop(Packet("ROI-HOOK-OFF"))
    assert status(find(gw, "roigate-render"))["Seccomp"] == "0"
    wait_state(gw, "ROI-HOOK-OFF", "delivered", timeout=30)
