"""The cluster's own certificate authority and the certificates it signs, for TLS between members and clients.

Small teams lose clusters to expired or mismatched certificates, not to
broken cryptography, so this module makes the rules MongoDB checks
explicit and testable: one ECDSA P-256 CA per cluster; member
certificates whose subjects share O, OU and DC (MongoDB's rule for x.509
membership, so `clusterAuthMode: x509` works with the same files), whose
SANs name every host name and IP a client may dial, and whose extended key
usage holds both serverAuth and clientAuth because members dial each other.
Everything here is pure (bytes in, bytes out, the time passed in);
writing the files is the installer's job.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

CA_DAYS = 3650
LEAF_DAYS = 730
ROTATE_DAYS = 30            # `dbrs status --check` and the daily dbrs-certs check fail this long before expiry
ORG = "dbrs"
_BACKDATE = 300             # seconds: a member whose clock runs a little behind still accepts a new certificate


@dataclass(frozen=True)
class Issued:
    key_pem: bytes
    cert_pem: bytes

    def key_file(self):
        """What mongod's net.tls.certificateKeyFile holds: the certificate, then its unencrypted key."""
        return self.cert_pem + self.key_pem


def _x509():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    return x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID


def _when(now):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(now, timezone.utc)


def _key():
    _, _, serialization, ec, _, _ = _x509()
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return key, pem


def _name(cn, ou):
    x509, _, _, _, _, NameOID = _x509()
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def member_unit(cluster):
    """The OU every member certificate of `cluster` carries; client certificates carry another one."""
    return f"{cluster} members"


def new_ca(cluster, now, days=CA_DAYS):
    """A self-signed CA for one cluster: may sign leaf certificates only (path length 0)."""
    x509, hashes, serialization, _, _, _ = _x509()
    key, key_pem = _key()
    name = _name(f"dbrs {cluster} CA", f"{cluster} CA")
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_when(now - _BACKDATE)).not_valid_after(_when(now + days * 86400))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return Issued(key_pem, cert.public_bytes(serialization.Encoding.PEM))


def split_names(names):
    """(DNS names, IP addresses) of what a certificate must answer to; a host name may be either."""
    dns, ips = [], []
    for n in names:
        try:
            ip = ipaddress.ip_address(n)
        except ValueError:
            if n.lower() not in (d.lower() for d in dns):
                dns.append(n)
        else:
            if ip not in ips:
                ips.append(ip)
    return dns, ips


class CAError(ValueError):
    """The cluster CA cannot sign: its key is unreadable or is not the key of its certificate."""


def _signing_pair(ca, x509, serialization, load_pem_private_key):
    """The CA's key and certificate, refused when they do not belong together: a certificate signed by a
    stray key verifies nowhere, and handed to a member it takes that member off the set at its restart."""
    try:
        ca_key = load_pem_private_key(ca.key_pem, None)
    except (ValueError, TypeError):
        raise CAError("the cluster CA key is not a readable unencrypted private key") from None
    try:
        ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    except ValueError:
        raise CAError("the cluster CA certificate is not a readable certificate") from None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if (ca_key.public_key().public_bytes(serialization.Encoding.DER, spki)
            != ca_cert.public_key().public_bytes(serialization.Encoding.DER, spki)):
        raise CAError("the cluster CA key does not belong to the CA certificate")
    return ca_key, ca_cert


def issue(ca, common_name, names, now, *, unit, server=True, client=True, days=LEAF_DAYS):
    """Sign a leaf certificate for `names` (host names and IPs) with the cluster CA `ca` (an Issued)."""
    x509, hashes, serialization, _, EKU, _ = _x509()
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    if not names:
        raise ValueError("a certificate needs at least one host name or IP")
    ca_key, ca_cert = _signing_pair(ca, x509, serialization, load_pem_private_key)
    key, key_pem = _key()
    dns, ips = split_names(names)
    usages = ([EKU.SERVER_AUTH] if server else []) + ([EKU.CLIENT_AUTH] if client else [])
    not_after = min(now + days * 86400, _timestamp(_not_after(ca_cert)))
    cert = (x509.CertificateBuilder()
            .subject_name(_name(common_name, unit)).issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_when(now - _BACKDATE)).not_valid_after(_when(not_after))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                         data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]
                                                       + [x509.IPAddress(i) for i in ips]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return Issued(key_pem, cert.public_bytes(serialization.Encoding.PEM))


def issue_member(ca, cluster, host, extra_names, now, days=LEAF_DAYS):
    """A member's certificate: CN = its host, SANs = its host plus every other name or IP it is reached by."""
    return issue(ca, host, [host, *extra_names], now, unit=member_unit(cluster), days=days)


def issue_client(ca, cluster, user, now, days=LEAF_DAYS):
    """An application's client certificate: clientAuth only, an OU that is not the members' (MongoDB requires it)."""
    return issue(ca, user, [user], now, unit=f"{cluster} clients", server=False, days=days)


def _not_after(cert):
    return getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after


def _timestamp(dt):
    from datetime import timezone

    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()


@dataclass(frozen=True)
class CertInfo:
    subject: str
    issuer: str
    not_after: float
    dns: tuple
    ips: tuple
    is_ca: bool

    def days_left(self, now):
        return (self.not_after - now) / 86400

    def answers_to(self, name):
        """True when a client dialling `name` accepts this certificate (SAN match, case-insensitive DNS)."""
        try:
            return ipaddress.ip_address(name) in self.ips
        except ValueError:
            return name.lower() in (d.lower() for d in self.dns)


def inspect(cert_pem):
    """What status and rotation need to know of a certificate (the first one in the PEM)."""
    x509 = _x509()[0]
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(san.get_values_for_type(x509.DNSName))
        ips = tuple(san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        dns, ips = (), ()
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    return CertInfo(cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(), _timestamp(_not_after(cert)),
                    dns, ips, is_ca)


def ca_file(*cas):
    """net.tls.CAFile's content: during a CA roll the old and the new CA, so either signature is trusted."""
    seen, out = set(), b""
    for c in cas:
        if c.cert_pem not in seen:
            seen.add(c.cert_pem)
            out += c.cert_pem
    return out


def split_pem(pem):
    """The certificates of a PEM bundle (a CA file during a roll holds two), each as bytes, in file order."""
    marker = b"-----END CERTIFICATE-----"
    out = []
    for chunk in pem.split(marker)[:-1]:
        start = chunk.find(b"-----BEGIN CERTIFICATE-----")
        if start >= 0:
            out.append(chunk[start:] + marker + b"\n")
    return out


def key_matches(pem):
    """True when the PEM (a member.pem: certificate, then its key) holds a private key of its certificate's
    public key: mongod refuses a certificateKeyFile whose key is missing or another certificate's."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    x509, _, serialization, _, _, _ = _x509()
    start = pem.find(b"-----BEGIN PRIVATE KEY-----")
    if start < 0:
        start = pem.find(b"-----BEGIN EC PRIVATE KEY-----")
    if start < 0:
        return False
    try:
        key = load_pem_private_key(pem[start:], None)
        cert = x509.load_pem_x509_certificate(pem)
    except (ValueError, TypeError):
        return False
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return (key.public_key().public_bytes(serialization.Encoding.DER, spki)
            == cert.public_key().public_bytes(serialization.Encoding.DER, spki))


def signed_by(cert_pem, ca_cert_pem):
    """True when the first certificate in `ca_cert_pem` signed `cert_pem` (issuer name and signature)."""
    from cryptography.exceptions import InvalidSignature

    x509 = _x509()[0]
    cert = x509.load_pem_x509_certificate(cert_pem)
    ca = x509.load_pem_x509_certificate(ca_cert_pem)
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
