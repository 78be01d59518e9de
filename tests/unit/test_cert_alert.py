"""The expiry alert fires: a daily unit checks the certificates and fails 30 days before one expires,
and its OnFailure= is the alert handler every dbrs unit uses."""

import re
import shlex
import shutil
import subprocess
import time

import pytest

from installer import pki, spec as specmod
from installer.host import facts, timers
from installer.host.target import Target

from ..conftest import PSA, write_cluster

TLS_PSA = PSA.replace('write_concern = "majority"\n', 'write_concern = "majority"\ntls = "required"\n', 1)
DAY = 86400


def _units(text, *names, dbrs="/usr/bin/dbrs"):
    spec = specmod.loads(text)
    members = tuple(spec.member(n) for n in names)
    t = Target(spec=spec, members=members, host_members=members, live=True, packages=False)
    return {i.path.rsplit("/", 1)[1]: i.content.decode() for i in timers.items(t, timers.ON_FAILURE, dbrs=dbrs)
            if i.kind == "file"}, [s.unit for s in timers.services(t)]


def _exec_argv(unit_text):
    line = next(x for x in unit_text.splitlines() if x.startswith("ExecStart="))
    return shlex.split(line.split("=", 1)[1])


def test_every_tls_host_gets_a_daily_certificate_check_that_alerts(tmp_path):
    for name in ("mongod2", "mongod3"):                       # the arbiter's certificate expires too
        units, started = _units(TLS_PSA, name)
        svc, timer = units["dbrs-certs.service"], units["dbrs-certs.timer"]
        assert "OnFailure=dbrs-alert@%n.service" in svc
        assert _exec_argv(svc)[1:] == ["tls", "status", "--config", "/etc/dbrs/cluster.toml"]
        assert "OnCalendar=daily" in timer and "Persistent=true" in timer
        assert "dbrs-certs.timer" in started
    units, started = _units(PSA, "mongod2")
    assert "dbrs-certs.service" not in units and "dbrs-certs.timer" not in started


def test_the_units_command_fails_on_a_certificate_30_days_from_expiry(tmp_path, run_dbrs):
    """What the timer runs exits 1 (so systemd starts dbrs-alert@) when a member certificate has < 30 days,
    and 0 while it has more."""
    config = write_cluster(tmp_path, TLS_PSA)
    ca = pki.new_ca("dbrs", time.time() - 5 * DAY)
    (config.parent / "ca.pem").write_bytes(ca.cert_pem)
    (config.parent / "mongod1").mkdir()
    pem = config.parent / "mongod1" / "member.pem"
    units, _ = _units(TLS_PSA, "mongod1")
    argv = [a.replace("/etc/dbrs/cluster.toml", str(config)) for a in _exec_argv(units["dbrs-certs.service"])[1:]]

    pem.write_bytes(pki.issue_member(ca, "dbrs", "10.0.0.11", [], time.time(), days=90).key_file())
    ok = run_dbrs(*argv)
    assert ok.exit_code == 0, ok.output

    pem.write_bytes(pki.issue_member(ca, "dbrs", "10.0.0.11", [], time.time(), days=29).key_file())
    r = run_dbrs(*argv)
    assert r.exit_code == 1, r.output
    assert "FAIL mongod1: expires in 28 days" in r.output or "FAIL mongod1: expires in 29 days" in r.output


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_accepts_the_check_and_it_is_sandboxed(tmp_path):
    units, _ = _units(TLS_PSA, "mongod3", dbrs=shutil.which("dbrs") or facts.dbrs_bin())
    for name in ("dbrs-certs.service", "dbrs-certs.timer", "dbrs-alert@.service"):
        (tmp_path / name).write_text(units[name])
    shutil.copy(tmp_path / "dbrs-alert@.service", tmp_path / "dbrs-alert@dbrs-certs.service.service")
    for name in ("dbrs-certs.service", "dbrs-certs.timer"):
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / name)], capture_output=True,
                           text=True, cwd=tmp_path)
        assert not [x for x in r.stderr.splitlines() if x.strip() and "mongodb" not in x], (name, r.stderr)
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(tmp_path / "dbrs-certs.service")],
                       capture_output=True, text=True)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout + r.stderr)
    assert m and float(m.group(1)) <= 2.0, r.stdout + r.stderr
