"""A real OpenSSH sshd for the SFTP transport's tests: its own host key,
an SFTP-only account ("nobody", key authentication only), on 127.0.0.1."""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time

from gateway import open_path

SSHD = "/usr/sbin/sshd"
USER = "nobody"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def keygen(path, comment="roigate-test"):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment,
                    "-f", path], check=True)
    os.chmod(path, 0o600)
    return path


def fingerprint(pubkey_path):
    out = subprocess.run(["ssh-keygen", "-lf", pubkey_path], check=True,
                         capture_output=True, text=True).stdout
    return out.split()[1]          # "256 SHA256:... comment (ED25519)"


def descendants(pid):
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


class Sshd:
    def __init__(self, root):
        if not os.access(SSHD, os.X_OK):
            raise AssertionError(f"{SSHD} is missing: run scripts/install-deps")
        self.root = root
        os.makedirs(root, exist_ok=True)
        self.port = free_port()
        self.host_key = keygen(os.path.join(root, "ssh_host_ed25519_key"),
                               "test-sshd")
        self.fingerprint = fingerprint(self.host_key + ".pub")
        # The gateway's key, and the account's authorized_keys.
        self.client_key = keygen(os.path.join(root, "roigate_id"))
        self.keys = os.path.join(root, "authorized_keys")
        os.makedirs(self.keys)
        self.authorize(self.client_key + ".pub")
        # Folders on the "server": one the account may write, one it may not.
        nobody = pwd.getpwnam(USER)
        self.inbox = os.path.join(root, "files", "in")
        self.readonly = os.path.join(root, "files", "readonly")
        os.makedirs(self.inbox)
        os.makedirs(self.readonly)
        os.chown(self.inbox, nobody.pw_uid, nobody.pw_gid)
        os.chmod(self.readonly, 0o755)
        open_path(self.inbox)
        self.conf = os.path.join(root, "sshd_config")
        with open(self.conf, "w") as f:
            f.write(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {self.host_key}
PidFile {root}/sshd.pid
AuthorizedKeysFile {self.keys}/%u
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
PermitRootLogin no
AllowUsers {USER}
Subsystem sftp internal-sftp
ForceCommand internal-sftp
LogLevel VERBOSE
""")
        os.makedirs("/run/sshd", exist_ok=True)   # privilege separation
        self.proc = None
        self.log = open(os.path.join(root, "sshd.log"), "a")

    def new_host_key(self):
        """The server gets a new host key (a reinstall, or an impostor)."""
        for f in (self.host_key, self.host_key + ".pub"):
            os.unlink(f)
        keygen(self.host_key, "test-sshd-new")
        self.fingerprint = fingerprint(self.host_key + ".pub")

    def authorize(self, pubkey_path):
        shutil.copy(pubkey_path, os.path.join(self.keys, USER))
        os.chmod(os.path.join(self.keys, USER), 0o644)

    def start(self):
        subprocess.run([SSHD, "-t", "-f", self.conf], check=True)
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", self.conf],
                                     stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        # Ready when it answers with its banner.
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 1) as s:
                    if s.recv(100).startswith(b"SSH-2.0-"):
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("sshd did not start; see " + self.root +
                                     "/sshd.log")
            time.sleep(0.02)

    def kill(self):
        """Stop sshd and every session it runs, at once (SIGKILL)."""
        if self.proc is None:
            return
        # Each connection's sshd starts a session of its own (setsid), so
        # a process group is not enough: kill the whole family tree.
        for pid in [self.proc.pid] + descendants(self.proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)
        self.proc = None

    def address(self, folder=None, port=None):
        return (f"sftp://{USER}@127.0.0.1:{port or self.port}"
                f"{folder or self.inbox}")


class ThrottleProxy:
    """A TCP relay that forwards at most `rate` bytes a second towards the
    server, so that a test can stop sshd in the middle of an upload; or,
    once `silent` is set, accepts connections and never says a word."""

    def __init__(self, target_port, rate):
        self.target = target_port
        self.rate = rate
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.silent = False     # accept connections, then never answer
        self.held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if self.silent:
                self.held.append(c)
                continue
            try:
                s = socket.create_connection(("127.0.0.1", self.target), 5)
            except OSError:
                c.close()
                continue
            threading.Thread(target=self._pipe, args=(c, s, self.rate),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(s, c, None),
                             daemon=True).start()

    @staticmethod
    def _pipe(src, dst, rate):
        try:
            while True:
                data = src.recv(16384)
                if not data:
                    break
                dst.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)   # the throttle itself
        except OSError:
            pass
        for x in (src, dst):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            x.close()

    def close(self):
        self.stop.set()
        self.sock.close()
