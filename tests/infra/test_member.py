"""Every dbrs member host, whatever its role: units, file modes, listeners, firewall, Mongo Express.

The checks live in checks.py so the tier-3 test bed can call them on its
nspawn hosts (`checks.check_member(h.testinfra())`); here they run once per
`--hosts` entry (Vagrant VMs, real hosts). They hold on stand-ins and real
mongod alike; replica-set states are in test_replset_real.py (real_mongod).
"""

from . import checks


def test_units_enabled_and_running(host):
    checks.check_units(host, checks.local_members(host))


def test_secret_and_data_modes(host):
    checks.check_modes(host, checks.local_members(host))


def test_mongod_listens_on_its_address_and_loopback(host):
    checks.check_listening(host, checks.local_members(host))


def test_firewall_table_guards_the_ports(host):
    checks.check_firewall(host, checks.local_members(host))


def test_mongo_express_only_where_wanted(host):
    spec = checks.spec(host)
    checks.check_mongo_express(host, spec, checks.local_members(host, spec))


def test_sysctls_apply_to_the_host_without_a_reboot(host):
    checks.check_sysctls(host)
