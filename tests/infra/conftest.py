"""Tier 4: the same testinfra checks against any dbrs hosts, chiefly the Vagrant VMs.

Hosts come from testinfra's own `--hosts` (with `--ssh-config`), or from
`DBRS_VAGRANT_SSH_CONFIG=FILE` (the output of `vagrant ssh-config`): every
`Host` in that file becomes a host, and the real_mongod tests get their
DBRS_SSH_CONFIG / DBRS_HOST_<MEMBER> from it. The tier-3 test bed can pass
`--hosts nsenter:///path/to/leader-file` (tests/infra/nsenter_backend.py).

With no hosts, tests that need one skip: testinfra would otherwise check the
machine running pytest. `real_mongod` tests also need DBRS_REAL_MONGOD=1.
"""

from __future__ import annotations

import os

import pytest

from . import nsenter_backend  # noqa: F401  registers the nsenter:// backend for --hosts

SSH_CONFIG_ENV = "DBRS_VAGRANT_SSH_CONFIG"


def ssh_config_hosts(text):
    """Host names of an ssh_config (`vagrant ssh-config` output), without patterns."""
    names = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].lower() == "host":
            names += [n for n in parts[1:] if not any(c in n for c in "*?!")]
    return names


def pytest_configure(config):
    path = os.environ.get(SSH_CONFIG_ENV)
    if not path or config.getoption("hosts", None):
        return
    try:
        names = ssh_config_hosts(open(path, encoding="utf-8").read())
    except OSError as e:
        raise pytest.UsageError(f"{SSH_CONFIG_ENV}={path}: {e.strerror} (write it with `vagrant ssh-config > FILE`)")
    if not names:
        raise pytest.UsageError(f"{SSH_CONFIG_ENV}={path}: no Host entries (write it with `vagrant ssh-config > FILE`)")
    config.option.hosts = ",".join(f"ssh://{n}" for n in names)
    config.option.ssh_config = path
    os.environ.setdefault("DBRS_SSH_CONFIG", path)
    for n in names:
        os.environ.setdefault(f"DBRS_HOST_{n.upper()}", f"ssh://{n}")


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(__file__) + os.sep
    no_hosts = not config.getoption("hosts", None)
    real = os.environ.get("DBRS_REAL_MONGOD") == "1"
    for item in items:
        if not str(item.path).startswith(here):
            continue
        if no_hosts and "host" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.skip(
                reason=f"no hosts: pass --hosts (testinfra) or set {SSH_CONFIG_ENV} to `vagrant ssh-config` output"))
        if item.get_closest_marker("real_mongod") and not real:
            item.add_marker(pytest.mark.skip(reason="real_mongod: runs only against real MongoDB (DBRS_REAL_MONGOD=1)"))


@pytest.fixture(scope="module")
def real():
    """The real replica set of the Vagrant tier: (spec, secrets, spec path), or a skip saying what is missing."""
    if os.environ.get("DBRS_REAL_MONGOD") != "1":
        pytest.skip("needs a real replica set: set DBRS_REAL_MONGOD=1 (the Vagrant helper does)")
    from installer import secrets as secretsmod, spec as specmod
    from installer.replset import connection

    path = os.environ.get("DBRS_CONFIG", "/etc/dbrs/cluster.toml")
    if not os.path.exists(path):
        pytest.skip(f"DBRS_CONFIG {path} does not exist")
    spec = specmod.load(path)
    secrets = secretsmod.load(path, keyfile=True)
    primary, _ = connection.find_primary(spec)
    if primary is None:
        pytest.skip("no member of the real set answers as PRIMARY")
    return spec, secrets, path
