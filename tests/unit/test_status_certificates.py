"""`dbrs status` shows days left per certificate; --check fails 30 days before one expires."""

from installer import certstore, pki
from installer import spec as specmod

from ..conftest import PSA, write_cluster

TLS_PSA = PSA.replace('write_concern = "majority"\n', 'write_concern = "majority"\ntls = "required"\n', 1)
T0 = 1.8e9
DAY = 86400


def _host(tmp_path):
    config = write_cluster(tmp_path, TLS_PSA)
    ca = pki.new_ca("dbrs", T0)
    (config.parent / "ca.pem").write_bytes(ca.cert_pem)
    (config.parent / "mongod1").mkdir()
    member = pki.issue_member(ca, "dbrs", "10.0.0.11", ["10.0.0.11"], T0)
    (config.parent / "mongod1" / "member.pem").write_bytes(member.key_file())
    return config


def test_days_left_are_shown_and_a_fresh_certificate_passes(tmp_path):
    config = _host(tmp_path)
    lines, problems = certstore.summary(specmod.load(config), config, T0 + DAY)
    assert any(line.startswith("certificate mongod1: 72") and "days left" in line for line in lines), lines
    assert problems == []


def test_check_fails_within_30_days_of_expiry(tmp_path):
    config = _host(tmp_path)
    lines, problems = certstore.summary(specmod.load(config), config, T0 + (pki.LEAF_DAYS - 20) * DAY)
    assert len(problems) == 1 and "mongod1" in problems[0] and "expires in" in problems[0]


def test_tls_off_reports_nothing_even_without_a_ca(tmp_path):
    config = write_cluster(tmp_path, PSA)
    assert certstore.summary(specmod.load(config), config, T0) == ([], [])
