"""The Debian packages (`make deb`, in $ROIGATE_DEB_DIR) installed on this
machine with dpkg -i, as an administrator would, checked, and purged.

Run by `make check-package` (the last step of `make check`) as root on a
throwaway machine: CI, or this container.  Without systemd as PID 1 the
package's scripts must still succeed (the unit is enabled, not started).
The daemon is then started by hand as the package set it up, answers
`roictl status`, and the purge removes everything but what holds evidence
(the state folder once it has a database) and the user, as policy allows."""
import glob
import grp
import os
import pwd
import re
import shutil
import subprocess
import time

import pytest

DEB_DIR = os.environ.get("ROIGATE_DEB_DIR", "")
TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PACKAGES = ["roigate", "libroigate1", "libroigate-dev"]
MAX_EXPOSURE = 2.0

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not glob.glob(f"{DEB_DIR}/roigate_*.deb"),
                                reason="needs root and the packages (make check-package)")


def run(*cmd, check=True, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    if check:
        assert r.returncode == 0, f"{' '.join(cmd)}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def debs():
    return sorted(f for p in PACKAGES for f in glob.glob(f"{DEB_DIR}/{p}_*.deb"))


def installed(pkg):
    r = run("dpkg-query", "-W", "-f=${Status}", pkg, check=False)
    return "install ok installed" in r.stdout


def purge():
    return run("dpkg", "--purge", *PACKAGES)


@pytest.fixture(scope="module")
def package():
    """Installed for the module's tests, purged after (also on failure)."""
    for pkg in PACKAGES:
        assert not installed(pkg), f"{pkg} is installed already: not touching it"
    for path in ["/etc/roigate", "/var/lib/roigate", "/var/spool/roigate", "/usr/sbin/roigated"]:
        assert not os.path.exists(path), f"{path} exists: this machine has a roigate already"
    r = run("dpkg", "-i", *debs())
    yield r
    if any(installed(p) for p in PACKAGES):
        purge()
    shutil.rmtree("/var/lib/roigate", ignore_errors=True)
    shutil.rmtree("/run/roigate", ignore_errors=True)


def test_install_makes_the_user_and_group(package):
    pw = pwd.getpwnam("roigate")
    assert pw.pw_uid < 1000 and pw.pw_dir == "/var/lib/roigate"
    assert pw.pw_shell in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false")
    assert grp.getgrgid(pw.pw_gid).gr_name == "roigate"


def _owner_mode(path):
    st = os.stat(path)
    return pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name, st.st_mode & 0o7777


def test_install_makes_the_folders_for_clerks(package):
    assert _owner_mode("/var/spool/roigate/incoming") == ("roigate", "roigate", 0o2770)
    assert _owner_mode("/var/spool/roigate/rejected") == ("roigate", "roigate", 0o2750)
    assert _owner_mode("/var/lib/roigate") == ("roigate", "roigate", 0o750)
    acl = run("getfacl", "-p", "/var/spool/roigate/incoming").stdout
    for entry in ["default:user:roigate:rwx", "default:group:roigate:rwx", "default:mask::rwx"]:
        assert entry in acl.splitlines(), f"incoming/ lacks {entry}:\n{acl}"


def test_config_is_a_conffile_the_daemon_can_read(package):
    conffiles = run("dpkg-query", "-W", "-f=${Conffiles}", "roigate").stdout
    assert "/etc/roigate/roigate.conf" in conffiles
    assert _owner_mode("/etc/roigate/roigate.conf") == ("root", "root", 0o644)
    # The unit's ExecStartPre, as its user: the installed configuration,
    # plugins and templates are good.
    run("runuser", "-u", "roigate", "--", "/usr/sbin/roigated", "-n", "-f",
        "/etc/roigate/roigate.conf")
    run("/usr/sbin/roigated", "-n")


def test_unit_is_installed_with_its_paths_enabled_and_hardened(package):
    unit = "/lib/systemd/system/roigated.service"
    with open(unit) as f:
        text = f.read()
    assert "ExecStart=/usr/sbin/roigated -f /etc/roigate/roigate.conf" in text
    assert not re.findall(r"@[A-Z]+@", text), "placeholders left"
    assert os.path.islink("/etc/systemd/system/multi-user.target.wants/roigated.service")
    r = run("systemd-analyze", "security", "--offline=yes",
            f"--threshold={int(MAX_EXPOSURE * 10)}", unit, check=False)
    m = re.search(r"Overall exposure level for \S+: ([\d.]+)", r.stdout)
    assert m and r.returncode == 0, r.stdout[-2000:] + r.stderr
    print(f"systemd-analyze security: {m.group(1)}")


def test_man_pages_and_completion_are_installed(package):
    for page in ["roigated", "roictl", "roigate-render", "roigate.conf", "roigate-manifest"]:
        path = run("man", "-w", page).stdout.strip()
        assert path.startswith("/usr/share/man/"), path
        r = run("man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", path)
        assert not r.stderr, f"{page}: {r.stderr}"
    assert os.path.exists("/usr/share/bash-completion/completions/roictl")


def test_client_library_builds_a_program(package, tmp_path):
    flags = run("pkg-config", "--cflags", "--libs", "roigate").stdout.split()
    exe = str(tmp_path / "submit")
    run("cc", "-o", exe, os.path.join(TOP, "examples", "submit.c"), *flags)
    assert "libroigate.so.1 =>" in run("ldd", exe).stdout


def test_installed_daemon_runs_as_its_user_and_answers(package):
    """What systemd would do (RuntimeDirectory=roigate, User=roigate),
    by hand: the daemon starts on the installed configuration and the
    folders the package made, and roictl reaches it."""
    os.makedirs("/run/roigate", exist_ok=True)
    shutil.chown("/run/roigate", "roigate", "roigate")
    d = subprocess.Popen(["/usr/sbin/roigated"], user="roigate", group="roigate",
                         extra_groups=[], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists("/run/roigate/roigate.sock"):
            assert d.poll() is None, "roigated exited:\n" + d.stdout.read()
            assert time.monotonic() < deadline, "no socket after 20 s"
            time.sleep(0.1)
        r = run("roictl", "status")
        assert "Jobs by state" in r.stdout
    finally:
        d.terminate()
        assert d.wait(30) == 0
    assert os.path.exists("/var/lib/roigate/roigate.db")


def test_purge_leaves_only_evidence_and_the_user(package):
    r = purge()
    for path in ["/usr/sbin/roigated", "/usr/bin/roictl", "/etc/roigate",
                 "/lib/systemd/system/roigated.service",
                 "/etc/systemd/system/multi-user.target.wants/roigated.service",
                 "/usr/lib/roigate", "/usr/share/roigate", "/usr/share/doc/roigate",
                 "/usr/lib/tmpfiles.d/roigate.conf", "/usr/lib/sysusers.d/roigate.conf",
                 "/var/spool/roigate", "/run/roigate"]:
        assert not os.path.lexists(path), f"{path} is left after purge"
    # The daemon made a database above: the disclosure log is evidence and
    # stays, said so.
    assert os.path.exists("/var/lib/roigate/roigate.db")
    assert "/var/lib/roigate holds the disclosure log" in r.stderr
    pwd.getpwnam("roigate")     # policy: the user may own files left behind


def test_purge_of_a_gateway_that_never_ran_leaves_nothing(package):
    """Installed again on a clean machine (the kept state folder of the
    test above archived away) and purged at once."""
    shutil.rmtree("/var/lib/roigate")
    run("dpkg", "-i", *debs())
    r = purge()
    for path in ["/var/lib/roigate", "/var/spool/roigate", "/etc/roigate"]:
        assert not os.path.lexists(path), f"{path} is left after purge:\n{r.stderr}"
