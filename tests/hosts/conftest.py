"""Fixtures for tier 3 (real systemd hosts in systemd-nspawn). Everything here is skipped, with one
reason line, where the bed cannot work: not root, tools missing, or the rootfs cannot be built.

- ``rootfs`` (session): the cached Debian 12 rootfs; leftovers of killed earlier runs are removed first.
- ``testbed`` (function): a factory ``testbed(**kw) -> Testbed``; every bed it made is closed after the
  test, whether the test passed, failed or was interrupted.
"""

from __future__ import annotations

import os

import pytest

from .testbed import Testbed, TestbedError, cleanup_stale, ensure_rootfs, missing_tools


def pytest_configure(config):
    config.addinivalue_line("markers", "hosts: boots real systemd hosts (systemd-nspawn); root only")


def _unusable() -> str | None:
    if os.geteuid() != 0:
        return "tier-3 host tests need root (systemd-nspawn, netns, overlay mounts)"
    missing = missing_tools()
    if missing:
        return f"tier-3 host tests need {', '.join(missing)} (apt: systemd-container debootstrap util-linux iproute2)"
    if not os.path.isdir("/sys/fs/cgroup"):
        return "tier-3 host tests need a mounted /sys/fs/cgroup"
    return None


_REASON = _unusable()


def pytest_collection_modifyitems(config, items):
    """Mark every test under tests/hosts ``hosts``; skip them all with one reason when the bed can't run."""
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here + os.sep):
            item.add_marker(pytest.mark.hosts)
            if _REASON:
                item.add_marker(pytest.mark.skip(reason=_REASON))


_rootfs_error: str | None = None


@pytest.fixture(scope="session")
def rootfs(request):
    """The cached rootfs (built once, ≈1 min). Skips the host tests if it cannot be built."""
    global _rootfs_error
    if _rootfs_error:
        pytest.skip(_rootfs_error)
    cleanup_stale()
    try:
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        return ensure_rootfs(log=(lambda m: reporter.write_line(m)) if reporter else None)
    except (TestbedError, OSError) as e:
        _rootfs_error = f"tier-3 rootfs cannot be built: {e}"
        pytest.skip(_rootfs_error)


@pytest.fixture
def testbed(rootfs):
    """Factory: ``tb = testbed(); hosts = tb.boot({"m1": "10.77.0.11"})``. Closed after the test."""
    beds: list[Testbed] = []

    def make(**kw) -> Testbed:
        bed = Testbed(rootfs=rootfs, **kw)
        beds.append(bed)
        return bed

    try:
        yield make
    finally:
        for bed in beds:
            bed.close()
