"""Preflight verdicts and the MongoDB repository choice: pure decisions."""

import pytest

from installer import spec as specmod
from installer.host import packages, preflight
from installer.errors import DbrsError
from installer.host.facts import parse_dpkg_query, parse_os_release, parse_systemctl_show
from installer.host.target import OsRelease, Target

from ..conftest import PSA

GIB = 1024**3


def target(version="8.0", members=None):
    spec = specmod.loads(PSA.replace('"8.0"', f'"{version}"'))
    chosen = members or spec.members[:1]
    return Target(spec=spec, members=tuple(chosen), host_members=tuple(chosen))


def healthy(**kw):
    base = dict(mem_total=8 * GIB, swap_total=GIB, cpus=4, disk_free=100 * GIB, fstype="xfs", kernel="6.1.0",
                clock_synced="yes", hostname="db1", hostname_resolves=True)
    base.update(kw)
    return preflight.HostFacts(**base)


def levels(checks):
    return {c.name: c.level for c in checks}


def test_healthy_host_all_ok():
    assert set(levels(preflight.evaluate(healthy(), target())).values()) == {"OK"}


@pytest.mark.parametrize("facts,name,level", [
    (dict(mem_total=256 * 1024**2), "memory", "FAIL"),
    (dict(mem_total=GIB), "memory", "WARN"),
    (dict(disk_free=GIB // 2), "disk", "FAIL"),
    (dict(fstype="ext4"), "filesystem", "WARN"),
    (dict(swap_total=0), "swap", "WARN"),
    (dict(kernel="4.15.0-generic"), "kernel", "FAIL"),
    (dict(clock_synced="no"), "clock", "WARN"),
    (dict(hostname_resolves=False), "hostname", "WARN"),
    (dict(listeners={27017: (42, "mongod", "/usr/bin/mongod --config /etc/mongod.conf")}), "port 27017", "FAIL"),
    (dict(listeners={27017: (42, "mongod", "/usr/bin/mongod --config /etc/dbrs/mongod1/mongod.conf")},
          unit_pids={"mongod1": 42}), "port 27017", "OK"),
    # started by hand with our config, or renamed: not the unit's process, so not ours
    (dict(listeners={27017: (42, "mongod", "/usr/bin/mongod --config /etc/dbrs/mongod1/mongod.conf")},
          unit_pids={"mongod1": 0}), "port 27017", "FAIL"),
    (dict(listeners={27017: (42, "mongod-8.0", "/opt/x/mongod --config /etc/dbrs/mongod1/mongod.conf")},
          unit_pids={"mongod1": 42}), "port 27017", "OK"),
])
def test_checks(facts, name, level):
    assert levels(preflight.evaluate(healthy(**facts), target()))[name] == level


def test_old_kernel_is_fine_for_7_0():
    assert levels(preflight.evaluate(healthy(kernel="4.15.0"), target("7.0")))["kernel"] == "OK"


def test_repository_lines():
    assert packages.repository(OsRelease("debian", "12", "bookworm"), "8.0") == (
        "https://repo.mongodb.org/apt/debian", "bookworm/mongodb-org/8.0", "main")
    assert packages.repository(OsRelease("ubuntu", "24.04", "noble"), "8.0")[2] == "multiverse"
    with pytest.raises(DbrsError, match="7.0 has no packages"):
        packages.repository(OsRelease("ubuntu", "24.04", "noble"), "7.0")
    with pytest.raises(DbrsError, match="--packages-from"):
        packages.repository(OsRelease("fedora", "40", ""), "8.0")


def test_package_items_mask_stock_unit_first():
    t = Target(spec=target().spec, members=(), host_members=(), os=OsRelease("debian", "12", "bookworm"))
    items = packages.items(t)
    assert items[0].path == "/etc/systemd/system/mongod.service" and items[0].target == "/dev/null"
    assert b"signed-by=/usr/share/keyrings/mongodb-server-8.0.asc" in items[2].content


def test_fact_parsers():
    assert parse_dpkg_query("nftables installed\nmongodb-org-server not-installed\n") == {"nftables"}
    fact = parse_systemctl_show("UnitFileState=enabled\nActiveState=active\nConditionResult=yes\nLoadState=loaded\n")
    assert (fact.enabled, fact.active, fact.loaded) == ("enabled", "active", True)
    skipped = parse_systemctl_show("UnitFileState=enabled\nActiveState=inactive\nConditionResult=no\n"
                                   "ConditionTimestampMonotonic=123\nLoadState=loaded\n")
    assert skipped.condition == "no"
    never_started = parse_systemctl_show("UnitFileState=disabled\nActiveState=inactive\nConditionResult=no\n"
                                         "ConditionTimestampMonotonic=0\nLoadState=loaded\n")
    assert never_started.condition == "", "a unit never started was not skipped by its condition"
    osr = parse_os_release('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n')
    assert osr == OsRelease("debian", "12", "bookworm")


def test_unreachable_repository_key_is_a_clear_step_failure(tmp_path):
    """No MongoDB repository (air-gapped host): the step says so and suggests --packages-from."""
    import socket

    from installer.host.steps import fetch_key
    from installer.errors import StepFailed

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(StepFailed) as e:
        fetch_key(f"http://127.0.0.1:{port}/server-8.0.asc", str(tmp_path), "/usr/share/keyrings/k.asc")
    assert "--packages-from" in str(e.value) and "apt key" in str(e.value)
    assert not (tmp_path / "usr/share/keyrings/k.asc").exists()


def test_wiredtiger_cache_is_split_between_members_sharing_a_host():
    from installer.host import mongod
    from installer.spec import single_host

    one = single_host()
    t = Target(spec=one, members=one.members, host_members=one.members, memory_bytes=9 * GIB)
    assert [mongod.cache_size_gb(t, m) for m in one.members] == [2.0, 2.0, None]
    assert b"cacheSizeGB: 2.0" in mongod.conf(t, one.members[0])
    small = Target(spec=one, members=one.members, host_members=one.members, memory_bytes=GIB + GIB // 4)
    assert mongod.cache_size_gb(small, one.members[0]) == 0.25
    psa = target()
    assert mongod.cache_size_gb(Target(spec=psa.spec, members=psa.members, host_members=psa.members,
                                       memory_bytes=9 * GIB), psa.members[0]) is None
    staged = Target(spec=one, members=one.members, host_members=one.members)
    assert b"cacheSizeGB" not in mongod.conf(staged, one.members[0])


def test_stock_unit_is_masked_without_packages_too():
    """--no-packages: MongoDB's package (installed by the operator) ships mongod.service on 27017 as well."""
    from dataclasses import replace

    from installer.host import plan

    t = replace(target(), live=True, packages=False)
    links = [i for i in plan.desired(t) if i.kind == "link" and i.path == "/etc/systemd/system/mongod.service"]
    assert [(i.path, i.target) for i in links] == [("/etc/systemd/system/mongod.service", "/dev/null")]
    assert not [i for i in plan.desired(t) if i.kind in ("packages", "aptkey")]
