"""roictl watch, driven in a real terminal (tmux): the screen shows a job
moving to delivered, and q quits."""
import os
import shutil
import subprocess
import uuid

from gateway import BUILD, Packet, wait_for, wait_state


class Tmux:
    def __init__(self):
        if shutil.which("tmux") is None:
            raise AssertionError("tmux is missing: run scripts/install-deps")
        self.server = "roigate-test-" + uuid.uuid4().hex[:8]

    def run(self, *args, check=True):
        return subprocess.run(["tmux", "-L", self.server, *args],
                              capture_output=True, text=True, timeout=30,
                              check=check)

    def screen(self):
        return self.run("capture-pane", "-p", "-t", "w").stdout

    def alive(self):
        return self.run("has-session", "-t", "w", check=False).returncode == 0

    def kill(self):
        self.run("kill-server", check=False)


def test_watch_shows_a_job_reaching_delivered(gw):
    gw.add_recipient("slow-desk", transport="flaky", address="slow:1500")
    t = Tmux()
    try:
        t.run("new-session", "-d", "-s", "w", "-x", "150", "-y", "40",
              f"{BUILD}/roictl -s {gw.sock} watch -n 1; echo watch-exit-$?; "
              "sleep 30")
        wait_for("the watch screen", lambda: "q quits" in t.screen())
        assert "JOB" in t.screen() and "STATE" in t.screen()
        gw.drop(Packet("ROI-W-0001", recipient="slow-desk"))
        # While the transport takes its time, the screen shows the send...
        wait_for("the job sending on screen", lambda: any(
            "ROI-W-0001" in line and "sending" in line
            for line in t.screen().splitlines()), timeout=20)
        # ...and then the delivery, without anyone pressing a key.
        wait_for("the job delivered on screen", lambda: any(
            "ROI-W-0001" in line and "delivered" in line
            for line in t.screen().splitlines()), timeout=20)
        # The counts come from a status asked just before the job list of
        # the same frame: they follow at the next frame at the latest.
        wait_for("the count on screen", lambda: "delivered 1" in t.screen(),
                 timeout=5)
        wait_state(gw, "ROI-W-0001", "delivered")
        # q quits at once, and cleanly (the shell then prints the status).
        t.run("send-keys", "-t", "w", "q")
        wait_for("watch to quit", lambda: "watch-exit-0" in t.screen(),
                 timeout=10)
    finally:
        t.kill()


def test_watch_needs_a_terminal(gw):
    r = gw.roictl("watch")
    assert r.returncode == 64
    assert "watch needs a terminal" in r.stderr
