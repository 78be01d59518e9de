"""The README's quickstart, typed verbatim on a fresh Debian 12 host, then the oplog timer's service runs.

The host has no network, so three things stand in for the outside world, none of them in the command:
/etc/pip.conf points pip at the wheelhouse the test bed builds (dependencies and setuptools), empty
stand-in .debs mark MongoDB's packages installed (with the mongod/mongodump stand-ins as binaries) and
its key present, and `sudo` runs its command (the hosts are entered as root).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from . import product
from .testbed import Testbed, TestbedError, cleanup_stale

pytestmark = pytest.mark.hosts

README = Path(__file__).resolve().parents[2] / "README.md"
CLONE = "/root/dbrs"   # where `git clone … && cd dbrs` leaves an operator logged in as root


def readme_quickstart():
    """The README's first command, exactly as printed (the first indented line of the file)."""
    for line in README.read_text().splitlines():
        if line.startswith("    ") and line.strip():
            return line.strip()
    raise AssertionError("README.md has no indented command")


@pytest.fixture(scope="module")
def host(request):
    cleanup_stale()
    try:
        rootfs = product.member_rootfs()
    except (TestbedError, OSError) as e:
        pytest.skip(f"tier-3 member rootfs cannot be built: {e}")
    wheels = product.wheelhouse()
    tb = Testbed(rootfs=rootfs)
    try:
        h = tb.boot({"quick": "10.77.0.50"})["quick"]
        h.run(["sh", "-c", "cat >> /etc/hosts"], input="10.77.0.50\tquick\n")
        product.offline_pip(h, wheels)
        product.mongodb_repo_standin(h)
        product.install_standins(h)
        # The stand-ins run on the product's own Python (they need bson); here that is the README's venv.
        h.run(f"sed -i '1s|^#!.*python$|#!/opt/dbrs/bin/python|' {product.STANDIN_DIR}/mongod "
              f"{product.STANDIN_DIR}/mongodump {product.STANDIN_DIR}/mongorestore")
        product.sudo_standin(h)
        product.source_tree(h, CLONE)
        yield h
    finally:
        tb.close()


def test_the_old_quickstart_venv_in_root_is_refused_before_anything_changes(host):
    """`python3 -m venv v` inside /root/dbrs: the units' ProtectHome=yes would hide it (203/EXEC)."""
    r = host.run(f"cd {CLONE} && python3 -m venv v && v/bin/pip install -q . && v/bin/dbrs-install",
                 check=False, timeout=600)
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    [line] = r.stderr.strip().splitlines()
    assert line.startswith(f"error: dbrs: {CLONE}/v/bin/dbrs is in a home folder") and "/opt/dbrs" in line
    assert host.run("test -e /etc/dbrs || test -e /etc/systemd/system/dbrs-oplog.service", check=False).returncode == 1


def test_readme_quickstart_verbatim_then_the_oplog_service_runs(host):
    command = readme_quickstart()
    assert command.startswith("sudo ") and "dbrs-install" in command
    r = host.run(f"cd {CLONE} && {command}", check=False, timeout=900)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert "single-host default" in r.stdout
    assert re.search(r"^\d+ changed, \d+ unchanged$", r.stdout, re.M), r.stdout[-2000:]
    unit = host.run("systemctl cat dbrs-oplog.service").stdout
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert "/opt/dbrs/bin/dbrs" in exec_start, exec_start
    assert host.run("systemctl is-enabled dbrs-oplog.timer").stdout.strip() == "enabled"
    # What the timer does when it fires (every 5 min by default): start the service, and it must run.
    host.run("systemctl start dbrs-oplog.service", check=False, timeout=120)
    deadline = time.monotonic() + 60
    while True:
        show = dict(line.split("=", 1) for line in host.run(
            "systemctl show -p Result -p ExecMainStatus -p ActiveState dbrs-oplog.service").stdout.splitlines()
            if "=" in line)
        if show.get("ActiveState") not in ("activating", "deactivating") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    journal = host.run("journalctl -u dbrs-oplog.service --no-pager -n 20", check=False).stdout
    assert show.get("ExecMainStatus") != "203" and "203/EXEC" not in journal, journal
    assert show.get("Result") == "success", f"{show}\n{journal}"


def test_mongodb_packages_are_pinned_after_install(host):
    """The pin file is in place and apt itself holds the installed server at its series (priority 990)."""
    pin = host.run("cat /etc/apt/preferences.d/dbrs-mongodb-org").stdout
    assert "Package: mongodb-org*\nPin: version 8.0.*\nPin-Priority: 990" in pin
    policy = host.run("apt-cache policy mongodb-org-server").stdout
    installed = re.search(r"Installed: (\S+)", policy).group(1)
    assert installed.startswith("8.0.") and re.search(rf"\*\*\* {re.escape(installed)} 990", policy), policy


def test_a_member_that_left_the_spec_is_pruned_and_its_data_kept(host):
    """mongod3 becomes mongod4 in the spec: while the set lists mongod3 and it runs it is left alone; once it
    is down, its unit is disabled and its mongod.conf removed, its data kept until --purge-data."""
    spec = host.run("cat /etc/dbrs/cluster.toml").stdout
    assert 'name = "mongod3"' in spec
    host.write_file("/etc/dbrs/cluster.toml", spec.replace('name = "mongod3"', 'name = "mongod4"')
                    .replace("port = 27019", "port = 27020"), 0o644)
    r = host.run("/opt/dbrs/bin/dbrs-install --no-start", check=False, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert "waiting   departed mongod3: not in this host's spec, but the replica set still lists it" in r.stdout
    assert host.run("systemctl is-active dbrs-mongod@mongod3", check=False).stdout.strip() == "active"

    host.run("systemctl stop dbrs-mongod@mongod3")
    r = host.run("/opt/dbrs/bin/dbrs-install --no-start", check=False, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert ("changed   departed mongod3: not in this host's spec: disable, remove mongod.conf; "
            "data kept in /var/lib/dbrs/mongod3 (delete it with --purge-data)") in r.stdout, r.stdout[-3000:]
    assert host.run("systemctl is-enabled dbrs-mongod@mongod3", check=False).stdout.strip() == "disabled"
    assert host.run("test -e /etc/dbrs/mongod3", check=False).returncode == 1
    assert host.run("test -d /var/lib/dbrs/mongod3").returncode == 0

    again = host.run("/opt/dbrs/bin/dbrs-install --no-start", timeout=300)
    assert "departed" not in again.stdout and re.search(r"^0 changed", again.stdout, re.M), again.stdout[-2000:]
    purged = host.run("/opt/dbrs/bin/dbrs-install --no-start --purge-data", timeout=300)
    assert "changed   departed mongod3: not in this host's spec: delete /var/lib/dbrs/mongod3; data deleted" in purged.stdout
    assert host.run("test -e /var/lib/dbrs/mongod3", check=False).returncode == 1
    assert host.run("test -d /var/lib/dbrs/mongod1").returncode == 0
