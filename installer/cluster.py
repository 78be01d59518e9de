"""The files that define a cluster on a host: spec, keyfile, secrets.toml, backup.key, bundle.

`dbrs init` creates them; `dbrs-install` takes them from the spec's folder,
from a bundle, or (no spec at all) from a fresh single-host default, and
turns them into plan items with the owners and modes they need.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from . import paths, secrets
from . import spec as specmod
from .errors import InputError
from .host.facts import user_exists
from .fsutil import under
from .host.items import Change, File
from .render import render


@dataclass(frozen=True)
class ClusterFiles:
    spec: object
    spec_text: bytes
    secrets: secrets.Secrets
    origin: str  # "spec", "bundle", "default"


def spec_text(spec):
    return render("dbrs/cluster.toml.j2", spec=spec)


def parse_member_flag(value, flag):
    """HOST[:PORT] or [IPv6]:PORT from --primary/--secondary/--arbiter."""
    host, port = value, specmod.DEFAULT_PORT
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
        "cluster": {"name": name, "mongodb_version": version, "allow": list(allow), "write_concern": write_concern},
        "members": members,
        "backup": {"dir": backup_dir},
        "mongo_express": {"enabled": mongo_express},
    }
    try:
        return specmod.parse(raw)
    except InputError as e:
        raise _as_flag_error(e) from None


_FLAG_OF = {
    "cluster.name": "--name", "cluster.mongodb_version": "--mongodb-version", "cluster.allow": "--allow",
    "cluster.write_concern": "--write-concern", "backup.dir": "--backup-dir",
}


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
    etc = PurePosixPath(etc)
    return (
        File(str(etc / "cluster.toml"), files.spec_text, 0o644),
        File(str(etc / "keyfile"), files.secrets.keyfile, 0o400, key_owner, key_owner, secret=True,
             notify=("dbrs-mongod@.service",)),
        File(str(etc / "secrets.toml"), secrets.secrets_toml(files.secrets), 0o600, secret=True),
        File(str(etc / "backup.key"), files.secrets.backup_key, 0o600, secret=True),
    )


def read_secrets(spec_path):
    """Keyfile, secrets.toml and backup.key from the folder of `spec_path` (a real path)."""
    sib = paths.siblings(spec_path)
    data = {}
    for key in ("keyfile", "secrets", "backup_key"):
        try:
            data[key] = Path(sib[key]).read_bytes()
        except FileNotFoundError:
            raise InputError(str(sib[key]), "is missing next to the spec",
                             "copy the cluster over with `dbrs-install --bundle FILE`, or run `dbrs init`") from None
        except PermissionError:
            raise InputError(str(sib[key]), "cannot be read", "run as root (sudo)") from None
    secrets.check_keyfile(data["keyfile"], str(sib["keyfile"]))
    return secrets.parse_secrets_toml(data["secrets"], data["keyfile"], data["backup_key"], str(sib["secrets"]))


def from_spec(spec_path):
    spec = specmod.load(spec_path)
    sec = read_secrets(spec_path)
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
    return ClusterFiles(spec, bundle.spec_text.encode(), bundle.secrets, "bundle")


def default():
    spec = specmod.single_host()
    return ClusterFiles(spec, spec_text(spec), secrets.generate(), "default")


INIT_FILES = (paths.SPEC, paths.KEYFILE, paths.SECRETS, paths.BACKUP_KEY, paths.BUNDLE)


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
    """Write spec, secrets and bundle for a new cluster; returns (paths written, passphrase, generated?).

    Refuses when any cluster file exists, unless `force`; `force` still refuses
    while members run here. A replaced backup.key is kept next to it. A
    generated passphrase goes to `announce` before anything is written, so no
    bundle is ever sealed with a passphrase nobody saw.
    """
    from .fsutil import write_file

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
    old_key = under(root, paths.BACKUP_KEY)
    if old_key.exists():
        try:
            old = old_key.read_bytes()
        except OSError as e:
            raise InputError(str(old_key), f"cannot be read to keep a copy: {e.strerror}", "run as root") from None
        if old.strip() != sec.backup_key.strip():
            keep = str(etc / secrets.replaced_name("backup.key", utc_stamp(now)))
            write_file(root, keep, old, 0o600, chown=chown)
            written.append(keep)
    items = list(secret_items(etc, files, live=chown and user_exists("mongodb")))
    items.append(File(str(etc / "bundle.dbrs"), secrets.seal_bundle(text, sec, passphrase), 0o600, secret=True))
    for item in items:
        write_file(root, item.path, item.content, item.mode, item.owner, item.group, chown)
        written.append(item.path)
    return written, passphrase, generated


def guard_replacement(changes, running, allowed, stamp, flag="--bundle"):
    """Before apply: refuse a keyfile swap under running members, and keep a backup.key that is replaced.

    Pure on the compared plan: the keyfile and backup.key changes carry the
    file on disk in `before`. Returns the changes with a `backup.key.replaced-STAMP`
    item (the old key, 0600) just before the new key is written.
    """
    out = []
    for c in changes:
        before = c.before
        replacing = c.changed and before is not None and before.exists and before.kind == "file" and "content" in c.reasons
        if replacing and c.item.path == str(paths.KEYFILE):
            try:
                secrets.check_keyfile_replacement(before.content, c.item.content, running, allowed)
            except InputError as e:
                raise InputError(flag, e.problem, e.fix) from None
        if replacing and c.item.path == str(paths.BACKUP_KEY) and before.content.strip() != c.item.content.strip():
            keep = File(str(paths.ETC / secrets.replaced_name("backup.key", stamp)), before.content, 0o600, secret=True)
            out.append(Change(keep, "changed", ["new", "the replaced backup key, kept: backups made with it need it"]))
        out.append(c)
    return out
