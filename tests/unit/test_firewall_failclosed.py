"""The firewall never fails open: overlapping allow lists load, mongod starts only behind its table,
the table's digest tells a stale or missing table apart, and status/install see it."""

import shutil
import subprocess

import pytest

from installer import spec as specmod
from installer.host import facts, firewall, registry as plan
from installer.render import render

from ..conftest import PSA, ROOT_ONLY


def _spec(allow):
    return specmod.loads(PSA.replace('["10.0.0.0/24"]', allow))


def _ruleset(spec):
    return firewall.ruleset(spec, spec.members[:1], {m.host: (m.host,) for m in spec.members}).decode()


OVERLAP = '["10.0.0.0/8", "10.77.0.0/16", "10.77.0.0/16", "10.77.0.20/32", "fd00::/8", "fd00:1::/32", "2001:db8::/48"]'


def test_overlapping_and_duplicate_allow_networks_are_merged():
    text = _ruleset(_spec(OVERLAP))
    assert "elements = { 10.0.0.0/8 }" in text
    assert "elements = { 2001:db8::/48, fd00::/8 }" in text
    assert "10.77.0.0/16" not in text and "fd00:1::/32" not in text


@ROOT_ONLY
@pytest.mark.skipif(shutil.which("nft") is None, reason="nft not installed")
@pytest.mark.parametrize("allow", [OVERLAP, '["10.77.0.20/32", "fd00::/8", "::/0"]', '["0.0.0.0/0", "10.0.0.0/8"]'])
def test_nft_accepts_overlapping_allow_lists(tmp_path, allow):
    path = tmp_path / "firewall.nft"
    path.write_text(_ruleset(_spec(allow)))
    r = subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_allow_everything_warns():
    spec = _spec('["0.0.0.0/0", "::/0", "10.0.0.0/8"]')
    lines = firewall.warnings(spec)
    assert len(lines) == 2 and all(line.startswith("cluster.allow: ") for line in lines)
    assert "0.0.0.0/0 lets every address" in lines[0] and "::/0" in lines[1]
    assert [c.level for c in firewall.checks(spec)] == ["WARN", "WARN"]
    assert firewall.warnings(_spec('["10.0.0.0/8"]')) == []


def test_init_warns_about_allow_everything(staging, run_dbrs):
    r = run_dbrs("init", "--root", str(staging), "--primary", "10.0.0.11", "--secondary", "10.0.0.12",
                 "--arbiter", "10.0.0.13", "--allow", "0.0.0.0/0")
    assert r.exit_code == 0 and "warning: cluster.allow: 0.0.0.0/0 lets every address" in r.output


def test_digest_follows_the_content():
    a, b = _ruleset(_spec('["10.0.0.0/8"]')), _ruleset(_spec('["10.1.0.0/16"]'))
    assert firewall.digest_of(a) and firewall.digest_of(b) and firewall.digest_of(a) != firewall.digest_of(b)
    assert firewall.digest_of(_ruleset(_spec('["10.0.0.0/8"]'))) == firewall.digest_of(a)


def test_missing_or_stale_table_is_planned_for_a_reload():
    item = firewall.Table("/etc/dbrs/firewall.nft", "0123456789abcdef")
    good = 'counter packets 0 bytes 0 drop comment "mongod ports: not a member, not in allow (dbrs ruleset 0123456789abcdef)"'
    stale = good.replace("0123456789abcdef", "fedcba9876543210")
    (missing,) = plan.compare([item], {item.key: None})
    assert missing.changed and missing.reasons == ["not loaded"]
    (old,) = plan.compare([item], {item.key: stale})
    assert old.changed and "fedcba9876543210" in old.reasons[0]
    (ok,) = plan.compare([item], {item.key: good})
    assert not ok.changed
    (unknown,) = plan.compare([item], {item.key: facts.NFT_UNKNOWN})
    assert not unknown.changed


def test_nft_list_table_parsed():
    assert facts.parse_nft_list_table(0, "table inet dbrs {}", "") == "table inet dbrs {}"
    assert facts.parse_nft_list_table(1, "", "Error: No such file or directory\nlist table inet dbrs\n") is None
    assert facts.parse_nft_list_table(1, "", "Operation not permitted") == facts.NFT_UNKNOWN


def test_status_problems_name_the_fix():
    text = _ruleset(_spec('["10.0.0.0/8"]'))
    listing = text  # the digest comment survives nft's listing (shown in the namespace test below)
    assert firewall.problems(None, None, "inactive") == []
    assert firewall.problems(text, listing, "active") == []
    (gone,) = firewall.problems(text, None, "active")
    assert "not loaded" in gone and "dbrs-install" in gone
    (stale,) = firewall.problems(text, _ruleset(_spec('["10.1.0.0/16"]')), "active")
    assert "differs" in stale
    (failed,) = firewall.problems(text, listing, "failed")
    assert "dbrs-firewall.service is failed" in failed


def test_live_plan_checks_the_loaded_table():
    from installer.host.target import Target

    spec = _spec('["10.0.0.0/8"]')
    target = Target(spec=spec, members=spec.members[:1], host_members=spec.members[:1],
                    addresses={m.host: (m.host,) for m in spec.members})
    tables = [s for s in firewall.services(target) if s.kind == "nftable"]
    assert len(tables) == 1 and tables[0].digest == firewall.digest_of(_ruleset(spec))


def _unit(name, **kw):
    return render(f"systemd/{name}.j2", **kw).decode()


def test_mongod_loads_the_firewall_before_every_start():
    text = _unit("dbrs-mongod@.service", cluster=_spec('["10.0.0.0/8"]').cluster, mongod="/usr/bin/mongod",
                 etc="/etc/dbrs", data="/var/lib/dbrs", log="/var/log/dbrs", on_failure=None, glibc_rseq_off=False)
    assert "ExecStartPre=+/usr/sbin/nft -f /etc/dbrs/firewall.nft\n" in text
    assert text.index("ExecStartPre=+") < text.index("ExecStart=/usr/bin/mongod")
    for line in text.splitlines():
        assert not line.startswith(("Requires=", "BindsTo=", "PartOf=")), line


def test_firewall_unit_follows_nftables_and_stops_quietly():
    text = _unit("dbrs-firewall.service", ruleset="/etc/dbrs/firewall.nft", on_failure=None)
    lines = text.splitlines()
    assert "ExecStop=-/usr/sbin/nft delete table inet dbrs" in lines
    assert "After=local-fs.target nftables.service" in lines
    assert "PartOf=nftables.service" in lines and "ReloadPropagatedFrom=nftables.service" in lines
    assert "WantedBy=sysinit.target nftables.service" in lines


def test_firewall_items_link_into_nftables_wants():
    spec = _spec('["10.0.0.0/8"]')
    from installer.host.target import Target

    target = Target(spec=spec, members=spec.members[:1], host_members=spec.members[:1],
                    addresses={m.host: (m.host,) for m in spec.members})
    links = [i for i in firewall.items(target) if i.kind == "link"]
    assert [(i.path, i.target) for i in links] == [
        ("/etc/systemd/system/nftables.service.wants/dbrs-firewall.service", "/etc/systemd/system/dbrs-firewall.service")]


@ROOT_ONLY
@pytest.mark.skipif(shutil.which("nft") is None or shutil.which("ip") is None, reason="nft/ip not installed")
def test_digest_survives_nft_listing_and_flush_is_seen(tmp_path):
    ns = f"dbrs-fd-{tmp_path.name[-8:]}"
    path = tmp_path / "firewall.nft"
    text = _ruleset(_spec(OVERLAP))
    path.write_text(text)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        def nft(*args):
            r = subprocess.run(["ip", "netns", "exec", ns, "nft", *args], capture_output=True, text=True)
            return facts.parse_nft_list_table(r.returncode, r.stdout, r.stderr)

        assert nft("-f", str(path)) is not None
        listing = nft("list", "table", "inet", "dbrs")
        assert firewall.table_reasons(firewall.digest_of(text), listing) == []
        assert firewall.problems(text, listing, "active") == []
        nft("flush", "ruleset")
        gone = nft("list", "table", "inet", "dbrs")
        assert gone is None and firewall.table_reasons(firewall.digest_of(text), gone) == ["not loaded"]
    finally:
        subprocess.run(["ip", "netns", "del", ns])
