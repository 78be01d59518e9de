"""The cluster's certificate files on a host: reading them for `dbrs tls status`, handing them to app hosts.

The CA lives next to the spec (ca.pem 0444, ca.key root 0600), each member's
certificate in its folder (NAME/member.pem, mongodb 0400). Deciding what a
certificate's state means is tls.py's; this module only reads and writes.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from . import paths, pki, tls
from .errors import DbrsError, InputError
from .fsutil import write_file

CLIENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def ca_files(spec_path):
    """(certificate, key) of the cluster CA: next to the spec, like the keyfile."""
    base = Path(spec_path).parent
    return base / paths.CA_CERT.name, base / paths.CA_KEY.name


def _read(path, what, fix):
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise DbrsError(f"{path} is missing ({what}); {fix}") from None
    except PermissionError:
        raise InputError(str(path), "cannot be read", "run as root (sudo)") from None
    except OSError as e:
        raise DbrsError(f"{path}: {e.strerror}; {fix}") from None


NO_CA = "this cluster has no CA yet: `dbrs init` makes one for a new cluster"


def read_ca(spec_path, with_key=False):
    cert_path, key_path = ca_files(spec_path)
    cert = _read(cert_path, "the cluster CA certificate", NO_CA)
    key = _read(key_path, "the cluster CA key", "it stays on the host `dbrs init` ran on; run this there") \
        if with_key else b""
    return pki.Issued(key, cert)


@dataclass(frozen=True)
class Line:
    label: str
    path: str
    days_left: float | None
    problem: str | None


def status(spec, spec_path, now):
    """The CA and every member certificate present on this host, each with its days left or its problem.

    A member folder without member.pem is a problem only when the spec turns TLS on (`cluster.tls`, "off"
    for a spec written before it existed).
    """
    required = getattr(spec.cluster, "tls", "off") != "off"
    cert_path, _ = ca_files(spec_path)
    base = Path(spec_path).parent
    ca_pem = _read(cert_path, "the cluster CA certificate", tls.MISSING_CA_FIX if required else NO_CA)
    out = [tls.certificate_state("CA", str(cert_path), ca_pem, None, now)]
    ca_bad = tls.ca_problem(ca_pem)
    for m in spec.members:
        pem_path = Path(paths.member_cert(m.name, base))
        if not pem_path.parent.is_dir():
            continue                    # a member of another host
        try:
            pem = pem_path.read_bytes()
        except FileNotFoundError:
            pem = None
        except OSError as e:
            raise DbrsError(f"{pem_path}: {e.strerror}; run as root (sudo)") from None
        if ca_bad:
            out.append((m.name, str(pem_path), None, f"cannot be checked: {cert_path.name} {ca_bad}"))
            continue
        out.append(tls.certificate_state(m.name, str(pem_path), pem, ca_pem, now, required=required, key_file=True))
    return [Line(*s) for s in out]


def client_bundle(dest, spec, spec_path, client=None, now=None):
    """Write the CA certificate (0644) and, for `client`, a client certificate with its key (0600) into `dest`.

    An existing client file is never overwritten: an application may be using that key.
    """
    if client is not None and not CLIENT_NAME.fullmatch(client):
        raise InputError("--client-cert", f"{client[:80]!r} is not a usable name",
                         "use 1-64 letters, digits, '.', '_' or '-' (it names the file and the certificate)")
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise InputError("DIR", f"{dest} exists and is not a directory", "name a directory")
    ca = read_ca(spec_path, with_key=client is not None)
    client_path = dest / f"{client}.pem" if client else None
    if client_path is not None and client_path.exists():
        raise InputError("--client-cert", f"{client_path} exists", "move it away, or choose another name")
    issued = None
    if client_path is not None:     # signed before anything is written: a broken CA leaves DIR as it was
        try:
            issued = pki.issue_client(ca, spec.cluster.name, client, time.time() if now is None else now)
        except pki.CAError as e:
            _, key_path = ca_files(spec_path)
            raise DbrsError(f"{key_path}: {e}; put ca.key and ca.pem back from bundle.dbrs (`dbrs-install "
                            "--bundle FILE`); nothing was written") from None
    written = [str(dest / "ca.pem")]
    try:
        if not dest.exists():
            os.makedirs(dest, 0o700 if client else 0o755)
        write_file(None, written[0], ca.cert_pem, 0o644, chown=False)
        if issued is not None:
            write_file(None, str(client_path), issued.key_file(), 0o600, chown=False)
            written.append(str(client_path))
    except OSError as e:
        raise DbrsError(f"DIR {dest}: {e.strerror}; choose a folder you can write to") from None
    return written


def summary(spec, spec_path, now):
    """(lines for `dbrs status`, problems for --check): days left per certificate on this host.

    Nothing when TLS is off, so a cluster without a CA (made before dbrs had one) reports as before.
    """
    if getattr(spec.cluster, "tls", "off") == "off":
        return [], []
    lines, problems = [], []
    for s in status(spec, spec_path, now):
        left = "" if s.days_left is None else f"{s.days_left:.0f} days left"
        lines.append(f"certificate {s.label}: {left}" + (f" ({s.problem})" if s.problem and left else s.problem or ""))
        if s.problem:
            problems.append(f"certificate {s.label} ({s.path}): {s.problem}; `dbrs tls rotate` or re-run dbrs-install")
    return lines, problems
