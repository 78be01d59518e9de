"""The files that define a cluster on a host: spec, keyfile, secrets.toml, backup.key, bundle.

`dbrs init` creates them; `dbrs-install` takes them from the spec's folder,
from a bundle, or (no spec at all) from a fresh single-host default, and
turns them into plan items with the owners and modes they need.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from . import paths, pki, secrets
from . import spec as specmod
from . import spec_fields
from .errors import InputError
from .host.facts import user_exists
from .fsutil import under, write_file
from .host.items import Action, Change, File
from .render import render


@dataclass(frozen=True)
class ClusterFiles:
    spec: object
    spec_text: bytes
    secrets: secrets.Secrets
    origin: str  # "spec", "bundle", "default"
    ca: object = None  # pki.Issued from a bundle that carries the cluster CA


def spec_text(spec):
    return render("dbrs/cluster.toml.j2", spec=spec, lines=spec_fields.init_lines)


def parse_member_flag(value, flag):
    """HOST[:PORT] or [IPv6]:PORT from --primary/--secondary/--arbiter."""
    host, port = value, spec_fields.DEFAULT_PORT
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            raise InputError(flag, f"{value!r} has no closing ]", "write an IPv6 address as [ADDR]:PORT")
        host, rest = value[1:end], value[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise InputError(flag, f"{value!r} is not HOST[:PORT]", "write [ADDR]:PORT")
            port = rest[1:]
    elif value.count(":") == 1:
        host, port = value.split(":")
    try:
        port = int(port)
    except ValueError:
        raise InputError(flag, f"port {port!r} is not a number", "write HOST:PORT, e.g. 10.0.0.11:27017") from None
    return host, port


def spec_from_flags(name, primary, secondaries, arbiter, allow, version, write_concern, backup_dir, mongo_express):
    """The spec `dbrs init` writes; validated by the same parser as a hand-written file."""
    if not (primary or secondaries or arbiter):
        base = specmod.single_host(name)
        members = [{"name": m.name, "host": m.host, "port": m.port, "role": m.role} for m in base.members]
    else:
        if not primary:
            raise InputError("--primary", "is missing", "name the host of the primary-role member")
        members = []
        flags = [("primary", "--primary", primary)] + [("secondary", "--secondary", s) for s in secondaries]
        if arbiter:
            flags.append(("arbiter", "--arbiter", arbiter))
        for i, (role, flag, value) in enumerate(flags, start=1):
            host, port = parse_member_flag(value, flag)
            members.append({"name": f"mongod{i}", "host": host, "port": port, "role": role})
    raw = {
        "cluster": {"name": name, "mongodb_version": version, "allow": list(allow), "write_concern": write_concern,
                    "tls": "required"},
        "members": members,
        "backup": {"dir": backup_dir},
        "mongo_express": {"enabled": mongo_express},
    }
    try:
        return specmod.parse(raw)
    except InputError as e:
        raise _as_flag_error(e) from None


_FLAG_OF = spec_fields.flag_of()


def _as_flag_error(err):
    errors = getattr(err, "errors", [err])
    first = errors[0]
    flag = _FLAG_OF.get(first.field)
    if flag is None and first.field.startswith("members"):
        flag = "--primary/--secondary/--arbiter"
    return InputError(f"{flag} ({first.field})" if flag else first.field, first.problem, first.fix)


def secret_items(etc, files, live):
    """Plan items for the spec and its secrets, with the owners and modes they need.

    The keyfile belongs to mongodb (mongod refuses a keyfile others can read);
    the rest to root. Without the mongodb user (init before packages, --root)
    the keyfile stays root's.
    """
    key_owner = "mongodb" if live else "root"
    spec = PurePosixPath(etc) / paths.SPEC.name
    sib = paths.siblings(spec)
    return (
        File(str(spec), files.spec_text, 0o644),
        File(str(sib["keyfile"]), files.secrets.keyfile, 0o400, key_owner, key_owner, secret=True,
             notify=("dbrs-mongod@.service",)),
        File(str(sib["secrets"]), secrets.secrets_toml(files.secrets), 0o600, secret=True),
        File(str(sib["backup_key"]), files.secrets.backup_key, 0o600, secret=True),
    )


def from_spec(spec_path):
    spec = specmod.load(spec_path)
    sec = secrets.load(spec_path, keyfile=True)
    return ClusterFiles(spec, spec_text_of(spec_path), sec, str(spec_path))


def spec_text_of(spec_path):
    return Path(spec_path).read_bytes()


def from_bundle(bundle_path, passphrase_file):
    passphrase = secrets.read_passphrase(passphrase_file)
    try:
        data = Path(bundle_path).read_bytes()
    except OSError as e:
        raise InputError("--bundle", f"{bundle_path}: {e.strerror}", "check the path") from None
    bundle = secrets.open_bundle(data, passphrase)
    spec = specmod.loads(bundle.spec_text)
    return ClusterFiles(spec, bundle.spec_text.encode(), bundle.secrets, "bundle", ca_from_bundle(bundle))


def default():
    spec = specmod.single_host()
    return ClusterFiles(spec, spec_text(spec), secrets.generate(), "default")


SIBLINGS = paths.siblings(paths.SPEC)
INIT_FILES = (paths.SPEC, SIBLINGS["keyfile"], SIBLINGS["secrets"], SIBLINGS["backup_key"], SIBLINGS["bundle"],
              paths.CA_KEY, paths.CA_CERT)


def utc_stamp(now=None):
    import time

    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))


def check_init(existing, force, running):
    """May `dbrs init` write here? Pure: `existing` are the cluster files already present,
    `running` the dbrs-mongod@ members active on this host.

    Any one of them, not only the spec, belongs to a cluster: a new keyfile
    locks running members out of their set, a new backup key makes every
    encrypted backup unreadable.
    """
    if existing and not force:
        more = f" (and {len(existing) - 1} more cluster file(s))" if len(existing) > 1 else ""
        raise InputError("--force", f"{existing[0]} exists{more}",
                         "move the old cluster files away, or pass --force to replace the spec and every secret")
    if force and running:
        raise InputError("--force", f"dbrs-mongod@ {', '.join(sorted(running))} running on this host would be locked "
                         "out by a new keyfile", "stop them first (systemctl stop 'dbrs-mongod@*'), or leave --force out")


def make_dirs(root, path, mode=0o755, chown=False):
    """Create `path` (under root) and its missing parents with `mode` whatever the umask.

    An existing `path` is dbrs' own (/etc/dbrs): if others may write it, it gets `mode`.
    """
    target = under(root, path)
    missing = []
    p = target
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        os.mkdir(d, mode)
        os.chmod(d, mode)
        if chown:
            os.chown(d, 0, 0)
    st = os.lstat(target)
    if os.path.islink(target) or not os.path.isdir(target):
        raise InputError(str(target), "exists and is not a directory", "move it away")
    if st.st_mode & 0o022:
        os.chmod(target, mode)
    if chown and (st.st_uid, st.st_gid) != (0, 0):
        os.chown(target, 0, 0)


def init(root, spec, force=False, passphrase=None, live=True, running=(), announce=None, now=None):
    """Write spec, secrets, the cluster CA and bundle for a new cluster; returns (paths written, passphrase, generated?).

    Refuses when any cluster file exists, unless `force`; `force` still refuses
    while members run here. A replaced backup.key is kept next to it. A
    generated passphrase goes to `announce` before anything is written, so no
    bundle is ever sealed with a passphrase nobody saw.
    """
    etc = paths.ETC
    existing = [str(under(root, p)) for p in INIT_FILES if under(root, p).exists()]
    check_init(existing, force, list(running))
    generated = passphrase is None
    if generated:
        passphrase = secrets.new_passphrase()
        if announce:
            announce(passphrase)
    sec = secrets.generate()
    text = spec_text(spec)
    files = ClusterFiles(spec, text, sec, "init")
    chown = live and os.geteuid() == 0
    make_dirs(root, etc, 0o755, chown)
    written = []
    old_key = under(root, SIBLINGS["backup_key"])
    if old_key.exists():
        try:
            old = old_key.read_bytes()
        except OSError as e:
            raise InputError(str(old_key), f"cannot be read to keep a copy: {e.strerror}", "run as root") from None
        if old.strip() != sec.backup_key.strip():
            keep = str(etc / secrets.replaced_name(SIBLINGS["backup_key"].name, utc_stamp(now)))
            write_file(root, keep, old, 0o600, chown=chown)
            written.append(keep)
    items = list(secret_items(etc, files, live=chown and user_exists("mongodb")))
    ca = new_ca(spec, now)
    items += ca_items(etc, ca)
    items.append(File(str(SIBLINGS["bundle"]), secrets.seal_bundle(text, sec, passphrase, ca_bundle_files(ca)),
                      0o600, secret=True))
    for item in items:
        write_file(root, item.path, item.content, item.mode, item.owner, item.group, chown)
        written.append(item.path)
    return written, passphrase, generated


# ------------------------------------------------------------------ cluster CA (issue 14)

def new_ca(spec, now=None):
    """The cluster's own CA, made once by `dbrs init`: members trust it and nothing else."""
    import time

    return pki.new_ca(spec.cluster.name, time.time() if now is None else now)


def ca_items(etc, ca):
    """The CA on the init host: its key root 0600 (it signs every member certificate), its certificate 0444
    (every client verifies the members with it)."""
    etc = PurePosixPath(etc)
    return [File(str(etc / paths.CA_KEY.name), ca.key_pem, 0o600, secret=True),
            File(str(etc / paths.CA_CERT.name), ca.cert_pem, 0o444)]


def member_tls_items(etc, certificates, ca_cert_pem, live):
    """Plan items for this host's TLS files: the CA certificate (0444) and each member's certificate + key
    (`certificates`: member name -> pki.Issued), mongodb 0400 as mongod reads it, restarting that member.
    Without the mongodb user (--root staging) the files stay root's."""
    owner = "mongodb" if live else "root"
    etc = PurePosixPath(etc)
    items = [File(str(etc / paths.CA_CERT.name), ca_cert_pem, 0o444)]
    for name, issued in sorted(certificates.items()):
        items.append(File(str(paths.member_cert(name, etc)), issued.key_file(), 0o400, owner, owner, secret=True,
                          notify=(f"dbrs-mongod@{name}.service",)))
    return items


def ca_bundle_files(ca):
    return {paths.CA_KEY.name: ca.key_pem, paths.CA_CERT.name: ca.cert_pem}


def ca_from_bundle(bundle):
    """The CA a bundle carries (a pki.Issued), or None for a bundle sealed before dbrs made one."""
    key, cert = bundle.files.get(paths.CA_KEY.name), bundle.files.get(paths.CA_CERT.name)
    if not key or not cert:
        return None
    return pki.Issued(key, cert)


def guard_replacement(changes, running, allowed, stamp, flag="--bundle"):
    """Before apply: refuse a keyfile swap under running members, and keep a backup.key that is replaced.

    Pure on the compared plan: the keyfile and backup.key changes carry the
    file on disk in `before`. Returns the changes with a `backup.key.replaced-STAMP`
    item (the old key, 0600) just before the new key is written.
    """
    out = []
    for c in changes:
        before = c.before
        replacing = c.changed and before is not None and before.exists and before.kind == "file" and Action.WRITE in c.actions
        if replacing and c.item.path == str(SIBLINGS["keyfile"]):
            try:
                secrets.check_keyfile_replacement(before.content, c.item.content, running, allowed)
            except InputError as e:
                raise InputError(flag, e.problem, e.fix) from None
        if replacing and c.item.path == str(SIBLINGS["backup_key"]) and before.content.strip() != c.item.content.strip():
            keep = File(str(paths.ETC / secrets.replaced_name(SIBLINGS["backup_key"].name, stamp)), before.content,
                        0o600, secret=True)
            out.append(Change(keep, "changed", ["new", "the replaced backup key, kept: backups made with it need it"],
                              actions=(Action.WRITE,)))
        out.append(c)
    return out
