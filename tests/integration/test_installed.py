"""The gateway as installed: roigated runs as its own user (not root), ROI
clerks copy packet folders into incoming/ with their own umask, and
whatever the daemon accepts becomes its own.  A folder it may not take is
left alone and said once; everyone else's packets keep flowing."""
import os
import subprocess
import threading
import time

import pytest

from gateway import (CLERK_UID, DAEMON_UID, Gateway, Packet, as_clerk,
                     sha256, wait_for, wait_state)


@pytest.fixture
def installed(tmp_path):
    g = Gateway(str(tmp_path), as_user=True)
    g.start()
    g.add_recipient("records-desk")
    yield g
    if g.proc is not None:
        assert g.stop() == 0, "roigated did not stop cleanly:\n" + g.log()


def _build(gw, packet, name=None):
    """The packet written somewhere the clerk can read it."""
    src = os.path.join(gw.root, "clerk-desk", name or packet.packet_id)
    packet.write(src)
    os.chmod(os.path.dirname(src), 0o755)
    for dirpath, dirs, files in os.walk(src):
        os.chmod(dirpath, 0o755)
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o644)
    return src


def clerk_drops(gw, packet, name=None, keep_mode=False):
    """A clerk copies the folder into incoming/, owned by the clerk.  The
    supported way (docs/operations.md): the clerks' umask is 002, so the
    group entries of incoming/'s default ACL keep their write bit.  With
    keep_mode the clerk's umask is 022 and cp -r makes the folder 0755,
    which narrows the ACL to read-only for the daemon."""
    src = _build(gw, packet, name)
    as_clerk("cp", "-r", "--no-preserve=mode", src,
             os.path.join(gw.incoming, name or packet.packet_id),
             umask="022" if keep_mode else "002")


def _status_times(gw, stop, times):
    while not stop.is_set():
        t = time.monotonic()
        r = gw.roictl("status")
        times.append((time.monotonic() - t, r.returncode))


def test_daemon_runs_as_its_own_user(installed):
    with open(f"/proc/{installed.proc.pid}/status") as f:
        uids = [ln for ln in f if ln.startswith("Uid:")][0].split()[1:]
    assert set(uids) == {str(DAEMON_UID)}


def test_clerk_folder_is_copied_and_removed(installed):
    gw = installed
    p = Packet("ROI-I-CLERK")
    clerk_drops(gw, p)
    j = wait_state(gw, p.packet_id, "delivered")
    wait_for("the clerk's folder to be removed",
             lambda: gw.incoming_names() == [])
    # What was accepted is the daemon's own, 0600, not the clerk's.
    folder = os.path.join(gw.state, "jobs", str(j["id"]))
    for name in p.files:
        st = os.stat(os.path.join(folder, name))
        assert (st.st_uid, st.st_mode & 0o777) == (DAEMON_UID, 0o600), name
    assert os.stat(folder).st_uid == DAEMON_UID


def test_clerk_cannot_change_what_was_accepted(installed):
    """A clerk process keeps a descriptor of a document open and rewrites it
    after acceptance: what is sent, and its hash, do not change."""
    gw = installed
    # The first attempt fails, so the attempt that is sent renders after
    # the clerk's rewrite.
    gw.add_recipient("busy-line", transport="flaky", address="tempfail:1:1")
    p = Packet("ROI-I-REWRITE", recipient="busy-line")
    src = _build(gw, p)
    dst = os.path.join(gw.incoming, p.packet_id)
    doc = "discharge-summary.txt"
    script = (
        "import os, sys\n"
        "os.umask(0o022)\n"
        f"os.mkdir({dst!r} + '.tmp')\n"
        f"for n in os.listdir({src!r}):\n"
        f"    with open(os.path.join({src!r}, n), 'rb') as a, "
        f"open(os.path.join({dst!r} + '.tmp', n), 'wb') as b: b.write(a.read())\n"
        f"f = open(os.path.join({dst!r} + '.tmp', {doc!r}), 'r+b')\n"
        f"os.rename({dst!r} + '.tmp', {dst!r})\n"
        "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
        "sys.stdin.readline()\n"
        "f.seek(0); f.truncate()\n"
        "f.write(b'REWRITTEN-BY-CLERK-AFTER-ACCEPTANCE\\n'); f.flush()\n"
        "sys.stdout.write('done\\n'); sys.stdout.flush()\n")
    clerk = subprocess.Popen(["/usr/bin/python3", "-c", script],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, user=CLERK_UID, group=CLERK_UID,
                             extra_groups=[DAEMON_UID])
    assert clerk.stdout.readline() == "ready\n"
    j = wait_for("the job", lambda: gw.job_by_packet(p.packet_id))
    clerk.stdin.write("go\n")
    clerk.stdin.flush()
    assert clerk.stdout.readline() == "done\n"
    clerk.wait(10)
    j = wait_state(gw, p.packet_id, "delivered")
    assert j["attempts"] == 2
    copy = os.path.join(gw.state, "jobs", str(j["id"]), doc)
    with open(copy, "rb") as f:
        assert sha256(f.read()) == sha256(p.files[doc])
    sent = gw.job(j["id"])["disclosures"][-1]["output_sha256"]
    archived = [os.path.join(gw.state, "archive", n)
                for n in os.listdir(os.path.join(gw.state, "archive"))]
    out = [a for a in archived if sha256(open(a, "rb").read()) == sent]
    assert out
    # Rendered before the rewrite (attempt 1) and after it (attempt 2): the
    # same bytes.
    assert sorted(out) == [gw.archived(1, 1), gw.archived(1, 2)]


def test_folders_it_may_not_take_are_left_alone(installed):
    """A 0755 folder owned by another user (no ACL) and a chattr +i folder
    beside ten good packets: the ten are delivered, status answers within a
    second throughout, and the job numbers are 1-10."""
    gw = installed
    # The clerk's own 0755 folder: cp -r keeps the source's mode, which
    # narrows incoming/'s ACL to read-only for the daemon.
    clerk_drops(gw, Packet("ROI-I-NOACL"), "no-acl", keep_mode=True)
    # An immutable one.
    clerk_drops(gw, Packet("ROI-I-IMMUT"), "immutable")
    frozen = os.path.join(gw.incoming, "immutable")
    subprocess.run(["chattr", "+i", frozen], check=True)
    try:
        stop, times = threading.Event(), []
        t = threading.Thread(target=_status_times, args=(gw, stop, times))
        t.start()
        try:
            good = [Packet(f"ROI-I-GOOD-{i}") for i in range(10)]
            for p in good:
                clerk_drops(gw, p)
            for p in good:
                wait_state(gw, p.packet_id, "delivered", timeout=60)
        finally:
            stop.set()
            t.join()
        assert times and all(rc == 0 for _, rc in times)
        assert max(dt for dt, _ in times) < 1.0, max(times)
        assert sorted(j["id"] for j in gw.jobs()) == list(range(1, 11))
        assert sorted(gw.incoming_names()) == ["immutable", "no-acl"]
        st = gw.roictl("status").stdout
        assert "2 folders in incoming/ cannot be taken: " in st, st
        assert "incoming/immutable" in st and "incoming/no-acl" in st, st
        log = gw.log()
        # Said once each, not in a loop.
        assert log.count("incoming/no-acl (owner uid 4101, mode 2755)") == 1, log
        assert log.count("incoming/immutable (owner uid 4101") == 1, log
        assert "is marked immutable (chattr)" in log
        assert "needs write" not in log
        # Fixed by the administrator: taken at once, the problem cleared.
        subprocess.run(["chattr", "-i", frozen], check=True)
        subprocess.run(["chmod", "-R", "g+w", os.path.join(gw.incoming,
                                                         "no-acl")], check=True)
        os.utime(frozen)    # an event; otherwise the backoff finds it
        wait_state(gw, "ROI-I-IMMUT", "delivered", timeout=60)
        wait_state(gw, "ROI-I-NOACL", "delivered", timeout=60)
        wait_for("the problem to clear",
                 lambda: "cannot be taken" not in gw.roictl("status").stdout)
    finally:
        subprocess.run(["chattr", "-i", frozen], check=False)


def test_refused_clerk_packet_goes_to_rejected_with_reason(installed):
    gw = installed
    p = Packet("ROI-I-BAD")
    p.manifest["approval"]["by"] = ""
    p.manifest.pop("approval")
    clerk_drops(gw, p)
    wait_for("the packet in rejected/",
             lambda: "ROI-I-BAD" in gw.rejected_names())
    assert "approval" in gw.reason("ROI-I-BAD")
    assert gw.jobs() == []


def test_clerks_own_reason_file_is_never_written_over(installed):
    """A document named REASON.txt is the clerk's: the daemon writes its
    reasons beside it, under another name."""
    gw = installed
    p = Packet("ROI-I-REASON")
    p.files["REASON.txt"] = b"Clerk's own note: records requested by court.\n"
    p.manifest["documents"].append({
        "file": "REASON.txt", "type": "correspondence", "date": "2026-10-01",
        "description": "court note", "sha256": "0" * 64})
    p.fix_hashes = False
    for d in p.manifest["documents"]:
        d["sha256"] = sha256(p.files[d["file"]])
    p.manifest["patient"].pop("mrn")      # refused for this
    clerk_drops(gw, p)
    wait_for("the packet in rejected/",
             lambda: "ROI-I-REASON" in gw.rejected_names())
    folder = os.path.join(gw.rejected, "ROI-I-REASON")
    with open(os.path.join(folder, "REASON.txt"), "rb") as f:
        assert f.read() == p.files["REASON.txt"]
    with open(os.path.join(folder, "REASON.1.txt")) as f:
        assert "mrn" in f.read()


def test_submit_by_a_clerk_needs_no_shared_folder(installed, tmp_path):
    """roictl submit passes descriptors: the clerk's files, which the
    daemon's user could not open by name, are copied and accepted."""
    gw = installed
    gw.settings["roles"]["submit"] = f"uid:{CLERK_UID}"
    gw.write_conf()
    gw.proc.send_signal(1)
    gw.wait_notify("READY=1")
    gw.open_to_others()
    p = Packet("ROI-I-SUBMIT")
    private = os.path.join(gw.root, "clerk-home")
    os.makedirs(private)
    p.write(os.path.join(private, "packet"))
    for dirpath, dirs, files in os.walk(private):
        os.chown(dirpath, CLERK_UID, CLERK_UID)
        os.chmod(dirpath, 0o700)
        for f in files:
            os.chown(os.path.join(dirpath, f), CLERK_UID, CLERK_UID)
            os.chmod(os.path.join(dirpath, f), 0o600)
    r = gw.roictl("submit", os.path.join(private, "packet"),
                  user=(CLERK_UID, CLERK_UID, []))
    assert r.returncode == 0, r.stderr
    wait_state(gw, p.packet_id, "delivered")
