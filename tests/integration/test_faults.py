"""The loop never spins and always answers: a database another process
holds locked, a full disk, a reader killed from outside, a plugin that
cannot be loaded.  roigated keeps answering, says why in `roictl status`,
honours SIGTERM at once, and goes on by itself when the cause goes away."""
import os
import signal
import sqlite3
import subprocess
import time

import pytest

from gateway import (BUILD, EX_OK, Packet, wait_for, wait_state)

EX_TEMPFAIL = 75


def _timed_status(gw):
    t = time.monotonic()
    r = gw.roictl("status")
    return time.monotonic() - t, r


def _cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _problems(gw):
    """The problems of status, but that sealing is not set up (these
    gateways are not sealed: tests/integration/test_sealing.py is)."""
    return [p for p in gw.json("status")["problems"]
            if "is not sealed" not in p]


def _lock(gw):
    """Another process takes the database's write lock and keeps it."""
    con = sqlite3.connect(os.path.join(gw.state, "roigate.db"),
                          isolation_level=None, timeout=10)
    con.execute("BEGIN EXCLUSIVE")
    return con


def test_locked_database_status_answers_submit_is_unavailable(gw, tmp_path):
    gw.drop(Packet("ROI-F-BEFORE"))
    wait_state(gw, "ROI-F-BEFORE", "delivered")
    con = _lock(gw)
    try:
        for _ in range(5):
            dt, r = _timed_status(gw)
            assert r.returncode == EX_OK, r.stderr
            assert dt < 1.0, dt
        # A submission is refused for now, never as invalid.
        folder = str(tmp_path / "sub")
        Packet("ROI-F-SUBMIT").write(folder)
        t = time.monotonic()
        r = gw.roictl("submit", folder)
        assert r.returncode == EX_TEMPFAIL, (r.returncode, r.stderr)
        assert "send it again later" in r.stderr, r.stderr
        assert time.monotonic() - t < 2.0
        # A spool packet waits; the cause is in status.
        gw.drop(Packet("ROI-F-SPOOL"))
        wait_for("the spool problem", lambda: any(
            "cannot accept packets" in p and "locked" in p
            for p in _problems(gw)))
        assert any("audit log" in p for p in _problems(gw))
    finally:
        con.execute("COMMIT")
        con.close()
    # The cause gone, everything goes on and the problems clear.
    wait_state(gw, "ROI-F-SPOOL", "delivered", timeout=30)
    assert gw.roictl("submit", folder).returncode == EX_OK
    wait_state(gw, "ROI-F-SUBMIT", "delivered")
    wait_for("the problems to clear", lambda: _problems(gw) == [], timeout=30)
    # No audit row was lost while it waited.
    with gw.db() as db:
        n = db.execute("SELECT COUNT(*) FROM audit WHERE op = 'status'"
                       ).fetchone()[0]
    assert n >= 5


def test_sigterm_is_honoured_while_the_database_is_locked(gw):
    con = _lock(gw)
    try:
        gw.drop(Packet("ROI-F-TERM"))
        wait_for("the spool problem", lambda: any(
            "cannot accept packets" in p for p in _problems(gw)))
        t = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        gw.proc.wait(10)
        assert time.monotonic() - t < 5.0
        gw._closed()
    finally:
        con.execute("COMMIT")
        con.close()
    # Nothing was taken: the packet is still there for the next start.
    assert gw.incoming_names() == ["ROI-F-TERM"]


@pytest.fixture
def small_disk(gateway_factory, tmp_path):
    """The state folder on a 16 MB file system of its own."""
    gw = gateway_factory()
    os.makedirs(gw.state, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700",
                    "roigate-test", gw.state], check=True)
    try:
        yield gw
    finally:
        if gw.proc is not None:
            gw.stop()
        subprocess.run(["umount", gw.state], check=False)


def _fill(path, leave=200 * 1024):
    st = os.statvfs(os.path.dirname(path))
    free = st.f_bavail * st.f_frsize
    with open(path, "wb") as f:
        f.truncate(0)
        chunk = b"\0" * (1 << 20)
        left = free - leave
        while left > 0:
            n = min(left, len(chunk))
            f.write(chunk[:n])
            left -= n
        f.flush()
        os.fsync(f.fileno())


def test_full_disk_no_spin_status_answers_and_it_resumes(small_disk):
    gw = small_disk
    gw.start()
    gw.add_recipient("records-desk")
    # A job that will be due again in 2 s, when the disk is full.
    gw.add_recipient("busy-line", transport="flaky", address="tempfail:1:2")
    p = Packet("ROI-F-DUE", recipient="busy-line")
    gw.drop(p)
    wait_state(gw, p.packet_id, "deferred")
    filler = os.path.join(gw.state, "filler")
    _fill(filler)
    gw.drop(Packet("ROI-F-FULL"))
    wait_for("a problem naming the cause", lambda: any(
        "cannot start" in p or "cannot accept" in p for p in _problems(gw)),
        timeout=30)
    # No loop: a few seconds cost the daemon almost no CPU time.
    before = _cpu_seconds(gw.proc.pid)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3:
        dt, r = _timed_status(gw)
        assert r.returncode == EX_OK and dt < 1.0, (dt, r.stderr)
        time.sleep(0.25)
    used = _cpu_seconds(gw.proc.pid) - before
    assert used < 0.5, f"{used:.2f} s of CPU in 3 s"
    # Space again: the due job is sent, the packet taken, problems cleared.
    os.unlink(filler)
    wait_state(gw, p.packet_id, "delivered", timeout=90)
    wait_state(gw, "ROI-F-FULL", "delivered", timeout=90)
    wait_for("the problems to clear", lambda: _problems(gw) == [], timeout=90)


def test_full_disk_sigterm_is_honoured(small_disk):
    gw = small_disk
    gw.start()
    gw.add_recipient("records-desk")
    _fill(os.path.join(gw.state, "filler"))
    gw.drop(Packet("ROI-F-TERM2"))
    wait_for("the spool problem", lambda: any(
        "cannot" in p for p in _problems(gw)), timeout=30)
    t = time.monotonic()
    gw.proc.send_signal(signal.SIGTERM)
    gw.proc.wait(10)
    assert time.monotonic() - t < 5.0
    gw._closed()


def _truncate_plugin(gw, name="faxapi.so", keep=4096):
    path = os.path.join(gw.plugins, name)
    with open(path, "rb") as f:
        head = f.read(keep)
    os.unlink(path)             # as a copy that stopped half-way leaves it
    with open(path, "wb") as f:
        f.write(head)
    return path


def test_a_truncated_plugin_is_refused_at_start_with_the_reason(gateway_factory):
    gw = gateway_factory(transport_fax={"plugin": "faxapi"})
    path = _truncate_plugin(gw)
    r = subprocess.run([os.path.join(BUILD, "roigated"), "-f", gw.conf],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, (r.returncode, r.stderr)     # not a SIGBUS
    assert f"transport plugin {path} is cut short" in r.stderr, r.stderr
    assert "reinstall it" in r.stderr
    r = subprocess.run([os.path.join(BUILD, "roigated"), "-n", "-f", gw.conf],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "is cut short" in r.stderr, r.stderr


def test_a_truncated_plugin_at_reload_keeps_the_running_configuration(gw):
    gw.settings["transport fax"] = {"plugin": "faxapi"}
    gw.write_conf()
    _truncate_plugin(gw)
    gw.proc.send_signal(signal.SIGHUP)
    gw.wait_notify("READY=1")
    log = gw.log()
    assert "is cut short" in log and "configuration not reloaded" in log, log
    assert "configuration reloaded" not in log
    gw.drop(Packet("ROI-F-RELOAD"))
    wait_state(gw, "ROI-F-RELOAD", "delivered")
