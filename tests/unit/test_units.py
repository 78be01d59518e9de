"""Every rendered unit passes systemd's own checks, and mongod's sandbox scores low.

`systemd-analyze verify` exits 0 on unknown directives, so its stderr is
scanned; the only message allowed is that /usr/bin/mongod is missing, since
no mongod can be installed on these machines.
"""

import re
import shutil
import subprocess

import pytest

from ..conftest import write_cluster

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
MONGOD_MISSING = re.compile(r"Command /usr/bin/(mongod|dbrs) is not executable")


@pytest.fixture(scope="module")
def units(tmp_path_factory):
    from click.testing import CliRunner

    from installer.cli.install import main

    root = tmp_path_factory.mktemp("units")
    write_cluster(root)
    result = CliRunner().invoke(main, ["--root", str(root), "--role", "all"])
    assert result.exit_code == 0, result.output
    unit_dir = root / "etc/systemd/system"
    out = tmp_path_factory.mktemp("verify")
    for p in unit_dir.iterdir():
        if p.suffix in (".service", ".timer") and p.is_file():
            shutil.copy(p, out / p.name)
            if p.name.endswith("@.service"):
                shutil.copy(p, out / p.name.replace("@.", "@mongod1."))
    return out


def _names(units):
    return sorted(p.name for p in units.iterdir() if not p.name.endswith("@.service"))


def test_all_units_rendered(units):
    names = _names(units)
    for expected in ("dbrs-mongod@mongod1.service", "dbrs-firewall.service", "dbrs-tuning.service"):
        assert expected in names


def test_systemd_analyze_verify_is_clean(units):
    for name in _names(units):
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(units / name)],
                           capture_output=True, text=True, cwd=units)
        problems = [line for line in r.stderr.splitlines() if line.strip() and not MONGOD_MISSING.search(line)]
        assert not problems, (name, problems)


def exposure(path):
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(path)], capture_output=True, text=True)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout + r.stderr)
    assert m, r.stdout + r.stderr
    return float(m.group(1))


def test_mongod_unit_scores_at_most_3(units):
    assert exposure(units / "dbrs-mongod@mongod1.service") <= 3.0


def test_firewall_unit_is_sandboxed(units):
    assert exposure(units / "dbrs-firewall.service") <= 4.5


def test_mongod_unit_keeps_what_a_real_mongod_needs(units):
    """Hardening that would break mongod must stay off (see the comments in the template)."""
    text = (units / "dbrs-mongod@mongod1.service").read_text()
    active = [line for line in text.splitlines() if not line.startswith("#")]
    assert "MemoryDenyWriteExecute=yes" not in active     # JS engine JIT
    assert not any(line.startswith("ProcSubset=") for line in active)  # FTDC reads /proc/meminfo
    assert "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK" in active
    assert "ReadWritePaths=/var/lib/dbrs/%i /var/log/dbrs/%i" in active
    for limit in ("LimitNOFILE=64000", "LimitNPROC=64000", "LimitMEMLOCK=infinity", "TasksMax=infinity"):
        assert limit in active
    assert "Environment=GLIBC_TUNABLES=glibc.pthread.rseq=0" in active


def test_tuning_sets_net_sysctls_in_the_hosts_own_network_namespace():
    """net.* sysctls are per network namespace: under PrivateNetwork=yes `sysctl -p` would change a
    namespace that dies with the unit and leave the host at its defaults until the next boot."""
    from types import SimpleNamespace

    from installer.host import tuning

    unit = next(i for i in tuning.items(SimpleNamespace(version="8.0")) if i.path.endswith(tuning.UNIT))
    text = unit.content.decode()
    assert any(name.startswith("net.") for name, _ in tuning.SYSCTL)
    directives = {line.split("=", 1)[0] for line in text.splitlines() if "=" in line and not line.startswith("#")}
    assert not directives & {"PrivateNetwork", "NetworkNamespacePath", "JoinsNamespaceOf"}
    assert "ExecStart=/sbin/sysctl -p /etc/sysctl.d/60-dbrs.conf" in text
