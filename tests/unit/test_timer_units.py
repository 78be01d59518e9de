"""The backup units: who gets them, what they run, and that systemd accepts and scores them."""

import re
import shutil
import subprocess
from dataclasses import replace

import pytest

from installer import secrets as secrets_mod, spec as specmod
from installer.host import facts, plan, timers
from installer.host.target import Target

from .backup_env import spec_text

DBRS = shutil.which("dbrs") or facts.dbrs_bin()


@pytest.fixture
def spec(tmp_path):
    text = spec_text(tmp_path).replace('retention_days = 7', 'retention_days = 7\nschedule = "*-*-* 02:30:00"\n'
                                       'oplog_every = "10min"\nverify_schedule = "Sun *-*-* 04:00:00"')
    return specmod.loads(text)


def target(spec, *names, live=True):
    members = tuple(spec.member(n) for n in names)
    return Target(spec=spec, members=members, host_members=members, live=live, packages=False)


def rendered(items):
    return {i.path.rsplit("/", 1)[1]: i.content.decode() for i in items if i.kind == "file"}


def test_data_bearing_hosts_get_timers_arbiters_only_the_alert_handler(spec):
    data = rendered(timers.items(target(spec, "mongod2"), timers.ON_FAILURE, dbrs=DBRS))
    assert sorted(data) == ["dbrs-alert@.service", "dbrs-backup.service", "dbrs-backup.timer",
                            "dbrs-oplog.service", "dbrs-oplog.timer", "dbrs-verify.service", "dbrs-verify.timer"]
    arb = rendered(timers.items(target(spec, "mongod3"), timers.ON_FAILURE, dbrs=DBRS))
    assert sorted(arb) == ["dbrs-alert@.service"]
    assert timers.services(target(spec, "mongod3")) == []
    assert [s.unit for s in timers.services(target(spec, "mongod2"))] == list(timers.TIMERS)
    dirs = {i.path: i.mode for i in timers.items(target(spec, "mongod2")) if i.kind == "dir"}
    assert dirs == {spec.backup.dir: 0o700, "/var/lib/dbrs/.backup": 0o700}


def test_units_carry_the_spec(spec):
    u = rendered(timers.items(target(spec, "mongod2"), timers.ON_FAILURE, dbrs=DBRS))
    timer = u["dbrs-backup.timer"]
    assert "OnCalendar=*-*-* 02:30:00\n" in timer and "Persistent=true\n" in timer
    assert "RandomizedDelaySec=15min\n" in timer
    assert "OnUnitActiveSec=10min" in u["dbrs-oplog.timer"]
    assert "OnCalendar=Sun *-*-* 04:00:00\nPersistent=true" in u["dbrs-verify.timer"]
    assert f'ExecStart="{DBRS}" backup --config "/etc/dbrs/cluster.toml"' in u["dbrs-backup.service"]
    assert f'ExecStartPost="{DBRS}" prune --config "/etc/dbrs/cluster.toml"' in u["dbrs-backup.service"]
    assert f'ExecStart="{DBRS}" alert --config "/etc/dbrs/cluster.toml" %i' in u["dbrs-alert@.service"]
    for name in ("dbrs-backup.service", "dbrs-oplog.service", "dbrs-verify.service"):
        assert "OnFailure=dbrs-alert@%n.service" in u[name]
        assert "LoadCredential=backup.key:/etc/dbrs/backup.key" in u[name]
        assert f"{spec.backup.dir}" in u[name]
    assert "\nOnFailure=" not in u["dbrs-alert@.service"]      # a failing handler must not trigger itself


def test_render_time_path_of_dbrs_is_absolute_and_staging_uses_the_packaged_one(spec):
    assert facts.dbrs_bin().startswith("/")
    live = rendered(timers.items(replace(target(spec, "mongod2"), dbrs_bin="/opt/dbrs/venv/bin/dbrs"),
                                 timers.ON_FAILURE))
    assert 'ExecStart="/opt/dbrs/venv/bin/dbrs" backup' in live["dbrs-backup.service"]
    staged = rendered(timers.items(target(spec, "mongod2", live=False), timers.ON_FAILURE))
    assert 'ExecStart="/usr/bin/dbrs" backup' in staged["dbrs-backup.service"]


def test_plan_wires_on_failure_into_every_dbrs_unit(spec):
    express = replace(spec, mongo_express=replace(spec.mongo_express, enabled=True))
    t = replace(target(express, "mongod1", live=False), members=(express.member("mongod1"),),
                secrets=secrets_mod.generate())
    units = rendered(plan.desired(t))
    for name in ("dbrs-mongod@.service", "dbrs-tuning.service", "dbrs-firewall.service", "dbrs-backup.service",
                 "dbrs-mongo-express.service"):
        assert "OnFailure=dbrs-alert@%n.service" in units[name], name


needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")


@pytest.fixture
def unit_dir(spec, tmp_path):
    out = tmp_path / "units"
    out.mkdir()
    for name, text in rendered(timers.items(target(spec, "mongod2"), timers.ON_FAILURE, dbrs=DBRS)).items():
        (out / name).write_text(text)
    shutil.copy(out / "dbrs-alert@.service", out / "dbrs-alert@dbrs-backup.service.service")
    return out


@needs_analyze
def test_systemd_analyze_verify_is_clean(unit_dir):
    names = [p.name for p in unit_dir.iterdir() if not p.name.endswith("@.service")]
    assert len(names) == 7
    for name in sorted(names):
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit_dir / name)],
                           capture_output=True, text=True, cwd=unit_dir)
        problems = [line for line in r.stderr.splitlines() if line.strip()]
        assert not problems, (name, problems)


@needs_analyze
def test_verify_would_catch_a_bad_directive(unit_dir):
    """The scan above is live: an unknown key shows up on stderr although the exit code is 0."""
    p = unit_dir / "dbrs-backup.service"
    p.write_text(p.read_text().replace("Nice=10", "Nicety=10"))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(p)], capture_output=True, text=True,
                       cwd=unit_dir)
    assert "Nicety" in r.stderr


@needs_analyze
@pytest.mark.parametrize("name", ["dbrs-backup.service", "dbrs-oplog.service", "dbrs-verify.service",
                                  "dbrs-alert@dbrs-backup.service.service"])
def test_sandbox_scores_low(unit_dir, name):
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit_dir / name)],
                       capture_output=True, text=True)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout + r.stderr)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 2.0, (name, m.group(1))
