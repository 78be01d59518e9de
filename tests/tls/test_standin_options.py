"""The stand-in mongod refuses the net.tls settings a real mongod refuses (storeSSLServerOptions), exit 2."""

from __future__ import annotations

import pytest


def start_fails(member, replace=None, append=""):
    text = member.conf.read_text()
    for old, new in (replace or {}).items():
        assert old in text
        text = text.replace(old, new)
    member.conf.write_text(text + append)
    member.start(wait=False)
    member.proc.wait(30)
    return member.proc.returncode, member.proc.stderr.read().strip()


@pytest.mark.parametrize("change, message", [
    ({"mode: requireTLS": "mode: requireSSL"}, "BadValue: unsupported value for tlsMode requireSSL"),
    ({"    certificateKeyFile:": "    # certificateKeyFile:"},
     "BadValue: need tlsCertificateKeyFile or certificateSelector when TLS is enabled"),
    ({"mode: requireTLS": "mode: disabled"},
     "BadValue: need to enable TLS via the sslMode/tlsMode flag when using TLS configuration parameters"),
    ({"disabledProtocols: TLS1_0,TLS1_1": "disabledProtocols: SSL3"}, "BadValue: Unrecognized disabledProtocols 'SSL3'"),
    ({"allowConnectionsWithoutCertificates: true": "allowConnectionsWithoutCertificates: yes"},
     "is not a boolean"),
    ({"    CAFile:": "    CAFiles:"}, "Unrecognized option: net.tls.CAFiles"),
])
def test_bad_tls_settings_stop_the_start(members, change, message):
    code, err = start_fails(members(), change)
    assert code == 2 and message in err, err


def test_x509_cluster_auth_needs_tls(members):
    m = members(mode="disabled")
    code, err = start_fails(m, {"  authorization: enabled": "  authorization: enabled\n  clusterAuthMode: x509"})
    assert code == 2 and "BadValue: need to enable TLS via the tlsMode flag" in err


def test_x509_is_refused_under_allow_tls(members):
    m = members(mode="allowTLS")
    code, err = start_fails(m, {"  authorization: enabled": "  authorization: enabled\n  clusterAuthMode: x509"})
    assert code == 2 and "cannot have x.509 cluster authentication in allowTLS mode" in err


def test_unreadable_certificate_file_stops_the_start(members):
    m = members()
    m.pem.unlink()
    code, err = start_fails(m)
    assert code == 2 and "cannot read net.tls.certificateKeyFile" in err and "No such file" in err


def test_a_file_without_a_key_stops_the_start(members):
    m = members()
    m.pem.chmod(0o600)
    m.pem.write_bytes(m.issued.cert_pem)
    code, err = start_fails(m)
    assert code == 2 and "Can not set up PEM key file" in err
