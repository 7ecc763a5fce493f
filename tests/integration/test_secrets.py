"""Credential files (the fax API secret, the SMTP password, the signing key,
the SSH key) are read as secrets: opened without following a symbolic link
and judged on the descriptor that is read.  A symlinked or loose one is
refused at `roigated -n` (and so at start) with a plain reason."""
import os
import subprocess

import pytest

from gateway import BUILD, Gateway
from pki import PKI


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return PKI(str(tmp_path_factory.mktemp("pki")))


def secret(folder, name, data, mode=0o600):
    path = os.path.join(folder, name)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    return path


def ssh_key(folder):
    path = os.path.join(folder, "id_ed25519")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path],
                   check=True)
    return path


def check(tmp_path, section, values):
    gw = Gateway(str(tmp_path / "gw"))
    gw.settings[f"transport {section}"] = values
    gw.write_conf()
    return subprocess.run([os.path.join(BUILD, "roigated"), "-n", "-f", gw.conf],
                          capture_output=True, text=True, timeout=30)


def configs(tmp_path, pki):
    """Per transport: its settings, and the key that names the secret."""
    d = str(tmp_path)
    fax = secret(d, "fax-credentials", b"synthetic-key:synthetic-secret\n")
    auth = secret(d, "smtp-auth", b"roigate:synthetic-secret-2\n")
    with open(pki.gateway[1], "rb") as f:
        key = secret(d, "signing.key", f.read())
    return {
        "faxapi": ({"base_url": "https://127.0.0.1:9/v2.1",
                    "credentials": fax, "organization": "Example HIM"},
                   "credentials"),
        "smime-key": ({"relay": "smtp://127.0.0.1:25", "ca_file": pki.ca.pem,
                       "from": "roi@hospital.test", "cert": pki.gateway[0],
                       "key": key}, "key"),
        "smime-auth": ({"relay": "smtp://127.0.0.1:25", "ca_file": pki.ca.pem,
                        "from": "roi@hospital.test", "cert": pki.gateway[0],
                        "key": key, "auth_file": auth}, "auth_file"),
        "sftp": ({"identity": ssh_key(d)}, "identity"),
    }


CASES = ["faxapi", "smime-key", "smime-auth", "sftp"]


@pytest.mark.parametrize("case", CASES)
def test_a_private_secret_is_accepted(tmp_path, pki, case):
    values, _ = configs(tmp_path, pki)[case]
    r = check(tmp_path, case.split("-")[0], values)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("case", CASES)
def test_a_symlinked_secret_is_refused(tmp_path, pki, case):
    values, key = configs(tmp_path, pki)[case]
    link = str(tmp_path / "link-to-secret")
    os.symlink(values[key], link)
    values = dict(values, **{key: link})
    r = check(tmp_path, case.split("-")[0], values)
    assert r.returncode == 1
    assert f"{key} {link} is a symbolic link; name the file itself" in r.stderr


@pytest.mark.parametrize("case", CASES)
def test_a_world_readable_secret_is_refused(tmp_path, pki, case):
    values, key = configs(tmp_path, pki)[case]
    os.chmod(values[key], 0o644)
    r = check(tmp_path, case.split("-")[0], values)
    assert r.returncode == 1
    assert f"{key} {values[key]} has mode 0644: others may read the" in r.stderr
    assert f"run chmod 600 {values[key]}" in r.stderr


def test_a_secret_of_another_user_is_refused(tmp_path, pki):
    values, key = configs(tmp_path, pki)["faxapi"]
    os.chown(values[key], 4321, 4321)
    r = check(tmp_path, "faxapi", values)
    assert r.returncode == 1
    assert "belongs to uid 4321, not to the daemon's user" in r.stderr


def test_a_fifo_in_place_of_a_secret_does_not_hang(tmp_path, pki):
    values, key = configs(tmp_path, pki)["faxapi"]
    os.unlink(values[key])
    os.mkfifo(values[key], 0o600)
    r = check(tmp_path, "faxapi", values)
    assert r.returncode == 1
    assert "is not a regular file" in r.stderr
