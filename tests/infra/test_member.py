"""Every dbrs member host, whatever its role: units, file modes, listeners, firewall, Mongo Express.

The checks live in checks.py so the tier-3 test bed can call them on its
nspawn hosts (`checks.check_member(h.testinfra())`); here they run once per
`--hosts` entry (Vagrant VMs, real hosts). They hold on stand-ins and real
mongod alike; replica-set states are in test_replset_real.py (real_mongod).
"""

import pytest

from . import checks


@pytest.fixture
def members(host):
    """This host's members; a host that holds none fails here instead of passing every check vacuously."""
    found = checks.local_members(host)
    assert found, "no member of /etc/dbrs/cluster.toml lives on this host"
    return found


def test_units_enabled_and_running(host, members):
    checks.check_units(host, members)


def test_secret_and_data_modes(host, members):
    checks.check_modes(host, members)


def test_mongod_listens_on_its_address_and_loopback(host, members):
    checks.check_listening(host, members)


def test_firewall_table_guards_the_ports(host, members):
    checks.check_firewall(host, members)


def test_mongo_express_only_where_wanted(host):
    spec = checks.spec(host)
    checks.check_mongo_express(host, spec, checks.local_members(host, spec))


def test_sysctls_apply_to_the_host_without_a_reboot(host):
    checks.check_sysctls(host)
