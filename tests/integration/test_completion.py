"""bash completion for roictl (completion/roictl.bash): commands and
options as src/roictl.c has them (a new one fails here, named, until the
completion offers it), and job and recipient ids asked of a running daemon."""
import os
import subprocess

import pytest

import srcinfo
from gateway import BUILD, Packet, wait_state
from srcinfo import TOP

COMPLETION = os.path.join(TOP, "completion", "roictl.bash")


def complete(line, roictl=None):
    """COMPREPLY for the command line typed so far (the cursor at its end)."""
    words = line.split(" ")
    words[0] = roictl or os.path.join(BUILD, "roictl")
    script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); '
              'COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; _roictl; '
              'printf "%s\\n" "${COMPREPLY[@]}"')
    r = subprocess.run(["bash", "-c", script, "bash", COMPLETION, *words],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return [w for w in r.stdout.splitlines() if w]


def test_the_script_is_registered_for_roictl():
    r = subprocess.run(["bash", "-c", 'source "$1"; complete -p roictl', "bash", COMPLETION],
                       capture_output=True, text=True)
    assert r.stdout.strip() == "complete -F _roictl roictl", r.stdout + r.stderr


def test_every_command_is_offered():
    offered = set(complete("roictl "))
    missing = [c for c, _, _ in srcinfo.roictl_commands() if c not in offered]
    assert not missing, "completion/roictl.bash does not offer commands: " + ", ".join(missing)
    assert set(complete("roictl re")) == {"release", "retry", "recipient",
                                         "report", "requests"}


def test_every_global_option_is_offered():
    longs, shorts = srcinfo.roictl_global_options()
    offered = set(complete("roictl -"))
    missing = [f"--{o}" for o in longs if f"--{o}" not in offered]
    missing += [f"-{c}" for c in shorts if f"-{c}" not in offered]
    assert not missing, "completion/roictl.bash does not offer: " + ", ".join(missing)


def test_every_option_of_every_command_is_offered():
    missing = []
    for cmd, subs, opts in srcinfo.roictl_commands():
        offered = set(complete(f"roictl {cmd} -")) if opts else set()
        missing += [f"roictl {cmd} --{o}" for o in sorted(opts) if f"--{o}" not in offered]
        if subs:
            offered_subs = set(complete(f"roictl {cmd} "))
            missing += [f"roictl {cmd} {s}" for s in subs if s not in offered_subs]
        for sub, sopts in subs.items():
            arg = "ID " if sub != "list" else ""
            offered = set(complete(f"roictl {cmd} {sub} {arg}-"))
            missing += [f"roictl {cmd} {sub} --{o}" for o in sorted(sopts)
                        if f"--{o}" not in offered]
    assert not missing, "completion/roictl.bash does not offer: " + ", ".join(missing)


def test_list_state_offers_every_job_state():
    offered = complete("roictl list --state ")
    assert offered == srcinfo.job_states() or set(offered) == set(srcinfo.job_states()), \
        f"completion offers {offered}, store.c has {srcinfo.job_states()}"


def test_submit_completes_folders(tmp_path):
    (tmp_path / "ROI-C-1").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    assert complete(f"roictl submit {tmp_path}/") == [f"{tmp_path}/ROI-C-1"]


def test_ids_come_from_the_daemon(gw):
    gw.add_recipient("billing-office")
    p = Packet("ROI-COMPLETE-1")
    gw.drop(p)
    job = wait_state(gw, p.packet_id, "delivered")["id"]
    sock = f"roictl -s {gw.sock}"
    assert complete(f"{sock} show ") == [str(job)]
    assert str(job) in complete(f"{sock} --json retry ")
    assert complete(f"{sock} log --job ") == [str(job)]
    assert sorted(complete(f"{sock} recipient show ")) == ["billing-office", "records-desk"]
    assert complete(f"{sock} recipient verify bi") == ["billing-office"]
    assert sorted(complete(f"{sock} log --recipient ")) == ["billing-office", "records-desk"]


def test_no_daemon_no_ids_and_no_noise(tmp_path):
    assert complete(f"roictl -s {tmp_path}/none.sock show ") == []
    assert complete(f"roictl --socket {tmp_path}/none.sock recipient show ") == []
