"""The Vagrant tier's TLS checks (tests/infra/tls_checks.py) against the stand-in mongod in a real systemd host.

The same checks run against a real mongod in tests/infra/test_tls_real.py; here they prove the checks
themselves work (systemd-run, openssl, the raw hello) and that the stand-in answers as they expect.
"""

from __future__ import annotations

import importlib.util
import sys

import pytest

from . import product
from .testbed import Testbed, TestbedError, cleanup_stale

pytestmark = pytest.mark.hosts


def tls_checks():
    name = "dbrs_infra_tls_checks"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, product.REPO / "tests" / "infra" / "tls_checks.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


checks = tls_checks()


@pytest.fixture(scope="module")
def machine():
    cleanup_stale()
    try:
        rootfs = product.member_rootfs()
    except (TestbedError, OSError) as e:
        pytest.skip(f"tier-3 member rootfs cannot be built: {e}")
    wheels = product.wheelhouse()
    tb = Testbed(rootfs=rootfs)
    try:
        h = tb.boot({"tls": "10.77.0.60"})["tls"]
        product.install_product(h, wheels)
        h.run("adduser --system --group --no-create-home --home /nonexistent mongodb")
        yield h
    finally:
        tb.close()


@pytest.fixture
def bench(machine):
    b = checks.Bench(machine.testinfra())
    yield b
    b.close()


@pytest.mark.parametrize("check", checks.CHECKS, ids=lambda c: c.__name__)
def test_tls(bench, check):
    check(bench)


@pytest.mark.parametrize("change, message", checks.BAD_SETTINGS)
def test_standin_refuses_bad_settings_under_systemd(bench, change, message):
    checks.check_bad_setting_is_refused(bench, change, message)
