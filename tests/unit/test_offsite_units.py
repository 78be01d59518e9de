"""dbrs-offsite.service/.timer: only where there is something to copy, hardened, alerting, accepted by systemd."""

import re
import shutil
import subprocess

import pytest

from installer import spec as specmod
from installer.host import timers

from .backup_env import spec_text
from .test_timer_units import DBRS, rendered, target

TARGETS = '''
[[offsite]]
name = "usb"
type = "path"
path = "/mnt/dbrs-usb"

[[offsite]]
name = "s3"
type = "s3"
bucket = "acme-db"
'''
needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")


@pytest.fixture
def spec(tmp_path):
    return specmod.loads(spec_text(tmp_path) + TARGETS)


def test_offsite_units_only_on_data_hosts_of_a_spec_with_targets(spec, tmp_path):
    data = rendered(timers.items(target(spec, "mongod2"), timers.ON_FAILURE, dbrs=DBRS))
    assert {"dbrs-offsite.service", "dbrs-offsite.timer"} <= set(data)
    assert "dbrs-offsite.timer" in [s.unit for s in timers.services(target(spec, "mongod2"))]
    assert not {"dbrs-offsite.service", "dbrs-offsite.timer"} & set(
        rendered(timers.items(target(spec, "mongod3"), timers.ON_FAILURE, dbrs=DBRS)))
    plain = specmod.loads(spec_text(tmp_path))
    assert "dbrs-offsite.timer" not in rendered(timers.items(target(plain, "mongod2"), timers.ON_FAILURE, dbrs=DBRS))
    assert "dbrs-offsite.timer" not in [s.unit for s in timers.services(target(plain, "mongod2"))]


def test_offsite_service_pushes_alerts_and_can_write_only_the_spool_and_path_targets(spec):
    u = rendered(timers.items(target(spec, "mongod2"), timers.ON_FAILURE, dbrs=DBRS))["dbrs-offsite.service"]
    assert f'ExecStart="{DBRS}" offsite push --config "/etc/dbrs/cluster.toml"' in u
    assert "OnFailure=dbrs-alert@%n.service" in u
    assert "LoadCredential=secrets.toml:/etc/dbrs/secrets.toml" in u
    assert f"ReadWritePaths={spec.backup.dir} -/mnt/dbrs-usb\n" in u
    assert "usb, s3" in u


@pytest.fixture
def unit_dir(spec, tmp_path):
    out = tmp_path / "units"
    out.mkdir()
    for name, text in rendered(timers.items(target(spec, "mongod2"), timers.ON_FAILURE, dbrs=DBRS)).items():
        (out / name).write_text(text)
    return out


@needs_analyze
@pytest.mark.parametrize("name", ["dbrs-offsite.service", "dbrs-offsite.timer"])
def test_systemd_analyze_verify_is_clean(unit_dir, name):
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit_dir / name)],
                       capture_output=True, text=True, cwd=unit_dir)
    assert not [ln for ln in r.stderr.splitlines() if ln.strip()], r.stderr


@needs_analyze
def test_offsite_sandbox_scores_low(unit_dir):
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit_dir / "dbrs-offsite.service")],
                       capture_output=True, text=True)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout + r.stderr)
    assert m and float(m.group(1)) <= 2.0, r.stdout[-500:]
