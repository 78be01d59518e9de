"""The cluster CA and member certificates: contents MongoDB checks, and real TLS handshakes against them."""

import socket
import ssl
import subprocess
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from installer import pki, tls

NOW = 1_790_000_000.0


@pytest.fixture(scope="module")
def ca():
    return pki.new_ca("dbrs", NOW)


@pytest.fixture(scope="module")
def member(ca):
    return pki.issue_member(ca, "dbrs", "mongod1.example", ["10.0.0.11", "127.0.0.1", "localhost"], NOW)


def load(pem):
    return x509.load_pem_x509_certificate(pem)


def ext(cert, cls):
    return cert.extensions.get_extension_for_class(cls).value


def test_ca_may_sign_leaves_only(ca):
    c = load(ca.cert_pem)
    bc = ext(c, x509.BasicConstraints)
    assert bc.ca and bc.path_length == 0
    ku = ext(c, x509.KeyUsage)
    assert ku.key_cert_sign and ku.crl_sign and not ku.digital_signature
    assert isinstance(c.public_key().curve, ec.SECP256R1)
    assert c.subject == c.issuer
    assert pki.inspect(ca.cert_pem).days_left(NOW) == pytest.approx(pki.CA_DAYS, abs=0.01)


def test_member_certificate_has_what_mongod_and_clients_check(ca, member):
    c = load(member.cert_pem)
    san = ext(c, x509.SubjectAlternativeName)
    assert san.get_values_for_type(x509.DNSName) == ["mongod1.example", "localhost"]
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.11", "127.0.0.1"]
    eku = ext(c, x509.ExtendedKeyUsage)
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    ku = ext(c, x509.KeyUsage)
    assert ku.digital_signature and not ku.key_cert_sign
    assert not ext(c, x509.BasicConstraints).ca
    assert c.issuer == load(ca.cert_pem).subject
    assert isinstance(load_pem_private_key(member.key_pem, None).curve, ec.SECP256R1)
    assert c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "mongod1.example"
    assert pki.inspect(member.cert_pem).days_left(NOW) == pytest.approx(pki.LEAF_DAYS, abs=0.01)
    assert member.key_file().startswith(member.cert_pem) and member.key_file().endswith(member.key_pem)


def test_members_share_o_ou_dc_and_clients_do_not(ca, member):
    """MongoDB's x.509 membership rule: same O/OU/DC on every member, and a client certificate must differ."""
    other = pki.issue_member(ca, "dbrs", "mongod2.example", ["10.0.0.12"], NOW)
    client = pki.issue_client(ca, "dbrs", "app", NOW)

    def org(pem):
        s = load(pem).subject
        return [(a.oid, a.value) for a in s if a.oid != NameOID.COMMON_NAME]

    assert org(member.cert_pem) == org(other.cert_pem) and org(member.cert_pem)
    assert org(client.cert_pem) != org(member.cert_pem)
    assert set(ext(load(client.cert_pem), x509.ExtendedKeyUsage)) == {ExtendedKeyUsageOID.CLIENT_AUTH}


def test_leaf_never_outlives_its_ca():
    short_ca = pki.new_ca("dbrs", NOW, days=10)
    leaf = pki.issue_member(short_ca, "dbrs", "h", [], NOW)
    assert pki.inspect(leaf.cert_pem).days_left(NOW) == pytest.approx(10, abs=0.01)


def test_expiry_problems_say_how_long(member, ca):
    """One path judges expiry (tls.certificate_state, used by status, the daily check and rotate)."""
    assert tls.certificate_state("mongod1", "p", member.cert_pem, ca.cert_pem, NOW)[3] is None
    soon = NOW + (pki.LEAF_DAYS - 12) * 86400
    assert tls.certificate_state("mongod1", "p", member.cert_pem, ca.cert_pem, soon)[3] == \
        "expires in 12 days (renew before 30 days are left)"
    late = NOW + (pki.LEAF_DAYS + 3) * 86400
    assert "EXPIRED 3 days ago" in tls.certificate_state("mongod1", "p", member.cert_pem, ca.cert_pem, late)[3]
    assert not hasattr(pki, "expiry_problem")


def test_ca_file_holds_old_and_new_ca_during_a_roll(ca):
    new = pki.new_ca("dbrs", NOW + 1)
    both = pki.ca_file(ca, new, ca)
    assert both == ca.cert_pem + new.cert_pem


def test_answers_to(member):
    info = pki.inspect(member.cert_pem)
    assert info.answers_to("MONGOD1.example") and info.answers_to("10.0.0.11")
    assert not info.answers_to("10.0.0.12") and not info.answers_to("mongod2.example")


# ------------------------------------------------------------------ real handshakes

class Server:
    """A TLS server with the issued certificate (Python's ssl, as the stand-in mongod will serve)."""

    def __init__(self, tmp_path, issued):
        kf = tmp_path / "member.pem"
        kf.write_bytes(issued.key_file())
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self.ctx.load_cert_chain(kf)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as s:
                    s.sendall(b"hello")
                    s.unwrap()          # close_notify: OpenSSL 3 calls a bare close an error
            except (ssl.SSLError, OSError):
                pass

    def close(self):
        self.sock.close()


@pytest.fixture
def server(tmp_path, member):
    s = Server(tmp_path, member)
    yield s
    s.close()


def client_ctx(ca_pem):
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    return ctx


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost"])
def test_python_client_verifies_by_ip_and_name(server, ca, name):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        with client_ctx(ca.cert_pem).wrap_socket(raw, server_hostname=name) as s:
            assert s.recv(5) == b"hello"


def test_certificate_for_another_host_is_rejected(server, ca):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError, match="match|mismatch"):
            client_ctx(ca.cert_pem).wrap_socket(raw, server_hostname="mongod2.example")


def test_another_clusters_ca_is_rejected(server):
    stranger = pki.new_ca("other", NOW)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            client_ctx(stranger.cert_pem).wrap_socket(raw, server_hostname="127.0.0.1")


def test_openssl_s_client_verifies_the_chain_and_ip(server, ca, tmp_path):
    caf = tmp_path / "ca.pem"
    caf.write_bytes(ca.cert_pem)
    base = ["openssl", "s_client", "-connect", f"127.0.0.1:{server.port}", "-CAfile", str(caf),
            "-verify_return_error", "-brief"]
    ok = subprocess.run(base + ["-verify_ip", "127.0.0.1"], input=b"", capture_output=True, timeout=20)
    assert ok.returncode == 0, ok.stderr
    assert b"Verification: OK" in ok.stderr
    bad = subprocess.run(base + ["-verify_ip", "10.9.9.9"], input=b"", capture_output=True, timeout=20)
    assert bad.returncode != 0 and b"IP address mismatch" in bad.stderr


def test_expired_certificate_fails_the_handshake_and_is_named_by_status(tmp_path, ca):
    old = pki.issue_member(ca, "dbrs", "mongod1.example", ["127.0.0.1"], time.time() - 40 * 86400, days=30)
    assert "EXPIRED" in tls.certificate_state("mongod1", "p", old.cert_pem, ca.cert_pem, time.time())[3]
    s = Server(tmp_path, old)
    try:
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as raw:
            with pytest.raises(ssl.SSLCertVerificationError, match="expired"):
                client_ctx(ca.cert_pem).wrap_socket(raw, server_hostname="127.0.0.1")
    finally:
        s.close()
