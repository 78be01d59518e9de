"""dbrs-install with cluster.tls on: each local member gets a certificate from the cluster CA and net.tls."""

import stat

from installer import pki

from ..conftest import PSA, snapshot, write_cluster

TLS_PSA = PSA.replace('write_concern = "majority"\n', 'write_concern = "majority"\ntls = "required"\n', 1)


def _with_ca(root, spec=TLS_PSA):
    write_cluster(root, spec)
    ca = pki.new_ca("dbrs", 1.8e9)
    etc = root / "etc/dbrs"
    (etc / "ca.key").write_bytes(ca.key_pem)
    (etc / "ca.pem").write_bytes(ca.cert_pem)
    return ca


def test_required_issues_member_certificate_and_renders_net_tls(staging, run_install):
    ca = _with_ca(staging)
    r = run_install("--root", str(staging), "--role", "secondary")
    assert r.exit_code == 0, r.output
    pem = staging / "etc/dbrs/mongod2/member.pem"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o400
    assert pki.signed_by(pem.read_bytes(), ca.cert_pem)
    assert "10.0.0.12" in [str(i) for i in pki.inspect(pem.read_bytes()).ips]
    conf = (staging / "etc/dbrs/mongod2/mongod.conf").read_text()
    assert "mode: requireTLS" in conf
    assert "certificateKeyFile: /etc/dbrs/mongod2/member.pem" in conf


def test_second_run_keeps_the_certificate(staging, run_install):
    _with_ca(staging)
    assert run_install("--root", str(staging), "--role", "secondary").exit_code == 0
    before = (staging / "etc/dbrs/mongod2/member.pem").read_bytes()
    r = run_install("--root", str(staging), "--role", "secondary")
    assert r.exit_code == 0, r.output
    assert "\n0 changed, " in r.output
    assert (staging / "etc/dbrs/mongod2/member.pem").read_bytes() == before


def test_required_without_ca_exits_2_and_writes_nothing(staging, run_install):
    write_cluster(staging, TLS_PSA)
    r = run_install("--root", str(staging), "--role", "secondary")
    assert r.exit_code == 2, r.output
    assert "ca.key" in r.output
    assert not (staging / "etc/dbrs/mongod2").exists()


def test_a_host_without_ca_key_reruns_while_its_certificates_are_good(staging, run_install):
    """Only the init host keeps ca.key: the documented re-run on the other hosts (edit cluster.toml,
    dbrs-install) stopped with 'no cluster CA' once new clusters turned TLS on (found by the hosts tier)."""
    _with_ca(staging)
    assert run_install("--root", str(staging), "--role", "secondary").exit_code == 0
    (staging / "etc/dbrs/ca.key").unlink()
    r = run_install("--root", str(staging), "--role", "secondary")
    assert r.exit_code == 0, r.output
    assert "\n0 changed, " in r.output
    (staging / "etc/dbrs/mongod2/member.pem").unlink()
    before = snapshot(staging)
    r = run_install("--root", str(staging), "--role", "secondary")
    assert r.exit_code == 2, r.output
    assert "member mongod2: needs a new certificate and this host has no /etc/dbrs/ca.key" in r.output
    assert snapshot(staging) == before


def test_a_ca_key_that_is_not_the_cas_is_refused_before_anything_changes(staging, run_install):
    """A member certificate signed by a stray key verifies nowhere: at its restart the member would leave the set."""
    _with_ca(staging)
    (staging / "etc/dbrs/ca.key").write_bytes(pki.new_ca("dbrs", 1.8e9).key_pem)
    before = snapshot(staging)
    r = run_install("--root", str(staging), "--role", "secondary")
    assert r.exit_code == 2, r.output
    assert "cluster CA: the cluster CA key does not belong to the CA certificate" in r.output
    assert snapshot(staging) == before


def test_a_garbage_ca_file_is_one_line_and_changes_nothing(staging, run_install):
    """Found by the black-box attack: a traceback from the certificate check."""
    _with_ca(staging)
    (staging / "etc/dbrs/ca.pem").write_bytes(b"garbage\n")
    before = snapshot(staging)
    r = run_install("--root", str(staging), "--role", "secondary")
    assert r.exit_code == 2, r.output
    assert r.output.startswith(f"error: {staging}/etc/dbrs/ca.pem: holds no certificate") and r.output.count("\n") == 1
    assert snapshot(staging) == before


def test_a_member_pem_that_lost_its_key_is_issued_again(staging, run_install):
    _with_ca(staging)
    assert run_install("--root", str(staging), "--role", "secondary").exit_code == 0
    pem = staging / "etc/dbrs/mongod2/member.pem"
    cert_only = pki.split_pem(pem.read_bytes())[0]
    pem.chmod(0o600)
    pem.write_bytes(cert_only)
    r = run_install("--root", str(staging), "--role", "secondary")
    assert r.exit_code == 0, r.output
    assert pki.key_matches(pem.read_bytes())


def test_off_renders_no_tls_and_issues_nothing(staging, run_install):
    _with_ca(staging, PSA)
    assert run_install("--root", str(staging), "--role", "secondary").exit_code == 0
    assert not (staging / "etc/dbrs/mongod2/member.pem").exists()
    assert "tls:" not in (staging / "etc/dbrs/mongod2/mongod.conf").read_text()


def test_mongo_express_env_names_the_ca_under_required(staging, run_install):
    _with_ca(staging, TLS_PSA + "\n[mongo_express]\nenabled = true\nport = 9081\n")
    r = run_install("--root", str(staging), "--role", "primary")
    assert r.exit_code == 0, r.output
    env = (staging / "etc/dbrs/mongo-express.env").read_text()
    assert "ME_CONFIG_MONGODB_SSL=true" in env
    assert "ME_CONFIG_MONGODB_CA_FILE=/etc/dbrs/ca.pem" in env


def test_uri_carries_tls_and_the_ca_file_under_required(tmp_path, run_dbrs):
    config = write_cluster(tmp_path, TLS_PSA)
    r = run_dbrs("uri", "--config", str(config))
    assert r.exit_code == 0, r.output
    first = r.output.splitlines()[0]
    assert first.endswith("&tls=true&tlsCAFile=/etc/dbrs/ca.pem"), first
    plain = run_dbrs("uri", "--config", str(write_cluster(tmp_path / "off", PSA)))
    assert "tls" not in plain.output


def test_uri_tells_where_an_application_host_gets_the_ca(tmp_path, run_dbrs):
    """The tlsCAFile path is this host's: the note (stderr, so the two strings stay pipeable) names the command
    that writes the CA for an application host."""
    r = run_dbrs("uri", "--config", str(write_cluster(tmp_path, TLS_PSA)))
    assert len(r.stdout.splitlines()) == 2
    assert "dbrs tls client-bundle DIR" in r.stderr
    plain = run_dbrs("uri", "--config", str(write_cluster(tmp_path / "off", PSA)))
    assert "client-bundle" not in plain.output
