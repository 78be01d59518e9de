"""Issue 13's rolling upgrade on real systemd hosts: a PSA set installed at 7.0 from local stand-in .debs
(`--packages-from`), then `dbrs upgrade --to 8.0 --packages-from DIR` host by host — the primary's host is
refused until the secondary and the arbiter run 8.0, then it steps down and upgrades last — the pin and the
installed package on every host at 8.0 after, and `--set-fcv 8.0` (one-way: refused off a terminal without
--yes). The stand-in mongod reports the version its package installed and keeps the FCV as MongoDB does.
"""

from __future__ import annotations

import re
import time

import pytest

from . import product
from .beds import BUNDLE, PASS, booted, install_psa, out as _out

pytestmark = pytest.mark.hosts

NET = {"m1": "10.77.0.61", "m2": "10.77.0.62", "m3": "10.77.0.63"}
MEMBER = {"m1": "mongod1", "m2": "mongod2", "m3": "mongod3"}
DEBS = {"7.0": "/var/tmp/debs-7.0", "8.0": "/var/tmp/debs-8.0"}


def _prepare(n, h, wheels):
    product.install_product(h, wheels, "7.0", NET)
    for version, where in DEBS.items():
        product.standin_packages(h, version, where)


@pytest.fixture(scope="module")
def lab(request):
    """A PSA set on m1/m2/m3 installed from the 7.0 stand-in packages (pinned to 7.0)."""
    t0 = time.monotonic()
    with booted(request, NET, _prepare) as (_, hosts):
        m1 = hosts["m1"]
        m1.write_file(PASS, "correct horse battery staple\n", 0o600)
        m1.run(["dbrs", "init", "--mongodb-version", "7.0", "--primary", NET["m1"], "--secondary", NET["m2"],
                "--arbiter", NET["m3"], "--passphrase-file", PASS])
        for n in ("m2", "m3"):
            hosts[n].write_file(BUNDLE, m1.read_file("/etc/dbrs/bundle.dbrs"), 0o600)
            hosts[n].write_file(PASS, m1.read_file(PASS), 0o600)
        for n, r in install_psa(hosts, ["--packages-from", DEBS["7.0"]]).items():
            assert r.returncode == 0, f"dbrs-install on {n}: {_out(r)}"
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter:
            reporter.write_line(f"dbrs-hosts: 7.0 PSA set installed from stand-in .debs in {time.monotonic() - t0:.1f} s")
        yield hosts


def installed(host):
    return host.run(["dpkg-query", "-W", "-f", "${Version}", "mongodb-org-server"]).stdout.strip()


def pinned(host):
    pin = host.run("cat /etc/apt/preferences.d/dbrs-mongodb-org").stdout
    return re.search(r"Pin: version (\S+)\nPin-Priority: 990", pin).group(1)


def test_installed_from_the_7_0_debs_and_pinned(lab):
    for n, h in lab.items():
        assert installed(h) == "7.0.14-standin" and pinned(h) == "7.0.*", n
        policy = h.run("apt-cache policy mongodb-org-server").stdout
        assert re.search(r"\*\*\* 7\.0\.14-standin 990", policy), policy


def test_rolling_upgrade_secondaries_and_arbiter_first_primary_last(lab):
    up = ["dbrs", "upgrade", "--to", "8.0", "--packages-from", DEBS["8.0"], "--wait", "120"]
    t0 = time.monotonic()
    r = lab["m1"].run(up, check=False, timeout=300)
    assert r.returncode == 2 and "mongod2" in r.stderr + r.stdout, _out(r)          # not the primary's turn
    assert installed(lab["m1"]) == "7.0.14-standin" and pinned(lab["m1"]) == "7.0.*"
    for n in ("m2", "m3"):
        r = lab[n].run(up, check=False, timeout=300)
        assert r.returncode == 0, _out(r)
        assert f"changed   restart {MEMBER[n]}" in r.stdout and "changed   step" not in r.stdout, r.stdout
        assert installed(lab[n]) == "8.0.4-standin" and pinned(lab[n]) == "8.0.*"
        assert 'mongodb_version = "8.0"' in lab[n].read_file("/etc/dbrs/cluster.toml").decode()
    r = lab["m1"].run(up + ["--passphrase-file", PASS], check=False, timeout=300)
    assert r.returncode == 0, _out(r)
    assert r.stdout.index("changed   step mongod1") < r.stdout.index("changed   restart mongod1"), r.stdout
    assert "changed   bundle.dbrs: re-sealed with the upgraded spec" in r.stdout
    elapsed = time.monotonic() - t0
    for n, h in lab.items():
        assert installed(h) == "8.0.4-standin" and pinned(h) == "8.0.*", n
        policy = h.run("apt-cache policy mongodb-org-server").stdout
        assert re.search(r"\*\*\* 8\.0\.4-standin 990", policy), policy
        status = h.run(["dbrs", "status"], check=False)
        assert "PRIMARY" in status.stdout, _out(status)
    again = lab["m2"].run(up, check=False, timeout=120)
    assert again.returncode == 0 and again.stdout.startswith("unchanged upgrade"), _out(again)
    print(f"rolling upgrade of three hosts: {elapsed:.1f} s")


def test_set_fcv_is_one_way_and_needs_yes(lab):
    m1 = lab["m1"]
    r = m1.run(["dbrs", "upgrade", "--set-fcv", "8.0"], check=False, timeout=60)
    assert r.returncode == 2 and "one-way" in r.stderr + r.stdout and "--yes" in r.stderr + r.stdout, _out(r)
    r = m1.run(["dbrs", "upgrade", "--set-fcv", "8.0", "--yes"], check=False, timeout=60)
    assert r.returncode == 0 and "changed   feature compatibility version 7.0 -> 8.0" in r.stdout, _out(r)
    r = lab["m2"].run(["dbrs", "upgrade", "--set-fcv", "8.0", "--yes"], check=False, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("unchanged"), _out(r)
