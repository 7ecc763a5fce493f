"""The daemon and its command-line client as an administrator meets them:
configuration checks, reload, the socket, roles, submission."""
import json
import os
import pwd
import re
import signal
import socket
import struct
import subprocess

from gateway import (BUILD, Gateway, Packet, open_path, wait_for, wait_state,
                     EX_UNAVAILABLE, EX_NOPERM, EX_DATAERR)


def run_check(path):
    return subprocess.run([os.path.join(BUILD, "roigated"), "-n", "-f", path],
                          capture_output=True, text=True, timeout=30)


def test_config_check_like_postfix_check(tmp_path):
    gw = Gateway(str(tmp_path))
    r = run_check(gw.conf)
    assert r.returncode == 0 and "configuration OK" in r.stdout
    with open(gw.conf, "a") as f:
        f.write("[queue]\nworkers = many\nfrobnicate = 1\n")
    r = run_check(gw.conf)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    n = sum(1 for _ in open(gw.conf))
    assert f"{gw.conf}:{n - 1}: workers: \"many\" is not a whole number" in lines
    assert f"{gw.conf}:{n}: unknown key \"frobnicate\" in [queue]" in lines
    # A transport key the plugin does not know is reported at its line too.
    gw2 = Gateway(str(tmp_path / "two"))
    with open(gw2.conf, "a") as f:
        f.write("[transport spare]\nplugin = flaky\ncolour = blue\n")
    r = run_check(gw2.conf)
    assert r.returncode == 1
    assert "unknown key \"colour\"" in r.stderr
    assert f"{gw2.conf}:" in r.stderr


def test_missing_config_file_is_an_error(tmp_path):
    r = run_check(str(tmp_path / "nope.conf"))
    assert r.returncode == 1 and "No such file or directory" in r.stderr


def test_sighup_reloads_and_keeps_running_config_on_errors(gw):
    gw.roictl("status", check=0)
    # Take the audit role away from us: the reload applies it.
    gw.settings["roles"]["audit"] = "uid:4242"
    gw.write_conf()
    gw.proc.send_signal(signal.SIGHUP)
    gw.wait_notify("READY=1")
    r = gw.roictl("log")
    assert r.returncode == EX_NOPERM, r
    # A broken file is refused and the running configuration stays.
    with open(gw.conf, "a") as f:
        f.write("[queue]\nworkers = 0\n")
    gw.proc.send_signal(signal.SIGHUP)
    gw.wait_notify("READY=1")
    assert "configuration not reloaded" in gw.log()
    gw.drop(Packet("ROI-C-RELOAD"))
    wait_state(gw, "ROI-C-RELOAD", "delivered")


def test_debug_log_says_where_a_jobs_time_went_without_phi(tmp_path):
    """At debug level an administrator sees each delivered job's stages
    (docs/performance.md), and no patient in that line."""
    gw = Gateway(str(tmp_path), daemon={"log_level": "debug"})
    gw.start()
    gw.add_recipient("records-desk")
    p = Packet("ROI-C-STAGES")
    gw.drop(p)
    wait_state(gw, "ROI-C-STAGES", "delivered")
    assert gw.stop() == 0
    log = gw.log()
    # Loaded once by the daemon before any worker: no worker loads it again.
    assert "OCR data loaded for the workers" in log
    lines = [line for line in log.splitlines() if re.search(r"job \d+: worker [\d.]+ ms:", line)]
    assert len(lines) == 1, log
    for stage in ("check", "prepare", "renderer", "documents", "cover", "save",
                  "gate", "output", "the attempt's record", "send"):
        assert re.search(rf"{stage} [\d.]+", lines[0]), (stage, lines[0])
    patient = p.manifest["patient"]
    for phi in (patient["name"], patient["mrn"], patient["dob"], "Testpatient"):
        assert phi not in lines[0]


def test_second_daemon_on_same_state_refuses(gw):
    other = subprocess.run([os.path.join(BUILD, "roigated"), "-f", gw.conf],
                           capture_output=True, text=True, timeout=30)
    assert other.returncode != 0
    assert "another roigated is already running" in other.stderr
    gw.roictl("status", check=0)


def test_roictl_without_daemon(tmp_path):
    r = subprocess.run([os.path.join(BUILD, "roictl"), "-s",
                        str(tmp_path / "none.sock"), "status"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == EX_UNAVAILABLE
    assert "none.sock" in r.stderr


def test_roictl_help_and_usage(gw):
    r = gw.roictl("--help", check=0)
    for cmd in ("status", "list", "show", "hold", "release", "retry", "cancel",
                "submit", "log", "verify-log", "audit", "recipient"):
        assert f"  {cmd}" in r.stdout
    r = gw.roictl("frobnicate")
    assert r.returncode == 64


def test_caller_without_a_role_is_refused_and_audited(gw):
    # Without the socket's group, the file mode keeps "nobody" out...
    open_path(gw.root)
    r = gw.roictl("status", user="nobody")
    assert r.returncode == EX_NOPERM, r
    assert "only members of the socket's group" in r.stderr
    # ...and with it (as if "nobody" were in the group), roles decide.
    os.chmod(gw.sock, 0o666)
    r = gw.roictl("status", user="nobody")
    assert r.returncode == EX_NOPERM, r
    assert "permission denied: status needs the role" in r.stderr
    r = gw.roictl("hold", "1", user="nobody")
    assert r.returncode == EX_NOPERM
    # Refusals are counted: one row per uid and minute, written when the
    # minute ends or the daemon stops.
    assert gw.stop() == 0
    nobody = pwd.getpwnam("nobody").pw_uid
    with gw.db() as db:
        denied = db.execute("SELECT op, outcome, detail FROM audit WHERE "
                            "uid = ?", (nobody,)).fetchall()
    assert len(denied) == 1, denied
    op, outcome, detail = denied[0]
    assert (op, outcome) == ("status", "denied")
    assert detail.startswith("2 refused requests in ")
    assert "(status 1, hold 1)" in detail


def test_oversized_frame_is_refused_and_daemon_serves_others(gw):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(gw.sock)
    s.sendall(struct.pack(">I", 64 * 1024 * 1024) + b"{" * 1000)
    s.settimeout(10)
    try:
        data = s.recv(65536)
    except ConnectionResetError:
        data = b""
    s.close()
    assert b"exceeds the limit of 1048576 bytes" in data
    gw.roictl("status", check=0)


def test_submit_over_the_socket(gw, tmp_path):
    p = Packet("ROI-C-SOCKET")
    folder = str(tmp_path / "pkt")
    p.write(folder)
    r = gw.roictl("submit", folder, check=0)
    assert "job" in r.stdout
    j = wait_state(gw, "ROI-C-SOCKET", "delivered")
    assert gw.job(j["id"])["job"]["source"] == "socket"
    # The submitter's folder is left as it was.
    assert sorted(os.listdir(folder)) == sorted(list(p.files) + ["manifest.json"])
    # A bad packet is refused at once, with the reasons, and no job.
    bad = Packet("ROI-C-SOCKET-BAD")
    bad.manifest["authorization"]["expires_on"] = "2026-10-01"
    folder2 = str(tmp_path / "bad")
    bad.write(folder2)
    r = gw.roictl("submit", folder2)
    assert r.returncode == EX_DATAERR
    assert "expired on 2026-10-01" in r.stderr
    assert gw.job_by_packet("ROI-C-SOCKET-BAD") is None


def test_libroigate_example_program(gw, tmp_path):
    p = Packet("ROI-C-LIB")
    folder = str(tmp_path / "pkt")
    p.write(folder)
    r = subprocess.run([os.path.join(BUILD, "examples", "submit"), folder,
                        gw.sock], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("accepted as job ")
    wait_state(gw, "ROI-C-LIB", "delivered")
