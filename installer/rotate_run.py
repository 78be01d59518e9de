"""Doing `dbrs tls rotate` on this host: read the certificates, the set and the running members, let
`rotation.decide` choose, then renew and restart one member at a time.

Each restart re-reads the set first and goes ahead only while every other
member is healthy, so two hosts rotating at once cannot take two members down
together; each waits until the member is healthy again before the next. The
files are the state: a run cut short is resumed by running it again.
"""

from __future__ import annotations

import os
import ssl
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import generation, machine, paths, pki, rotation, secrets, systemd, tls
from .errors import DbrsError, InputError
from .fsutil import write_file
from .host import steps
from .replset import connection, health, operations

STEPDOWN_S = 60
PROBE_MS = 3000


@dataclass(frozen=True)
class Files:
    """The CA this host signs with (cert + key) and the CA file members load (one CA, or new + old in a roll)."""

    ca: pki.Issued
    ca_file: bytes

    @property
    def rolling(self):
        return len(pki.split_pem(self.ca_file)) > 1


class Host:
    """This host's side: the member files and the units. Tests pass their own."""

    def __init__(self, etc):
        self.etc = Path(etc)

    def cert_path(self, name):
        return Path(paths.member_cert(name, self.etc))

    def is_local(self, name):
        return self.cert_path(name).parent.is_dir()

    def read(self, path):
        try:
            return Path(path).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise DbrsError(f"{path}: {e.strerror}; run as root (sudo)") from None

    def changed_at(self, path):
        try:
            return Path(path).stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def write(self, path, data, mode, owner="root"):
        write_file(None, str(path), data, mode, owner, owner, chown=True)

    def started_at(self, name):
        """Wall-clock time dbrs-mongod@NAME last started (systemd's monotonic stamp), 0 when it is not running."""
        blocks = systemd.show([f"dbrs-mongod@{name}.service"], ["ActiveEnterTimestampMonotonic", "ActiveState"])
        info = blocks[0] if blocks else {}
        if info.get("ActiveState") != "active":
            return 0.0
        mono = int(info.get("ActiveEnterTimestampMonotonic") or 0) / 1e6
        return time.time() - (time.monotonic() - mono)

    def restart(self, name):
        steps.systemctl("restart", f"dbrs-mongod@{name}.service")


# ------------------------------------------------------------------ the CA

def check_bundle(spec, secrets_, spec_path, opened):
    """Refuse (exit 2, before anything is written) a --bundle that is not this cluster's, or older than what this
    host has: rotate writes the bundle's ca.pem over this host's, and a foreign or stale one (the old bundle.dbrs
    still lying on a host during a CA roll) would leave the members trusting the wrong CA."""
    if opened.spec.cluster.name != spec.cluster.name or opened.secrets.keyfile != secrets_.keyfile:
        raise InputError("--bundle", f"belongs to another cluster (replica set {opened.spec.cluster.name[:40]!r}, "
                         "another keyfile)", "use this cluster's bundle.dbrs from the host `dbrs init` ran on; "
                         "nothing was changed")
    if opened.spec.cluster.generation < spec.cluster.generation:
        raise InputError("--bundle", f"holds spec generation {opened.spec.cluster.generation}, older than this "
                         f"host's {spec.cluster.generation}", "use the newest bundle.dbrs; nothing was changed")
    try:
        here = pki.split_pem(Path(spec_path).with_name(paths.CA_CERT.name).read_bytes())
    except FileNotFoundError:
        return
    if opened.ca is not None and here and here[0] not in pki.split_pem(opened.ca.cert_pem):
        raise InputError("--bundle", "does not hold the CA this host's ca.pem signs with (a bundle from before a "
                         "CA roll?)", "copy the bundle.dbrs re-sealed by `dbrs tls rotate --ca` on the init host; "
                         "nothing was changed")


def load_files(spec_path, bundle_ca=None):
    """The CA to sign with and the CA file: the bundle's (other hosts; `bundle_ca` as cluster.ca_from_bundle gives
    it, False for a bundle without one) or this host's ca.key + ca.pem (the init host)."""
    base = Path(spec_path).parent
    if bundle_ca is False:
        raise InputError("--bundle", "carries no cluster CA", "re-seal it on the host `dbrs init` ran on")
    if bundle_ca is not None:
        return Files(pki.Issued(bundle_ca.key_pem, _signer(bundle_ca.cert_pem, "the bundle's ca.pem")),
                     bundle_ca.cert_pem)
    cert_path, key_path = base / paths.CA_CERT.name, base / paths.CA_KEY.name
    try:
        ca_file, key = cert_path.read_bytes(), key_path.read_bytes()
    except FileNotFoundError as e:
        raise DbrsError(f"{e.filename} is missing: this host does not hold the cluster CA; run `dbrs tls rotate` "
                        "with --bundle bundle.dbrs --passphrase-file FILE (the bundle carries the CA)") from None
    except PermissionError as e:
        raise InputError(str(e.filename), "cannot be read", "run as root (sudo)") from None
    return Files(pki.Issued(key, _signer(ca_file, str(cert_path))), ca_file)


def _signer(ca_file, where):
    """The first certificate of a CA file: the CA that signs (during a roll the new one comes first)."""
    certs = pki.split_pem(ca_file)
    if not certs:
        raise DbrsError(f"{where} holds no certificate; {tls.MISSING_CA_FIX}")
    return certs[0]


def begin_ca_roll(spec, files, now):
    """A new CA for `spec`'s cluster; the CA file holds it first and the current one after it."""
    if files.rolling:
        raise InputError("--ca", "a CA roll is already under way (ca.pem holds two CAs)",
                         "finish it: `dbrs tls rotate` on every host, then `dbrs tls rotate --finish`")
    new = pki.new_ca(spec.cluster.name, now)
    return Files(new, rotation.ca_roll_file(new.cert_pem, files.ca_file))


def save_ca(spec_path, files, host, stamp, passphrase=None):
    """ca.pem (0444) and ca.key (0600) next to the spec; a replaced key is kept; the bundle re-sealed with them."""
    base = Path(spec_path).parent
    key_path = base / paths.CA_KEY.name
    old_key = host.read(key_path)
    if old_key is not None and old_key != files.ca.key_pem:
        host.write(base / secrets.replaced_name(paths.CA_KEY.name, stamp), old_key, 0o600)
    host.write(key_path, files.ca.key_pem, 0o600)
    host.write(base / paths.CA_CERT.name, files.ca_file, 0o444)
    if passphrase is not None:
        generation.reseal(spec_path, passphrase)    # this host's spec and secrets, with the CA just written


def adopt_ca_file(spec_path, files, host):
    """This host's ca.pem as the bundle says (the roll's new + old, or the new one after --finish); True if changed."""
    path = Path(spec_path).parent / paths.CA_CERT.name
    if host.read(path) == files.ca_file:
        return False
    host.write(path, files.ca_file, 0o444)
    return True


# ------------------------------------------------------------------ what the members hold and run

def member_states(spec, secrets_):
    """{name: state} from the primary's replSetGetStatus."""
    _, conn = connection.connect_any(spec, secrets_, "admin", need_primary=True)
    with conn as c:
        status = health.interpret_status(c.command("replSetGetStatus"), spec)
    return {m.name: (status.member(m.name).state if status.member(m.name) else "NOT IN THE SET") for m in spec.members}


def remote_presents(member, ca_cert_pem):
    """Does the member present a certificate signed by `ca_cert_pem`? Read from its TLS handshake."""
    try:
        pem = ssl.get_server_certificate((member.host, member.port), timeout=PROBE_MS / 1000).encode()
    except (OSError, ssl.SSLError, ValueError):
        return False
    return pki.signed_by(pem, ca_cert_pem)


def remote_trusts(member, files, cluster_name, now):
    """Does the member accept a certificate of the new CA? A client certificate of that CA, presented in a
    handshake: mongod rejects one its CA file does not vouch for (allowConnectionsWithoutCertificates only
    spares clients that present none)."""
    probe = pki.issue_client(files.ca, cluster_name, "dbrs-rotate-probe", now, days=1)
    with tempfile.TemporaryDirectory(prefix="dbrs-rotate-") as d:
        key, caf = Path(d, "probe.pem"), Path(d, "ca.pem")
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(probe.key_file())
        caf.write_bytes(files.ca_file)
        options = {"tls": True, "tlsCAFile": str(caf), "tlsCertificateKeyFile": str(key)}
        try:
            with connection.client(member.host, member.port, timeout_ms=PROBE_MS, tls_options=options) as c:
                c.admin.command("hello")
        except connection.errors().PyMongoError:
            return False
    return True


def gather(spec, secrets_, files, host, now, renew_days):
    """One rotation.MemberCert per spec member: this host's from their files, the others' from the wire
    (asked only while a CA roll is under way)."""
    states = member_states(spec, secrets_)
    ca_changed = host.changed_at(host.etc / paths.CA_CERT.name)
    out = []
    for m in spec.members:
        if host.is_local(m.name):
            path = host.cert_path(m.name)
            pem = host.read(path)
            names = tls.member_names(m.host, machine.resolve(m.host))
            problem = tls.certificate_problem(pem, files.ca.cert_pem, names, now, renew_days, key_file=True)
            loaded = host.started_at(m.name)
            changed = max(host.changed_at(path), ca_changed)
            out.append(rotation.MemberCert(m.name, m.host, states.get(m.name, "UNKNOWN"), True, problem,
                                           stale=pem is not None and changed > loaded))
        else:
            out.append(rotation.MemberCert(
                m.name, m.host, states.get(m.name, "UNKNOWN"), False,
                trusts_new=remote_trusts(m, files, spec.cluster.name, now) if files.rolling else True,
                presents_new=remote_presents(m, files.ca.cert_pem) if files.rolling else True))
    return out


# ------------------------------------------------------------------ doing it

def _ready(spec, secrets_, name):
    states = member_states(spec, secrets_)
    bad = {n: s for n, s in states.items() if n != name and s not in rotation.HEALTHY}
    if bad:
        raise DbrsError(f"not restarting {name}: " + ", ".join(f"{n} {s.lower()}" for n, s in bad.items())
                        + "; one member restarts only while all others are healthy (run it again when they are)")


def wait_healthy(spec, secrets_, name, wait_s, progress=None):
    """Until `name` is PRIMARY, SECONDARY or ARBITER again in the primary's view."""
    seen = {"state": "restarting"}

    def probe():
        try:
            state = member_states(spec, secrets_).get(name)
        except DbrsError as e:           # no primary for a moment, or the member itself was the one answering
            seen["state"] = str(e)[:160]
            return None
        seen["state"] = (state or "unknown").lower()
        return state if state in rotation.HEALTHY else None

    def describe(final):
        if final:
            return (f"{name} is not healthy within {wait_s:g} s ({seen['state']}); see `journalctl -u "
                    f"dbrs-mongod@{name}` and `dbrs status`, then run `dbrs tls rotate` again")
        return f"waiting for {name} ({seen['state']})", seen["state"]

    return connection.wait_until(time.monotonic() + wait_s, probe, describe, limit=wait_s, progress=progress)


def renew(spec, files, host, name, now):
    member = spec.member(name)
    issued = pki.issue_member(files.ca, spec.cluster.name, member.host,
                              tls.member_names(member.host, machine.resolve(member.host)), now)
    host.write(host.cert_path(name), issued.key_file(), 0o400, "mongodb")


def execute(spec, secrets_, files, host, plan, progress=None, wait_s=600, now=None):
    """Carry the plan out, one member at a time; returns the steps done."""
    done = []
    say = progress or (lambda text: None)
    for step in plan.steps:
        say(step.text())
        if step.action == "stepdown":
            sd = operations.stepdown(spec, secrets_, secs=STEPDOWN_S, wait_s=min(wait_s, 120))
            say(f"{sd.old} stepped down; {sd.new} is primary ({sd.no_primary_s:.1f} s without a primary)")
        else:
            _ready(spec, secrets_, step.member)
            if step.action == "renew":
                renew(spec, files, host, step.member, time.time() if now is None else now)
            host.restart(step.member)
            wait_healthy(spec, secrets_, step.member, wait_s, progress)
            say(f"{step.member} is healthy")
        done.append(step)
    return done


def run(spec, secrets_, spec_path, host, *, ca=False, finish=False, bundle_ca=None, passphrase=None,
        renew_days=tls.RENEW_DAYS, dry_run=False, progress=None, wait_s=600, now=None, stamp=""):
    """Plan (and unless dry_run, do) this host's part of a rotation. Returns (plan, steps done, notes)."""
    now = time.time() if now is None else now
    files = load_files(spec_path, bundle_ca)
    notes = []
    if bundle_ca is not None and not dry_run and adopt_ca_file(spec_path, files, host):
        notes.append(f"changed   {Path(spec_path).parent / paths.CA_CERT.name}: the CA file of the bundle")
    if ca:
        # a new CA only for a set that can take the roll: made while the set is down, it would be written, the
        # bundle re-sealed, and the run would end on "no member is PRIMARY"
        try:
            problem = rotation.check_healthy(gather(spec, secrets_, files, host, now, renew_days))
        except DbrsError as e:
            problem = str(e)
        if problem:
            raise DbrsError(f"{problem}; no new CA was made")
        files = begin_ca_roll(spec, files, now)
        if not dry_run:
            save_ca(spec_path, files, host, stamp, passphrase)
            notes.append("changed   new cluster CA: ca.pem holds the new CA and the old one, ca.key the new key"
                         + ("; bundle.dbrs re-sealed" if passphrase is not None else ""))
    if finish:
        if not files.rolling:
            raise InputError("--finish", "no CA roll is under way (ca.pem holds one CA)", "nothing to finish")
        problem = rotation.finish_problem(gather(spec, secrets_, files, host, now, renew_days))
        if problem:
            raise DbrsError(problem)
        files = Files(files.ca, files.ca.cert_pem)
        if not dry_run:
            save_ca(spec_path, files, host, stamp, passphrase)
            notes.append("changed   ca.pem holds the new CA only" + ("; bundle.dbrs re-sealed" if passphrase else ""))
    members = gather(spec, secrets_, files, host, now, renew_days)
    problem = rotation.check_healthy(members)
    if problem:
        raise DbrsError(problem)
    plan = rotation.decide(members, files.rolling)
    if dry_run:
        return plan, [], notes
    return plan, execute(spec, secrets_, files, host, plan, progress, wait_s, now), notes
