"""Shared fixtures: staging roots, fixed secrets, running the CLIs in-process."""

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

PSA = """\
[cluster]
name = "dbrs"
mongodb_version = "8.0"
allow = ["10.0.0.0/24"]
write_concern = "majority"

[[members]]
name = "mongod1"
host = "10.0.0.11"
port = 27017
role = "primary"

[[members]]
name = "mongod2"
host = "10.0.0.12"
port = 27017
role = "secondary"

[[members]]
name = "mongod3"
host = "10.0.0.13"
port = 27017
role = "arbiter"
"""

KEYFILE = b"a" * 1008 + b"\n"
SECRETS = b"""[passwords]
admin = "admin-pw-0000000000000000000000"
backup = "backup-pw-000000000000000000000"
restore = "restore-pw-00000000000000000000"
monitor = "monitor-pw-00000000000000000000"
express = "express-pw-00000000000000000000"

[mongo_express]
basic_auth_user = "dbrs"
basic_auth_password = "basic-pw-0000000000000000000000"
"""
BACKUP_KEY = b"MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA=\n"


def write_cluster(root, spec_text=PSA):
    """A staging root holding a spec and fixed (non-random) secrets."""
    etc = Path(root) / "etc/dbrs"
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "cluster.toml").write_text(spec_text)
    for name, data, mode in (("keyfile", KEYFILE, 0o400), ("secrets.toml", SECRETS, 0o600),
                             ("backup.key", BACKUP_KEY, 0o600)):
        p = etc / name
        if p.exists():
            p.chmod(0o600)
        p.write_bytes(data)
        p.chmod(mode)
    return etc / "cluster.toml"


@pytest.fixture
def staging(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    return root


@pytest.fixture
def psa_root(staging):
    write_cluster(staging)
    return staging


def snapshot(root):
    """Every path under root with its bytes, mode and mtime: to prove nothing changed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            data = p.read_bytes() if p.is_file() and not p.is_symlink() else None
            out[str(p.relative_to(root))] = (data, st.st_mode, st.st_mtime_ns)
    return out


@pytest.fixture
def run_install():
    from installer.cli.install import main

    def run(*args):
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return run


@pytest.fixture
def run_dbrs():
    from installer.cli import main

    def run(*args, input=None):
        return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)

    return run


def need(tool):
    return pytest.mark.skipif(shutil.which(tool) is None, reason=f"{tool} not installed")


# ------------------------------------------------------- where claims were shown

_TIERS = {}


def pytest_runtest_logreport(report):
    """Remember, per test, whether it ran on real systemd hosts or is kept for a real mongod."""
    if report.when == "call" or (report.when == "setup" and report.skipped):
        _TIERS[report.nodeid] = report.outcome


def pytest_collection_modifyitems(config, items):
    config._dbrs_markers = {item.nodeid: {m.name for m in item.iter_markers()} for item in items}


def pytest_terminal_summary(terminalreporter, config):
    """Name what was proved on real systemd hosts here and what only the Vagrant VMs can show."""
    markers = getattr(config, "_dbrs_markers", {})
    hosts = sorted(n for n, m in markers.items() if "hosts" in m and n in _TIERS)
    vagrant = sorted(n for n, m in markers.items() if "real_mongod" in m)
    if not hosts and not vagrant:
        return
    tr = terminalreporter
    tr.section("where the claims were shown")
    tr.write_line(f"on real systemd hosts (nspawn): {sum(_TIERS[n] == 'passed' for n in hosts)} passed, "
                  f"{sum(_TIERS[n] == 'failed' for n in hosts)} failed, {sum(_TIERS[n] == 'skipped' for n in hosts)} skipped")
    for n in hosts:
        tr.write_line(f"  {_TIERS[n]:8} {n}")
    tr.write_line(f"Vagrant-only (need a real mongod, DBRS_REAL_MONGOD=1): {len(vagrant)}")
    for n in vagrant:
        tr.write_line(f"  {_TIERS.get(n, 'not run'):8} {n}")
