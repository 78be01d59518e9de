"""The one wait and the member lookups of installer/replset/connection.py, on data (no server)."""

import time

import pytest

from installer import spec as specmod
from installer.errors import DbrsError, InputError
from installer.replset import connection

from ..conftest import PSA

SPEC = specmod.loads(PSA)


class Heard:
    """A reporter with `wait`, as cli.common.Reporter: records (text, elapsed, limit, key)."""

    def __init__(self):
        self.lines = []

    def wait(self, text, elapsed, limit, key=None):
        self.lines.append((text, elapsed, limit, key))


def test_wait_until_returns_what_the_probe_found_and_tells_each_miss():
    answers = iter([None, None, "primary"])
    heard = Heard()
    got = connection.wait_until(time.monotonic() + 5, lambda: next(answers),
                                lambda final: ("waiting for mongod1", "k"), limit=5, progress=heard, poll_s=0.01)
    assert got == "primary"
    assert [(t, lim, k) for t, _, lim, k in heard.lines] == [("waiting for mongod1", 5, "k")] * 2
    assert all(0 <= e < 5 for _, e, _, _ in heard.lines)


def test_wait_until_raises_the_final_description_at_the_deadline_and_keeps_polling_until_then():
    polls = []
    started = time.monotonic()
    with pytest.raises(DbrsError) as e:
        connection.wait_until(started + 0.2, lambda: polls.append(1), lambda final: "gone" if final else "waiting",
                              poll_s=0.02)
    assert str(e.value) == "gone" and "\n" not in str(e.value)
    assert time.monotonic() - started >= 0.2 and len(polls) >= 3


@pytest.mark.parametrize("tell_last,lines", [(True, 2), (False, 1)])
def test_the_poll_that_hits_the_deadline_is_told_only_when_asked(tell_last, lines):
    """bootstrap's member wait tells its last poll before failing; the health and catch-up waits did not."""
    clock = iter([0.0, 0.0, 10.0])
    heard = []
    probes = iter([None, None])
    real = time.monotonic
    try:
        time.monotonic = lambda: next(clock)
        with pytest.raises(DbrsError, match="^late$"):
            connection.wait_until(1.0, lambda: next(probes), lambda final: "late" if final else "waiting",
                                  progress=heard.append, poll_s=0.0, tell_last=tell_last)
    finally:
        time.monotonic = real
    assert heard[:1] == ["waiting [0/1 s]"] and len(heard) == lines


def test_the_local_member_is_reached_on_loopback_the_others_on_their_host():
    m1, m2, _ = SPEC.members
    assert connection.host_of(m1, local=m1) == "127.0.0.1"
    assert connection.host_of(m2, local=m1) == "10.0.0.12"
    assert connection.host_of(m2) == "10.0.0.12"


def test_members_are_found_by_address_and_by_name():
    assert connection.member_at(SPEC, "10.0.0.12:27017").name == "mongod2"
    assert connection.member_at(SPEC, "10.0.0.99:27017") is None
    assert connection.lookup(SPEC, "mongod1").address == "10.0.0.11:27017"
    with pytest.raises(InputError) as e:
        connection.lookup(SPEC, "mongod9")
    assert "mongod9" in str(e.value) and ", ".join(SPEC.names()) in str(e.value)


@pytest.mark.parametrize("code,words", [(18, "authentication failed: the password in secrets.toml"),
                                        (13, "not authorized (no role xxx"),
                                        (10107, "not PRIMARY any more")])
def test_a_server_error_becomes_one_line_naming_member_command_and_cause(code, words):
    """replset, backup, oplog, restore and `dbrs user` all translate through this one path."""
    from pymongo.errors import OperationFailure

    with pytest.raises(DbrsError) as e, connection.talking("mongod2 (127.0.0.1:27018) as backup", "replSetGetStatus"):
        raise OperationFailure("no role\n" + "x" * 5000, code, {"ok": 0, "errmsg": "no role\n" + "x" * 5000,
                                                                "code": code})
    text = str(e.value)
    assert text.startswith("mongod2 (127.0.0.1:27018) as backup: replSetGetStatus failed: ") and words in text
    assert "\n" not in text and len(text) < 600


def test_talking_leaves_other_errors_alone():
    with pytest.raises(KeyError), connection.talking("mongod1", "ping"):
        raise KeyError("not a driver error")
