"""A real roigated in a temporary folder, and packets to feed it.

Used by the integration tests: the daemon is the built binary, the store is
SQLite on disk, the transports are the built plugins (local, and the
test-only flaky one), and roictl is the built command-line client.
"""
import copy
import datetime
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import time

BUILD = os.environ.get("ROIGATE_BUILD") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build")
BUILD = os.path.abspath(BUILD)
TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SAMPLE = os.path.join(TOP, "examples", "sample-packet")
TEMPLATES = os.path.join(TOP, "templates")

# Exit codes of roictl (sysexits).
EX_OK, EX_USAGE, EX_DATAERR, EX_NOUSER, EX_UNAVAILABLE, EX_SOFTWARE, EX_NOPERM = \
    0, 64, 65, 67, 69, 70, 77


# The identities of an installed gateway, for tests that run it as installed:
# the daemon's own user "roigate" (and its group), and an ROI clerk who is a
# member of that group.  Numbers, not names: nothing is added to the machine.
DAEMON_UID = 4100
CLERK_UID = 4101


def as_user_default():
    """ROIGATE_TEST_AS_USER=1 runs every gateway of a test as installed."""
    return os.environ.get("ROIGATE_TEST_AS_USER") == "1"


def install_incoming(incoming, uid=DAEMON_UID):
    """incoming/ as docs/operations.md sets it up for clerks: owned by the
    daemon, setgid to its group, group-writable, and a default ACL that gives
    the daemon's user and group full access to every folder and file a
    clerk creates in it, whatever the clerk's umask."""
    os.makedirs(incoming, exist_ok=True)
    os.chown(incoming, uid, uid)
    os.chmod(incoming, 0o2770)
    subprocess.run(["setfacl", "-m", f"d:u:{uid}:rwx,d:g:{uid}:rwx,d:m:rwx",
                    incoming], check=True)


def as_clerk(*cmd, uid=CLERK_UID, umask="022"):
    """Run a command as a clerk (member of the daemon's group)."""
    return subprocess.run(["sh", "-c", f'umask {umask}; exec "$@"', "sh", *cmd],
                          user=uid, group=uid, extra_groups=[DAEMON_UID],
                          capture_output=True, text=True, check=True)


def open_path(folder):
    """Let other users reach a folder below pytest's private tmp (o+rx on
    it and on every folder above it up to /tmp)."""
    d = folder
    while d not in ("/", "/tmp"):
        os.chmod(d, os.stat(d).st_mode | 0o005)
        d = os.path.dirname(d)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def pdf_pages(path):
    """The page count pdfinfo reads from a PDF."""
    out = subprocess.run(["pdfinfo", path], capture_output=True, text=True,
                         check=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", out, re.M).group(1))


def report_pdf(gw, tmp_path, *args):
    """A report's PDF, `roictl ARGS --format pdf -o FILE` twice: the same
    bytes both times, the file its writer's alone (0600), a link put in its
    place not followed, and qpdf --check content.  (bytes, pdftotext
    -layout's text)."""
    a, b = str(tmp_path / "a.pdf"), str(tmp_path / "b.pdf")
    for out in (a, b):
        gw.roictl(*args, "--format", "pdf", "-o", out, check=0)
    data = open(a, "rb").read()
    assert data == open(b, "rb").read(), "same inputs, different bytes"
    assert os.stat(a).st_mode & 0o777 == 0o600
    link = str(tmp_path / "link.pdf")
    os.symlink(str(tmp_path / "elsewhere.pdf"), link)
    r = gw.roictl(*args, "--format", "pdf", "-o", link)
    assert r.returncode == 73 and not os.path.exists(tmp_path / "elsewhere.pdf")
    subprocess.run(["qpdf", "--check", a], check=True, capture_output=True)
    text = subprocess.run(["pdftotext", "-layout", a, "-"], check=True,
                          capture_output=True, text=True).stdout
    return data, text


def report_paginated(gw, tmp_path, folder, *args):
    """A report's PDF (`roictl ARGS --format pdf -o FILE`) drawn from a copy
    of the templates whose FOLDER/page.tpl has room for five rows a page:
    three pages at least, "Page X of Y" right, qpdf --check content.  The
    daemon is restarted on the copy.  pdftotext's text."""
    tpl = str(tmp_path / "templates")
    shutil.copytree(TEMPLATES, tpl)
    page = os.path.join(tpl, folder, "page.tpl")
    with open(page) as f:
        src = f.read()
    with open(page, "w") as f:
        f.write(src.replace("#! area 130 740", "#! area 130 200"))
    gw.stop()
    gw.settings["daemon"]["template_dir"] = tpl
    gw.write_conf()
    gw.start()
    out = str(tmp_path / "p.pdf")
    gw.roictl(*args, "--format", "pdf", "-o", out, check=0)
    text = subprocess.run(["pdftotext", out, "-"], check=True,
                          capture_output=True, text=True).stdout
    n = int(re.search(r"Page 1 of (\d+)", text).group(1))
    assert n >= 3 and f"Page {n} of {n}" in text
    assert f"Page {n + 1} " not in text
    subprocess.run(["qpdf", "--check", out], check=True, capture_output=True)
    return text


def sample_manifest():
    with open(os.path.join(SAMPLE, "manifest.json"), encoding="utf-8") as f:
        return json.load(f)


def sample_file(name):
    with open(os.path.join(SAMPLE, name), "rb") as f:
        return f.read()


class Packet:
    """A packet folder being built: the sample packet, changed as a test needs.

    files maps names to bytes; manifest is the dict that becomes
    manifest.json (SHA-256s are filled in from files unless a test sets
    them itself with fix_hashes=False)."""

    def __init__(self, packet_id, recipient="records-desk"):
        self.manifest = sample_manifest()
        self.manifest["packet_id"] = packet_id
        self.manifest["recipient"] = recipient
        # Keep the sample's authorization valid whatever day the tests run.
        self.manifest["authorization"]["expires_on"] = (
            datetime.date.today() + datetime.timedelta(days=365)).isoformat()
        self.files = {d["file"]: sample_file(d["file"])
                      for d in self.manifest["documents"]}
        self.fix_hashes = True
        self.extra = []  # callables(folder) run after writing

    @property
    def packet_id(self):
        return self.manifest["packet_id"]

    def doc(self, name):
        for d in self.manifest["documents"]:
            if d["file"] == name:
                return d
        raise KeyError(name)

    def write(self, folder):
        os.makedirs(folder)
        if self.fix_hashes:
            for d in self.manifest["documents"]:
                if d["file"] in self.files:
                    d["sha256"] = sha256(self.files[d["file"]])
        for name, data in self.files.items():
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)
        with open(os.path.join(folder, "manifest.json"), "w",
                  encoding="utf-8") as f:
            json.dump(self.manifest, f, ensure_ascii=False, indent=2)
        for fn in self.extra:
            fn(folder)


class Gateway:
    """roigated on a private folder, with its own configuration."""

    def __init__(self, root, as_user=None, **overrides):
        self.root = root
        # As installed: the daemon runs as its own user (not root), and
        # packets belong to someone else (the test, or a clerk).
        self.as_user = as_user_default() if as_user is None else as_user
        self.state = os.path.join(root, "state")
        self.spool = os.path.join(root, "spool")
        self.incoming = os.path.join(self.spool, "incoming")
        self.rejected = os.path.join(self.spool, "rejected")
        self.outbox = os.path.join(root, "outbox")
        self.flaky_dir = os.path.join(root, "flaky")
        self.sock = os.path.join(root, "roigate.sock")
        self.conf = os.path.join(root, "roigate.conf")
        self.plugins = os.path.join(root, "plugins")
        self.log_path = os.path.join(root, "roigated.log")
        self.proc = None
        self.env = {}
        self.daemon = os.path.join(BUILD, "roigated")
        os.makedirs(self.plugins, exist_ok=True)
        os.makedirs(self.flaky_dir, exist_ok=True)
        for so in ("transports/local.so", "transports/sftp.so",
                   "transports/smime.so", "transports/faxapi.so",
                   "tests/transports/flaky.so"):
            src = os.path.join(BUILD, so)
            if not os.path.exists(src):
                raise RuntimeError(f"{src} is missing: run make first")
            dst = os.path.join(self.plugins, os.path.basename(so))
            if not os.path.exists(dst):
                shutil.copy(src, dst)
        me = pwd.getpwuid(os.getuid()).pw_name
        self.settings = {
            "daemon": {"state_dir": self.state, "socket": self.sock,
                       "transport_dir": self.plugins, "log_level": "info",
                       "template_dir": TEMPLATES},
            "spool": {"dir": self.spool, "settle_ms": "150",
                      "rescan": "1s", "incomplete_timeout": "30s",
                      "max_file_size": "1M", "max_packet_size": "4M"},
            "queue": {"workers": "2", "backoff_base": "200ms",
                      "backoff_max": "1s", "max_attempts": "5",
                      "job_timeout": "10s", "shutdown_grace": "2s"},
            "roles": {"admin": f"user:{me}", "operate": f"user:{me}",
                      "audit": f"user:{me}", "submit": f"user:{me}"},
            "transport local": {"dir": self.outbox},
            "transport flaky": {"dir": self.flaky_dir},
            # The sample packet's request (received 2026-11-18, under an
            # authorization) comes near its deadline as the calendar moves
            # on, and would open a deadline alert in every test: tests of
            # deadlines set their own.
            "requests": {"deadline_other": "0"},
        }
        for section, values in overrides.items():
            self.settings.setdefault(section.replace("_", " "), {}).update(values)
        self.write_conf()
        if self.as_user:
            self._install()

    def _install(self):
        """Folders as systemd-tmpfiles makes them for the roigate user."""
        open_path(self.root)
        for d in (self.root, self.state, self.spool, self.rejected,
                  self.outbox, self.flaky_dir):
            os.makedirs(d, exist_ok=True)
            os.chown(d, DAEMON_UID, DAEMON_UID)
        os.chmod(self.root, 0o755)
        os.chmod(self.state, 0o700)
        os.chmod(self.spool, 0o755)
        install_incoming(self.incoming)

    def write_conf(self):
        with open(self.conf, "w") as f:
            for section, values in self.settings.items():
                f.write(f"[{section}]\n")
                for k, v in values.items():
                    f.write(f"{k} = {v}\n")
                f.write("\n")

    # --- the daemon -------------------------------------------------------

    def start(self, env=None, wait=True):
        """Start roigated; wait for its READY=1 on NOTIFY_SOCKET."""
        assert self.proc is None
        notify_path = os.path.join(self.root, "notify.sock")
        if os.path.exists(notify_path):
            os.unlink(notify_path)
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(notify_path)
        kw = {}
        if self.as_user:
            os.chmod(notify_path, 0o666)
            kw = {"user": DAEMON_UID, "group": DAEMON_UID, "extra_groups": []}
        e = dict(os.environ)
        e.update(self.env)
        e.update(env or {})
        e["NOTIFY_SOCKET"] = notify_path
        self.logf = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [self.daemon, "-f", self.conf],
            stdout=self.logf, stderr=subprocess.STDOUT, env=e, **kw)
        if wait:
            self.wait_notify("READY=1")
        return self.proc

    def wait_notify(self, what, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"roigated never said {what}; log:\n" +
                                     self.log())
            self.notify.settimeout(min(left, 0.5))
            try:
                msg = self.notify.recv(4096).decode()
            except socket.timeout:
                if self.proc.poll() is not None:
                    raise AssertionError(
                        f"roigated exited ({self.proc.returncode}) before "
                        f"{what}; log:\n" + self.log())
                continue
            if what in msg.split("\n"):
                return msg

    def stop(self, timeout=20):
        """SIGTERM and wait: the daemon drains and exits 0."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        self._closed()
        return rc

    def kill(self):
        """kill -9: no chance to clean up (workers die with their parent)."""
        self.proc.send_signal(signal.SIGKILL)
        rc = self.proc.wait(10)
        self._closed()
        return rc

    def wait_exit(self, timeout=20):
        rc = self.proc.wait(timeout)
        self._closed()
        return rc

    def _closed(self):
        self.proc = None
        self.logf.close()
        self.notify.close()

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    # --- roictl -----------------------------------------------------------

    def open_to_others(self):
        """Let other users reach the socket, as if they were in its group
        (the folders below pytest's private tmp, and the socket itself)."""
        open_path(self.root)
        os.chmod(self.sock, 0o666)

    def roictl(self, *args, check=None, user=None, input=None):
        cmd = [os.path.join(BUILD, "roictl"), "-s", self.sock, *args]
        kw = {}
        if isinstance(user, tuple):
            # (uid, gid, [supplementary gids]): any identity, even unnamed.
            kw = {"user": user[0], "group": user[1], "extra_groups": user[2]}
        elif user is not None:
            # Run as that user with only that user's own group.
            pw = pwd.getpwnam(user)
            kw = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30,
                           input=input, **kw)
        if check is not None:
            assert r.returncode == check, (
                f"roictl {' '.join(args)}: exit {r.returncode}, want {check}\n"
                f"stdout: {r.stdout}\nstderr: {r.stderr}")
        return r

    def call(self, op, **args):
        """One request straight over the socket, as any client may send it."""
        import struct
        body = json.dumps({"v": 1, "id": 1, "op": op, **args}).encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(30)
            s.connect(self.sock)
            s.sendall(struct.pack(">I", len(body)) + body)
            n = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))[0]
            return json.loads(s.recv(n, socket.MSG_WAITALL))

    def json(self, *args):
        r = self.roictl("--json", *args, check=0)
        return json.loads(r.stdout)

    def jsonl(self, *args):
        r = self.roictl("--json", *args, check=0)
        return [json.loads(line) for line in r.stdout.splitlines() if line]

    def add_recipient(self, rid, transport="local", address=None,
                      verify=True, name=None):
        self.roictl("recipient", "add", rid, "--name", name or f"Test {rid}",
                    "--transport", transport, "--address", address or rid,
                    "--organization", "Example Clinic (synthetic)", check=0)
        if verify:
            self.roictl("recipient", "verify", rid, check=0)

    def jobs(self):
        return self.jsonl("list", "--limit", "100000")

    def job(self, job_id):
        return self.json("show", str(job_id))

    def job_by_packet(self, packet_id):
        for j in self.jobs():
            if j["packet_id"] == packet_id:
                return j
        return None

    def log_entries(self, *args):
        return self.jsonl("log", *args)

    # --- the spool --------------------------------------------------------

    def drop(self, packet, name=None):
        """Write the packet under a hidden name in incoming/ and rename it
        to its own name at once, as a careful clerk's copy script does (a
        name starting with '.' is not looked at; built inside incoming/, the
        folder gets incoming/'s default ACL)."""
        name = name or packet.packet_id
        tmp = os.path.join(self.incoming, "." + name + ".building")
        packet.write(tmp)
        os.rename(tmp, os.path.join(self.incoming, name))
        return name

    def reason(self, name):
        p = os.path.join(self.rejected, name, "REASON.txt")
        if not os.path.exists(p):
            p = os.path.join(self.rejected, name + ".REASON.txt")
        with open(p, encoding="utf-8") as f:
            return f.read()

    def rejected_names(self):
        return sorted(os.listdir(self.rejected)) if os.path.isdir(
            self.rejected) else []

    def incoming_names(self):
        return sorted(os.listdir(self.incoming))

    def flaky_deliveries(self):
        p = os.path.join(self.flaky_dir, "deliveries")
        if not os.path.exists(p):
            return []
        with open(p) as f:
            return [line.split() for line in f if line.strip()]

    def flaky_calls(self):
        """Every call of the flaky transport: (job, packet_id, attempt,
        CLOCK_MONOTONIC in seconds), as the transport itself saw it."""
        p = os.path.join(self.flaky_dir, "calls")
        if not os.path.exists(p):
            return []
        with open(p) as f:
            return [(int(j), pid, int(a), int(ms) / 1000) for j, pid, a, ms in
                    (line.split() for line in f if line.strip())]

    def instance(self):
        """The database's instance id (made with it, random)."""
        with self.db() as db:
            return db.execute("SELECT value FROM meta WHERE name = "
                              "'instance'").fetchone()[0]

    def archived(self, job_id, attempt):
        """The archive's copy of what a job's attempt sent."""
        return os.path.join(self.state, "archive",
                            f"{self.instance()}-{job_id}-{attempt}.pdf")

    def db(self):
        """A read-only look at the store, as a test's witness."""
        return sqlite3.connect(f"file:{self.state}/roigate.db?mode=ro",
                               uri=True)


GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")


def golden(name, got):
    """got equals golden/NAME; with ROIGATE_GOLDEN_UPDATE=1 it is written
    there first (then read the diff)."""
    path = os.path.join(GOLDEN, name)
    if os.environ.get("ROIGATE_GOLDEN_UPDATE"):
        with open(path, "w", encoding="utf-8") as f:
            f.write(got)
    with open(path, encoding="utf-8") as f:
        assert got == f.read(), f"{name} differs from the golden file"


def wait_for(what, predicate, timeout=20, interval=0.02):
    """Poll a condition on the daemon's observable state until it holds."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def wait_state(gw, packet_id, states, timeout=20):
    if isinstance(states, str):
        states = (states,)
    last = [None]

    def check():
        j = last[0] = gw.job_by_packet(packet_id)
        return j if j and j["state"] in states else None
    try:
        return wait_for(f"{packet_id} to reach {states}", check, timeout)
    except AssertionError as e:
        j = last[0]
        raise AssertionError(f"{e}; it is {j and j['state']}: "
                             f"{j and gw.job(j['id'])}\n--- daemon log:\n"
                             f"{gw.log()[-3000:]}") from None


def wait_rejected(gw, name, timeout=20):
    return wait_for(f"{name} in rejected/",
                    lambda: name in gw.rejected_names(), timeout)
