"""`dbrs tls status` and `dbrs tls client-bundle`: days left per certificate, files for an application host."""

import stat
import time

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from installer import pki
from tests.conftest import snapshot

PSA = ("--primary", "10.0.0.11", "--secondary", "10.0.0.12", "--arbiter", "10.0.0.13")


@pytest.fixture
def etc(staging, run_dbrs):
    r = run_dbrs("init", "--root", str(staging), *PSA)
    assert r.exit_code == 0, r.output
    return staging / "etc/dbrs"


def ca_of(etc):
    return pki.Issued((etc / "ca.key").read_bytes(), (etc / "ca.pem").read_bytes())


def put_member(etc, name, issued):
    (etc / name).mkdir(exist_ok=True)
    (etc / name / "member.pem").write_bytes(issued.key_file())


def test_status_lists_days_left_and_passes(etc, run_dbrs):
    put_member(etc, "mongod1", pki.issue_member(ca_of(etc), "dbrs", "10.0.0.11", [], time.time()))
    r = run_dbrs("tls", "status", "--config", str(etc / "cluster.toml"))
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].startswith("OK   CA: 3650 days left (") and lines[0].endswith("/etc/dbrs/ca.pem)")
    assert lines[1].startswith("OK   mongod1: 730 days left (") and len(lines) == 2


def test_status_fails_30_days_before_expiry(etc, run_dbrs):
    now = time.time()
    put_member(etc, "mongod1", pki.issue_member(ca_of(etc), "dbrs", "10.0.0.11", [], now - 700 * 86400, days=720))
    r = run_dbrs("tls", "status", "--config", str(etc / "cluster.toml"))
    assert r.exit_code == 1
    assert "FAIL mongod1: expires in 20 days (renew before 30 days are left)" in r.output
    assert "error: a certificate needs attention" in r.output


def test_status_fails_on_expired_foreign_or_missing_certificates(etc, run_dbrs):
    now = time.time()
    put_member(etc, "mongod1", pki.issue_member(ca_of(etc), "dbrs", "10.0.0.11", [], now - 40 * 86400, days=30))
    put_member(etc, "mongod2", pki.issue_member(pki.new_ca("dbrs", now), "dbrs", "10.0.0.12", [], now))
    (etc / "mongod3").mkdir()
    r = run_dbrs("tls", "status", "--config", str(etc / "cluster.toml"))
    assert r.exit_code == 1
    assert "FAIL mongod1: EXPIRED 10 days ago" in r.output
    assert "FAIL mongod2: signed by another CA than the cluster's" in r.output
    assert "FAIL mongod3: no certificate, and TLS is on" in r.output    # init turned TLS on

    spec = etc / "cluster.toml"
    spec.write_text(spec.read_text().replace('tls = "required"', 'tls = "off"'))
    r = run_dbrs("tls", "status", "--config", str(spec))
    assert "--   mongod3: no certificate (TLS is off)" in r.output


def test_a_missing_member_certificate_fails_when_tls_is_on(etc, run_dbrs, monkeypatch):
    from installer import spec as specmod

    real = specmod.load

    def with_tls(path):
        s = real(path)
        object.__setattr__(s.cluster, "tls", "required")
        return s

    monkeypatch.setattr(specmod, "load", with_tls)
    (etc / "mongod1").mkdir()
    r = run_dbrs("tls", "status", "--config", str(etc / "cluster.toml"))
    assert r.exit_code == 1 and "FAIL mongod1: no certificate, and TLS is on: mongod cannot start" in r.output


def test_status_without_a_ca_says_so_in_one_line(etc, run_dbrs):
    (etc / "ca.pem").unlink()
    r = run_dbrs("tls", "status", "--config", str(etc / "cluster.toml"))
    assert r.exit_code == 1
    assert r.output.strip().count("\n") == 0 and "ca.pem is missing" in r.output and "dbrs init" in r.output


def test_client_bundle_writes_the_ca_and_a_client_certificate(etc, run_dbrs, tmp_path):
    dest = tmp_path / "app"
    r = run_dbrs("tls", "client-bundle", str(dest), "--client-cert", "shop-app", "--config", str(etc / "cluster.toml"))
    assert r.exit_code == 0, r.output
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700
    assert (dest / "ca.pem").read_bytes() == (etc / "ca.pem").read_bytes()
    assert stat.S_IMODE((dest / "ca.pem").stat().st_mode) == 0o644
    assert stat.S_IMODE((dest / "shop-app.pem").stat().st_mode) == 0o600
    pem = (dest / "shop-app.pem").read_bytes()
    assert b"PRIVATE KEY" in pem and pki.signed_by(pem, (etc / "ca.pem").read_bytes())
    cert = x509.load_pem_x509_certificate(pem)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    assert "tls=true&tlsCAFile=DIR/ca.pem&tlsCertificateKeyFile=DIR/shop-app.pem" in r.output


def test_client_bundle_without_a_client_needs_no_ca_key(etc, run_dbrs, tmp_path):
    (etc / "ca.key").unlink()
    r = run_dbrs("tls", "client-bundle", str(tmp_path / "app"), "--config", str(etc / "cluster.toml"))
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "app").iterdir()) == ["ca.pem"]
    r = run_dbrs("tls", "client-bundle", str(tmp_path / "app2"), "--client-cert", "x", "--config",
                 str(etc / "cluster.toml"))
    assert r.exit_code == 1 and "ca.key is missing" in r.output and "`dbrs init` ran on" in r.output
    assert not (tmp_path / "app2").exists()


@pytest.mark.parametrize("name", ["../evil", "a" * 65, ".x", "x y"])
def test_client_bundle_refuses_a_bad_name(etc, run_dbrs, tmp_path, name):
    r = run_dbrs("tls", "client-bundle", str(tmp_path / "app"), "--client-cert", name, "--config",
                 str(etc / "cluster.toml"))
    assert r.exit_code == 2 and "--client-cert" in r.output and not (tmp_path / "app").exists()


def test_client_bundle_never_overwrites_a_client_key(etc, run_dbrs, tmp_path):
    dest = tmp_path / "app"
    args = ("tls", "client-bundle", str(dest), "--client-cert", "shop", "--config", str(etc / "cluster.toml"))
    assert run_dbrs(*args).exit_code == 0
    before = snapshot(dest)
    r = run_dbrs(*args)
    assert r.exit_code == 2 and "shop.pem exists" in r.output
    assert snapshot(dest) == before


def _foreign_key():
    return pki.new_ca("other", time.time()).key_pem


@pytest.mark.parametrize("key", [_foreign_key, lambda: b"-----BEGIN PRIVATE KEY-----\nMIGH", lambda: b""],
                         ids=["foreign", "truncated", "empty"])
def test_client_bundle_with_a_broken_ca_key_writes_nothing_and_says_so(etc, run_dbrs, tmp_path, key):
    """Found by the black-box attack: a foreign ca.key gave a certificate no member accepts (exit 0), a
    truncated one a traceback after ca.pem was already written."""
    (etc / "ca.key").write_bytes(key())
    dest = tmp_path / "app"
    r = run_dbrs("tls", "client-bundle", str(dest), "--client-cert", "shop", "--config", str(etc / "cluster.toml"))
    assert r.exit_code == 1, r.output
    assert r.output.startswith(f"error: {etc / 'ca.key'}: the cluster CA key") and r.output.count("\n") == 1
    assert "nothing was written" in r.output and "Traceback" not in r.output
    assert not dest.exists()


def test_client_bundle_into_a_folder_it_cannot_make_is_one_line(etc, run_dbrs):
    r = run_dbrs("tls", "client-bundle", "/proc/dbrs-no/such", "--config", str(etc / "cluster.toml"))
    assert r.exit_code == 1 and r.output.startswith("error: DIR /proc/dbrs-no/such: ") and r.output.count("\n") == 1


@pytest.mark.parametrize("garbage", [b"garbage\n", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
def test_status_with_a_garbage_ca_file_says_so_without_a_traceback(etc, run_dbrs, garbage):
    """Found by the black-box attack: the daily dbrs-certs check would have mailed a traceback."""
    put_member(etc, "mongod1", pki.issue_member(ca_of(etc), "dbrs", "10.0.0.11", ["10.0.0.11"], time.time()))
    (etc / "ca.pem").write_bytes(garbage)
    r = run_dbrs("tls", "status", "--config", str(etc / "cluster.toml"))
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output and "mongod1" in r.output and "cannot be checked: ca.pem" in r.output


def test_status_during_a_ca_roll_trusts_the_old_ca_too(etc, run_dbrs):
    """Found by the black-box attack: while ca.pem holds new + old, the daily check failed every member."""
    old = ca_of(etc)
    put_member(etc, "mongod1", pki.issue_member(old, "dbrs", "10.0.0.11", ["10.0.0.11"], time.time()))
    (etc / "ca.pem").write_bytes(pki.ca_file(pki.new_ca("dbrs", time.time()), old))
    r = run_dbrs("tls", "status", "--config", str(etc / "cluster.toml"))
    assert r.exit_code == 0, r.output
    assert "OK   mongod1" in r.output


def test_status_fails_a_member_pem_without_its_key(etc, run_dbrs):
    """Found by the black-box attack: a member.pem whose key is lost or another's passed status (OK), and mongod
    would refuse it at the next restart."""
    issued = pki.issue_member(ca_of(etc), "dbrs", "10.0.0.11", ["10.0.0.11"], time.time())
    (etc / "mongod1").mkdir()
    (etc / "mongod1" / "member.pem").write_bytes(issued.cert_pem)
    r = run_dbrs("tls", "status", "--config", str(etc / "cluster.toml"))
    assert r.exit_code == 1 and "FAIL mongod1: its private key is missing" in r.output, r.output
    other = pki.issue_member(ca_of(etc), "dbrs", "10.0.0.11", ["10.0.0.11"], time.time())
    (etc / "mongod1" / "member.pem").write_bytes(issued.cert_pem + other.key_pem)
    r = run_dbrs("tls", "status", "--config", str(etc / "cluster.toml"))
    assert r.exit_code == 1 and "belongs to another certificate" in r.output, r.output


def test_tls_help_imports_nothing_heavy():
    import subprocess
    import sys

    code = ("import sys; from installer.cli import main\n"
            "try:\n    main(['tls', 'client-bundle', '--help'])\nexcept SystemExit:\n    pass\n"
            "print([m for m in ('pymongo', 'bson', 'jinja2', 'cryptography') if m in sys.modules])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout


MISSING_CA_FIX = "sudo dbrs-install --bundle bundle.dbrs --passphrase-file FILE"


@pytest.mark.parametrize("argv", [("status",), ("tls", "status"), ("user", "list"), ("reconfigure",), ("stepdown",)])
def test_tls_on_without_the_ca_file_is_one_line_naming_it_and_the_fix(etc, run_dbrs, argv):
    """Every command that dials the set, and the certificate check, stops before pymongo sees a missing CA file."""
    (etc / "ca.pem").unlink()
    r = run_dbrs(*argv, "--config", str(etc / "cluster.toml"))
    assert r.exit_code == 1, r.output
    [line] = r.output.strip().splitlines()
    assert f"{etc / 'ca.pem'} is missing" in line and MISSING_CA_FIX in line and "Traceback" not in line
