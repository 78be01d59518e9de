"""The TLS checks of tls_checks.py against a real mongod (Vagrant tier, marked real_mongod)."""

from __future__ import annotations

import pytest

from . import tls_checks

pytestmark = pytest.mark.real_mongod


@pytest.fixture
def bench(host):
    if not host.file("/usr/bin/mongod").exists:
        pytest.skip("no mongod on this host")
    b = tls_checks.Bench(host)
    yield b
    b.close()


@pytest.mark.parametrize("check", tls_checks.CHECKS, ids=lambda c: c.__name__)
def test_tls(bench, check):
    check(bench)


@pytest.mark.parametrize("change, message", tls_checks.BAD_SETTINGS)
def test_mongod_refuses_what_the_standin_refuses(bench, change, message):
    tls_checks.check_bad_setting_is_refused(bench, change, message)
