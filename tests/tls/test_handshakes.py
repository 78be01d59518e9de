"""Real TLS handshakes against the stand-in mongod with dbrs-issued certificates and dbrs' rendered mongod.conf."""

from __future__ import annotations

import subprocess
import time

import pymongo
import pytest
from pymongo.errors import ServerSelectionTimeoutError

from installer import pki, tls

from .conftest import NOW


def hello(port, host="127.0.0.1", **kw):
    c = pymongo.MongoClient(host, port, directConnection=True, serverSelectionTimeoutMS=3000,
                            connectTimeoutMS=3000, **kw)
    try:
        return c.admin.command("hello")
    finally:
        c.close()


def s_client(port, cafile, *check):
    return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(cafile),
                           "-verify_return_error", "-brief", *check],
                          input=b"", capture_output=True, timeout=20)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_pymongo_verifies_the_member_by_ip_and_name(members, host):
    m = members().start()
    reply = hello(m.port, host, **tls.client_kwargs("requireTLS", tls.ca_path(m.etc)))
    assert reply["ok"] == 1


def test_openssl_verifies_the_chain_by_ip_and_name(members):
    m = members().start()
    ca = tls.ca_path(m.etc)
    by_ip = s_client(m.port, ca, "-verify_ip", "127.0.0.1")
    assert by_ip.returncode == 0 and b"Verification: OK" in by_ip.stderr, by_ip.stderr[-400:]
    by_name = s_client(m.port, ca, "-verify_hostname", "localhost")
    assert by_name.returncode == 0 and b"Verification: OK" in by_name.stderr, by_name.stderr[-400:]
    wrong = s_client(m.port, ca, "-verify_hostname", "mongod2.example")
    assert wrong.returncode != 0 and b"mismatch" in wrong.stderr.lower()


def test_plaintext_client_is_refused_under_require_tls(members):
    m = members().start()
    with pytest.raises(ServerSelectionTimeoutError):
        hello(m.port)
    log = (m.dir / "log" / "mongod.log").read_text()
    assert "SSLHandshakeFailed" in log


@pytest.mark.parametrize("mode", ["allowTLS", "preferTLS"])
def test_allow_and_prefer_take_both(members, mode):
    m = members(mode=mode).start()
    assert hello(m.port)["ok"] == 1
    assert hello(m.port, **tls.client_kwargs("preferTLS", tls.ca_path(m.etc)))["ok"] == 1


def test_disabled_refuses_a_tls_client(members):
    m = members(mode="disabled").start()
    assert "tls:" not in m.conf.read_text()
    with pytest.raises(ServerSelectionTimeoutError):
        hello(m.port, **tls.client_kwargs("requireTLS", tls.ca_path(m.etc)))


def test_certificate_for_another_host_is_rejected_and_named(members, ca):
    other = pki.issue_member(ca, "dbrs", "mongod2.example", ["10.0.0.12"], NOW)
    m = members(issued=other).start()
    with pytest.raises(ServerSelectionTimeoutError, match="match|mismatch"):
        hello(m.port, **tls.client_kwargs("requireTLS", tls.ca_path(m.etc)))
    problem = tls.certificate_problem(other.cert_pem, ca.cert_pem, tls.member_names("localhost"), NOW)
    assert problem == "it names mongod2.example, 10.0.0.12, not localhost, 127.0.0.1"


def test_certificate_of_another_ca_is_rejected_and_named(members, ca, tmp_path):
    stranger = pki.new_ca("dbrs", NOW)
    foreign = pki.issue_member(stranger, "dbrs", "localhost", tls.member_names("localhost"), NOW)
    m = members(issued=foreign).start()
    with pytest.raises(ServerSelectionTimeoutError, match="certificate verify failed"):
        hello(m.port, **tls.client_kwargs("requireTLS", tls.ca_path(m.etc)))
    assert tls.certificate_problem(foreign.cert_pem, ca.cert_pem, tls.member_names("localhost"), NOW) == \
        "it was signed by another CA"


def test_expired_certificate_is_caught_before_clients_see_it(members, ca):
    old = pki.issue_member(ca, "dbrs", "localhost", tls.member_names("localhost"), time.time() - 40 * 86400, days=30)
    assert tls.certificate_problem(old.cert_pem, ca.cert_pem, tls.member_names("localhost"), time.time()) \
        .startswith("it expired 10 days ago")
    m = members(issued=old).start()
    with pytest.raises(ServerSelectionTimeoutError, match="expired"):
        hello(m.port, **tls.client_kwargs("requireTLS", tls.ca_path(m.etc)))


def test_client_without_certificate_is_refused_unless_allowed(members):
    """mongod with a CAFile asks for a client certificate; dbrs renders allowConnectionsWithoutCertificates."""
    m = members()
    text = m.conf.read_text()
    assert "allowConnectionsWithoutCertificates: true" in text
    m.conf.write_text(text.replace("allowConnectionsWithoutCertificates: true",
                                   "allowConnectionsWithoutCertificates: false"))
    m.start()
    kw = tls.client_kwargs("requireTLS", tls.ca_path(m.etc))
    with pytest.raises(ServerSelectionTimeoutError):
        hello(m.port, **kw)
    assert hello(m.port, tlsCertificateKeyFile=str(m.pem), **kw)["ok"] == 1


def initiate(primary, members_list, **kw):
    c = pymongo.MongoClient("127.0.0.1", primary.port, directConnection=True, serverSelectionTimeoutMS=5000, **kw)
    try:
        cfg = {"_id": "dbrs", "members": [{"_id": i, "host": f"127.0.0.1:{m.port}"} for i, m in enumerate(members_list)]}
        return c.admin.command("replSetInitiate", cfg)
    finally:
        c.close()


def test_members_talk_tls_to_each_other(members):
    """Under requireTLS a member that dialled plaintext would be refused: the quorum check passing proves TLS."""
    a, b = members("mongod1").start(), members("mongod2").start()
    kw = tls.client_kwargs("requireTLS", tls.ca_path(a.etc))
    assert initiate(a, [a, b], **kw)["ok"] == 1
    b_log = (b.dir / "log" / "mongod.log").read_text()
    assert '"user": "__system"' in b_log          # mongod1 got in, and b takes TLS only


def test_member_with_a_foreign_certificate_is_not_let_in(members):
    stranger = pki.new_ca("dbrs", NOW)
    a = members("mongod1").start()
    b = members("mongod2", issued=pki.issue_member(stranger, "dbrs", "localhost", tls.member_names("localhost"),
                                                   NOW)).start()
    kw = tls.client_kwargs("requireTLS", tls.ca_path(a.etc))
    with pytest.raises(pymongo.errors.OperationFailure, match="quorum check failed"):
        initiate(a, [a, b], **kw)


@pytest.mark.parametrize("mode", ["disabled", "allowTLS", "preferTLS", "requireTLS"])
def test_the_member_tells_its_tls_mode_as_enable_reads_it(members, mode):
    """`dbrs tls enable` reads each member's mode with getParameter tlsMode; the stand-in answers it from the
    net.tls.mode of the mongod.conf it started with, and refuses a parameter it does not know."""
    m = members(mode=mode).start()
    kw = tls.client_kwargs("requireTLS", tls.ca_path(m.etc)) if mode == "requireTLS" else {}
    c = pymongo.MongoClient("127.0.0.1", m.port, directConnection=True, serverSelectionTimeoutMS=3000, **kw)
    try:
        assert c.admin.command({"getParameter": 1, "tlsMode": 1})["tlsMode"] == mode
        with pytest.raises(pymongo.errors.OperationFailure, match="no option found to get"):
            c.admin.command({"getParameter": 1, "noSuchParameter": 1})
    finally:
        c.close()
