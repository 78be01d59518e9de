"""Tier 3: the firewall fails closed on a real systemd host (attack findings #1, #2, #14), and the
secret guards see the host's running members (#4).

One host with the single-host default (three members, ports 27017-27019) and an outsider. What only
real systemd and nftables can show: mongod loads its table before it starts, Debian's nftables.service
(whose /etc/nftables.conf flushes the whole ruleset) no longer leaves the mongod ports open after its
restart, reload or stop+start, a stop with the table already gone is no failure, and a re-run of
dbrs-install reloads a table `nft flush ruleset` removed.
"""

from __future__ import annotations

import re
import time

import pytest

from . import product
from .testbed import Testbed, TestbedError, cleanup_stale

pytestmark = pytest.mark.hosts

NET = {"fw": "10.77.0.50", "out": "10.77.0.51"}


@pytest.fixture(scope="module")
def host():
    cleanup_stale()
    try:
        root = product.member_rootfs()
    except (TestbedError, OSError) as e:
        pytest.skip(f"tier-3 member rootfs cannot be built: {e}")
    wheels = product.wheelhouse()
    tb = Testbed(rootfs=root)
    try:
        hosts = tb.boot(NET)
        product.install_product(hosts["fw"], wheels, "8.0", NET)
        r = hosts["fw"].run(["dbrs-install", "--no-packages"], check=False, timeout=300)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        yield hosts["fw"], hosts["out"]
    finally:
        tb.close()


def _loaded(h):
    return h.run("nft list table inet dbrs", check=False).returncode == 0


def _comes_back(h, timeout=10):
    """systemctl returns when nftables.service's job is done; ours, ordered After= it, follows a moment later."""
    deadline = time.monotonic() + timeout
    while not _loaded(h):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _dropped(out, ip, port=27017):
    """The outsider's connection times out (dropped by the table) instead of being refused at once."""
    t = time.monotonic()
    r = out.run(["nc", "-z", "-w", "2", ip, str(port)], check=False, timeout=15)
    return r.returncode != 0 and time.monotonic() - t >= 1.5


def test_nftables_service_restart_reload_stop_start_keep_the_table(host):
    h, out = host
    assert _loaded(h) and _dropped(out, NET["fw"])
    h.run("systemctl restart nftables.service")
    assert _comes_back(h), "restart of nftables.service left the mongod ports unguarded"
    h.run("systemctl reload nftables.service")
    assert _comes_back(h), "reload of nftables.service left the mongod ports unguarded"
    h.run("systemctl stop nftables.service; systemctl start nftables.service")
    assert _comes_back(h), "stop+start of nftables.service left the mongod ports unguarded"
    assert _dropped(out, NET["fw"])


def test_stop_with_table_gone_is_no_failure(host):
    h, _ = host
    h.run("nft delete table inet dbrs")
    r = h.run("systemctl restart dbrs-firewall.service", check=False)
    assert r.returncode == 0
    assert h.run("systemctl is-failed dbrs-firewall.service", check=False).stdout.strip() != "failed"
    never_ran = h.run("systemctl show -p InactiveExitTimestampMonotonic --value "
                      "dbrs-alert@dbrs-firewall.service.service").stdout.strip()
    assert never_ran == "0", "the restart raised a failure alert"
    assert _loaded(h)


def test_mongod_never_starts_without_its_table(host):
    h, out = host
    h.run("systemctl stop dbrs-firewall.service")
    assert not _loaded(h)
    h.run("systemctl restart dbrs-mongod@mongod1.service")
    assert _loaded(h), "mongod started without loading the firewall table"
    assert _dropped(out, NET["fw"])
    # a ruleset nft refuses keeps mongod down: fail closed
    h.run("cp /etc/dbrs/firewall.nft /root/fw.good && echo 'garbage here' >> /etc/dbrs/firewall.nft && nft flush ruleset")
    r = h.run("systemctl restart dbrs-mongod@mongod1.service", check=False)
    assert r.returncode != 0
    assert h.run("systemctl is-active dbrs-mongod@mongod1.service", check=False).stdout.strip() != "active"
    h.run("cp /root/fw.good /etc/dbrs/firewall.nft")
    # Restart=on-failure retries every 5 s; with a good file its ExecStartPre loads the table again
    deadline = time.monotonic() + 30
    while h.run("systemctl is-active dbrs-mongod@mongod1.service", check=False).stdout.strip() != "active":
        assert time.monotonic() < deadline, "mongod1 did not come back once the ruleset was good again"
        time.sleep(1)
    assert _loaded(h)


def test_reinstall_reloads_a_flushed_table(host):
    h, _ = host
    h.run("nft flush ruleset")
    first = h.run(["dbrs-install", "--no-packages"], timeout=300).stdout
    assert re.search(r"^changed\s+firewall table inet dbrs \(not loaded\)$", first, re.M), first
    assert _loaded(h)
    again = h.run(["dbrs-install", "--no-packages"], timeout=300).stdout
    assert re.search(r"^0 changed, \d+ unchanged$", again, re.M), again
    assert h.run("systemctl is-active dbrs-mongod@mongod1.service").stdout.strip() == "active"


def test_secrets_of_running_members_are_not_replaced(host):
    """`init --force` and a bundle of another cluster are refused while dbrs-mongod@ runs here (exit 2)."""
    h, _ = host
    keyfile = h.read_file("/etc/dbrs/keyfile")
    h.write_file("/root/other.pass", "another cluster's passphrase\n", 0o600)
    r = h.run(["dbrs", "init", "--force", "--passphrase-file", "/root/other.pass"], check=False)
    assert r.returncode == 2 and "running on this host" in r.stderr, r.stderr
    assert h.read_file("/etc/dbrs/keyfile") == keyfile
    h.run(["dbrs", "init", "--root", "/root/other", "--passphrase-file", "/root/other.pass"])
    r = h.run(["dbrs-install", "--no-packages", "--bundle", "/root/other/etc/dbrs/bundle.dbrs",
               "--passphrase-file", "/root/other.pass"], check=False, timeout=300)
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    assert "another cluster or a re-initialised one" in r.stderr and "--replace-secrets" in r.stderr
    assert h.read_file("/etc/dbrs/keyfile") == keyfile
