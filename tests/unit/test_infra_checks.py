"""The host checks shared by the hosts and Vagrant tiers must fail when there is nothing to check.

A check that loops over an empty member list passes on a host that runs no
mongod at all; these feed the checks a fake host and expect red.
"""

from types import SimpleNamespace

import pytest

from tests.infra import checks

RULESET = """table inet dbrs {
\tchain input {
\t\ttcp dport { 27017, 27018 } jump mongod
\t}
\tchain mongod {
\t\tip saddr 10.0.0.0/24 accept
\t\tcounter drop
\t}
}
"""


class FakeHost:
    """Just enough of testinfra's Host: root, an nft listing, and the sockets that listen."""

    def __init__(self, listening=(), ruleset=RULESET):
        self.listening, self.ruleset = set(listening), ruleset

    def user(self):
        return SimpleNamespace(name="root")

    def run(self, command):
        assert command == "nft list table inet dbrs"
        return SimpleNamespace(rc=0, stdout=self.ruleset, stderr="")

    def socket(self, spec):
        return SimpleNamespace(is_listening=spec in self.listening)


MEMBER = {"name": "mongod1", "host": "10.0.0.11", "port": 27017, "role": "primary"}


@pytest.mark.parametrize("check", [checks.check_listening, checks.check_firewall])
def test_no_member_on_the_host_is_a_failure(check):
    with pytest.raises(AssertionError, match="no member of /etc/dbrs/cluster.toml lives on this host"):
        check(FakeHost(listening={"tcp://10.0.0.11:27017", "tcp://127.0.0.1:27017"}), [])


def test_listening_passes_only_when_both_addresses_listen():
    checks.check_listening(FakeHost({"tcp://10.0.0.11:27017", "tcp://127.0.0.1:27017"}), [MEMBER])
    with pytest.raises(AssertionError, match="not listening on 127.0.0.1:27017"):
        checks.check_listening(FakeHost({"tcp://10.0.0.11:27017"}), [MEMBER])


def test_firewall_fails_for_an_unguarded_port():
    checks.check_firewall(FakeHost(), [MEMBER])
    with pytest.raises(AssertionError, match="does not guard port 27019"):
        checks.check_firewall(FakeHost(), [{**MEMBER, "port": 27019}])
