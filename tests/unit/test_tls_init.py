"""`dbrs init` makes the cluster CA: key root 0600 on the init host and inside the sealed bundle, certificate 0444."""

import stat

import pytest

from installer import cluster, pki, secrets
from tests.conftest import snapshot

PSA = ("--primary", "10.0.0.11", "--secondary", "10.0.0.12", "--arbiter", "10.0.0.13")


def test_init_writes_the_ca_and_seals_it_into_the_bundle(staging, run_dbrs, tmp_path):
    pw = tmp_path / "pass"
    pw.write_text("correct horse battery\n")
    r = run_dbrs("init", "--root", str(staging), "--name", "shop", "--passphrase-file", str(pw), *PSA)
    assert r.exit_code == 0, r.output
    etc = staging / "etc/dbrs"
    assert stat.S_IMODE((etc / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((etc / "ca.pem").stat().st_mode) == 0o444
    assert f"wrote {etc / 'ca.key'}" in r.output and f"wrote {etc / 'ca.pem'}" in r.output
    info = pki.inspect((etc / "ca.pem").read_bytes())
    assert info.is_ca and "shop" in info.subject
    ca = pki.Issued((etc / "ca.key").read_bytes(), (etc / "ca.pem").read_bytes())
    leaf = pki.issue_member(ca, "shop", "10.0.0.11", [], 1_790_000_000.0)   # the key signs for the certificate
    assert pki.signed_by(leaf.cert_pem, ca.cert_pem)
    bundle = secrets.open_bundle((etc / "bundle.dbrs").read_bytes(), "correct horse battery")
    assert cluster.ca_from_bundle(bundle) == ca


@pytest.mark.parametrize("name", ["ca.key", "ca.pem"])
def test_an_existing_ca_refuses_init_without_force(staging, run_dbrs, name):
    """A new CA would make every member certificate of the running cluster untrusted."""
    etc = staging / "etc/dbrs"
    etc.mkdir(parents=True)
    (etc / name).write_bytes(b"OLD\n")
    before = snapshot(staging)
    r = run_dbrs("init", "--root", str(staging), *PSA)
    assert r.exit_code == 2 and f"{etc / name} exists" in r.output
    assert snapshot(staging) == before


def test_a_bundle_from_before_the_ca_has_none():
    sealed = secrets.seal_bundle(b"x", secrets.generate(), "right")
    bundle = secrets.open_bundle(sealed, "right")
    assert cluster.ca_from_bundle(bundle) is None and set(bundle.files) == {"secrets"}


def test_member_files_get_the_modes_mongod_needs(staging):
    """member.pem holds the key: mongodb 0400 (root's under --root); ca.pem 0444; a change restarts that member."""
    from installer import tls
    from installer.fsutil import write_file

    ca = pki.new_ca("dbrs", 1_790_000_000.0)
    issued, why = tls.member_certificate(ca, "dbrs", "mongod1.example", ["10.0.0.11"], None, 1_790_000_000.0)
    assert why == "no certificate yet"
    items = cluster.member_tls_items("/etc/dbrs", {"mongod1": issued}, ca.cert_pem, live=True)
    assert [(i.path, i.mode, i.owner, i.secret, i.notify) for i in items] == [
        ("/etc/dbrs/ca.pem", 0o444, "root", False, ()),
        ("/etc/dbrs/mongod1/member.pem", 0o400, "mongodb", True, ("dbrs-mongod@mongod1.service",))]
    for item in cluster.member_tls_items("/etc/dbrs", {"mongod1": issued}, ca.cert_pem, live=False):
        write_file(str(staging), item.path, item.content, item.mode, item.owner, item.group, chown=False)
    assert stat.S_IMODE((staging / "etc/dbrs/mongod1/member.pem").stat().st_mode) == 0o400
    assert stat.S_IMODE((staging / "etc/dbrs/ca.pem").stat().st_mode) == 0o444
    pem = (staging / "etc/dbrs/mongod1/member.pem").read_bytes()
    assert pem == issued.cert_pem + issued.key_pem
    # the next run keeps it
    assert tls.member_certificate(ca, "dbrs", "mongod1.example", ["10.0.0.11"], pem, 1_790_000_000.0) == (None, None)


def test_init_turns_tls_on_for_a_new_cluster_and_an_old_spec_stays_off(staging, run_dbrs, tmp_path):
    """New clusters get requireTLS (the issue's default); a spec written before the key existed keeps plaintext,
    since turning TLS on under running members is the rolling enable's job, not a silent default."""
    from installer import spec as specmod

    r = run_dbrs("init", "--root", str(staging), *PSA)
    assert r.exit_code == 0, r.output
    text = (staging / "etc/dbrs/cluster.toml").read_text()
    assert '\ntls = "required"' in text
    assert specmod.loads(text).cluster.tls == "required"
    old = text.replace('tls = "required"', "").replace("tls =", "#")
    assert specmod.loads(old).cluster.tls == "off"
