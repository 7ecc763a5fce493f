"""Input an administrator gives the daemon is checked when it is given:
recipient addresses in the form their transport reads, no control
characters in what reaches a cover sheet or a log, list limits of 1 or
more.  All data synthetic."""
import pytest


@pytest.mark.parametrize("args,reason", [
    (["--transport", "local", "--address", "a/b"],
     'address: "a/b" must be one plain folder name (no \'/\' or \'\\\', not '
     "starting with '.')"),
    (["--transport", "local", "--address", ".."],
     'address: ".." must be one plain folder name'),
    (["--transport", "local", "--address", ".hidden"],
     'address: ".hidden" must be one plain folder name'),
    (["--transport", "local", "--address", "desk\x7f"],
     "address: contains an invisible control character (U+007F)"),
    (["--transport", "flaky", "--address", "permfail\u0085"],
     "address: contains an invisible control character (U+0085)"),
    (["--transport", "local", "--address", "desk", "--organization",
      "Clinic\u009b"],
     "organization: contains an invisible control character (U+009B)"),
    (["--transport", "local", "--address", "desk", "--param", "note=a\x07b"],
     "params.note: contains an invisible control character (U+0007)"),
    (["--transport", "nowhere", "--address", "desk"],
     'transport "nowhere" is not configured in roigate.conf'),
])
def test_recipient_add_refuses_what_cannot_be_delivered(gw, args, reason):
    r = gw.roictl("recipient", "add", "bad-desk", "--name",
                  "Test desk (synthetic)", *args)
    assert r.returncode == 65, r
    assert reason in r.stderr, r.stderr
    assert gw.call("recipient-show", recipient="bad-desk")["code"] == "not_found"


def test_recipient_name_must_be_printable(gw):
    r = gw.roictl("recipient", "add", "bad-desk", "--name", "Desk\x1b[2J",
                  "--transport", "local", "--address", "desk")
    assert r.returncode == 65, r
    assert "name: contains an invisible control character (U+001B)" in r.stderr
    reply = gw.call("recipient-add", recipient="bad-desk", name="   ",
                    transport="local", address="desk")
    assert reply["code"] == "bad_request"
    assert "name: must not be empty" in reply["error"]


def test_good_recipient_is_added(gw):
    gw.roictl("recipient", "add", "good-desk", "--name", "Zoë's desk (synthetic)",
              "--transport", "local", "--address", "good-desk", check=0)
    assert gw.json("recipient", "show", "good-desk")["address"] == "good-desk"


@pytest.mark.parametrize("n", ["0", "-3", "x", "2x", ""])
def test_list_limit_below_one_is_refused(gw, n):
    r = gw.roictl("list", "--limit", n)
    assert r.returncode == 64, r
    assert "--limit" in r.stderr and "1 or more" in r.stderr


@pytest.mark.parametrize("op", ["list", "audit"])
@pytest.mark.parametrize("n", [0, -1, "5", 1.5])
def test_daemon_refuses_a_limit_below_one(gw, op, n):
    reply = gw.call(op, limit=n)
    assert reply["code"] == "bad_request"
    assert reply["error"] == "limit: must be a whole number, 1 or more"
    assert "jobs" in gw.call("list", limit=1)["result"]
