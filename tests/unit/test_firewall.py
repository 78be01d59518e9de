"""The nftables ruleset: syntax checked by nft itself, and what it lets through."""

import re
import shutil
import subprocess

import pytest

from installer import spec as specmod
from installer.host import firewall
from installer.errors import DbrsError

from ..conftest import PSA, ROOT_ONLY
from ..infra import checks as infra_checks

SPEC = specmod.loads(PSA.replace('["10.0.0.0/24"]', '["192.168.7.0/24", "2001:db8::/48"]'))


def render(addresses=None, members=None):
    addresses = addresses or {m.host: (m.host,) for m in SPEC.members}
    return firewall.ruleset(SPEC, members or SPEC.members[:1], addresses).decode()


def test_members_and_allow_networks_accepted():
    text = render()
    assert "elements = { 10.0.0.11, 10.0.0.12, 10.0.0.13 }" in text
    assert "elements = { 192.168.7.0/24 }" in text
    assert "elements = { 2001:db8::/48 }" in text
    assert "tcp dport { 27017 } jump mongod" in text
    assert re.search(r'counter drop comment "mongod ports: not a member, not in allow \(dbrs ruleset [0-9a-f]{16}\)"\n\t}\n}$',
                     text.rstrip())


def test_resolved_hostnames_used():
    addresses = {"10.0.0.11": ("10.0.0.11",), "10.0.0.12": ("10.0.0.12", "fd00::12"), "10.0.0.13": ("10.0.0.13",)}
    assert "ip6 saddr @members6 accept" in render(addresses)


def test_unresolvable_member_is_an_error():
    spec = specmod.loads(PSA.replace('host = "10.0.0.12"', 'host = "db2.invalid"'))
    with pytest.raises(DbrsError, match="db2.invalid") as e:
        firewall.ruleset(spec, spec.members[:1], {})
    assert e.value.exit_code == 2 and e.value.field == "members[1].host"


@ROOT_ONLY
@pytest.mark.skipif(shutil.which("nft") is None, reason="nft not installed")
@pytest.mark.parametrize("addresses", [None, {"10.0.0.11": ("10.0.0.11",), "10.0.0.12": ("fd00::12",),
                                              "10.0.0.13": ("10.0.0.13",)}])
def test_nft_accepts_ruleset(tmp_path, addresses):
    path = tmp_path / "firewall.nft"
    path.write_text(render(addresses))
    r = subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@ROOT_ONLY
@pytest.mark.skipif(shutil.which("nft") is None or shutil.which("ip") is None, reason="nft/ip not installed")
def test_ruleset_loads_and_reloads_in_a_namespace(tmp_path):
    """Loading twice replaces the table whole (the reload path) and touches no other table."""
    ns = f"dbrs-fw-{tmp_path.name[-8:]}"
    path = tmp_path / "firewall.nft"
    path.write_text(render())
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        def nft(*args):
            return subprocess.run(["ip", "netns", "exec", ns, "nft", *args], capture_output=True, text=True, check=True)

        nft("add", "table", "inet", "other")
        nft("-f", str(path))
        nft("-f", str(path))
        tables = nft("list", "tables").stdout
        assert "table inet dbrs" in tables and "table inet other" in tables
        listing = nft("list", "table", "inet", "dbrs").stdout
        assert listing.count("chain mongod") == 1
        # the testinfra check reads nft's own listing: it must find the guarded port there, and none
        # once the jump is gone (so a firewall that judges nothing fails the check)
        assert infra_checks.guarded_ports(listing) == {27017}
        unguarded = "\n".join(line for line in listing.splitlines() if "jump mongod" not in line)
        assert infra_checks.guarded_ports(unguarded) == set()
    finally:
        subprocess.run(["ip", "netns", "del", ns])
