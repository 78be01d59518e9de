"""Spec generations: a host never installs an older spec than the one it has.

Every spec change (`dbrs member ...`) raises `[cluster] generation`. A
bundle sealed before that change still opens with the same passphrase, so
without this check `dbrs-install --bundle old.dbrs` would quietly roll the
host back to members, ports or options the set has left.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from . import paths
from . import secrets as secretsmod
from .errors import DbrsError, InputError
from .fsutil import under, write_file

try:
    import tomllib
except ImportError:  # Python 3.10 (Ubuntu 22.04)
    import tomli as tomllib


def refusal(new, have, flag, installed_at, newest_from):
    """The InputError refusing generation `new` over the installed `have`, or None when it may go on.

    Pure: `installed_at` and `newest_from` are the words the message uses.
    """
    if have is None or new >= have:
        return None
    what = "bundle" if flag == "--bundle" else "spec"
    return InputError(flag, f"{what} generation {new} is older than this host's {have} (installed {installed_at})",
                      f"use the newest bundle from {newest_from}; nothing was changed")


def of_text(text):
    """The generation a spec text declares (1 when it names none or the text does not parse)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return 1
    cluster = raw.get("cluster") if isinstance(raw.get("cluster"), dict) else {}
    gen = cluster.get("generation", 1)
    return gen if isinstance(gen, int) and not isinstance(gen, bool) else 1


def installed(path):
    """(generation, UTC mtime text) of the spec installed at `path`, or None when there is none."""
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
        mtime = datetime.fromtimestamp(Path(path).stat().st_mtime, timezone.utc)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    cluster = raw.get("cluster") if isinstance(raw.get("cluster"), dict) else {}
    gen = cluster.get("generation", 1)
    return (gen if isinstance(gen, int) and not isinstance(gen, bool) else 1), mtime.strftime("%Y-%m-%d %H:%M UTC")


def recorded(path):
    """(generation, UTC mtime text) dbrs-install last applied on this host (`record`), or None."""
    try:
        text = Path(path).read_text(encoding="ascii").strip()
        mtime = datetime.fromtimestamp(Path(path).stat().st_mtime, timezone.utc)
    except (OSError, UnicodeDecodeError):
        return None
    return (int(text), mtime.strftime("%Y-%m-%d %H:%M UTC")) if text.isdigit() else None


def record(root, path, gen):
    """Remember `gen` as applied here (only ever raised); the check above reads it back."""
    have = recorded(under(root, path))
    if have is None or have[0] < gen:
        write_file(root, path, f"{gen}\n".encode(), 0o644, chown=False)


NEWEST_FROM = ("the host where the spec was last changed (its /etc/dbrs/bundle.dbrs, re-sealed by `dbrs member` "
               "or `dbrs member seal`)")


def check(spec, installed_path, flag, record_path=None):
    """Refuse (exit 2, before anything changes) a spec older than the one installed at `installed_path`,
    or than the generation this host last applied (`record_path`), which also covers an old cluster.toml
    copied over the installed one."""
    gen = spec.cluster.generation
    have = installed(installed_path) if flag != "cluster.generation" else None
    if have is not None:
        err = refusal(gen, have[0], flag, have[1], NEWEST_FROM)
        if err:
            raise err
    last = recorded(record_path) if record_path else None
    if last is not None and gen < last[0]:
        raise InputError("cluster.generation" if flag == "cluster.generation" else flag,
                         f"{gen} is older than the generation {last[0]} this host applied ({last[1]}): an older "
                         "spec would roll a member change back",
                         f"put the newest spec back from {NEWEST_FROM}; to go back on purpose, set generation = "
                         f"{last[0] + 1} in it")


def _ca_files(spec_path, bundle):
    """The cluster CA to carry on: the one next to the spec when this host has it, else the bundle's."""
    base = Path(paths.siblings(spec_path)["bundle"]).parent
    here = {}
    for name in (paths.CA_KEY.name, paths.CA_CERT.name):
        try:
            here[name] = (base / name).read_bytes()
        except FileNotFoundError:
            break
        except PermissionError:
            raise InputError(str(base / name), "cannot be read", "run as root (sudo)") from None
    else:
        return here
    return {k: v for k, v in bundle.files.items() if k != "secrets"}


def reseal(spec_path, passphrase, sec=None):
    """Seal bundle.dbrs again with what this host holds now: its spec, its secrets (or `sec`), the cluster CA.

    The one re-seal (member, user, upgrade, off-site): sealing the bundle's own
    old spec text would hand hosts an older generation, which they refuse, and
    dropping the CA would leave new hosts unable to issue certificates. The
    passphrase must open the bundle that is there; a spec older than the
    bundle's is refused (exit 2, nothing written). Returns the bundle's path,
    or None when it already holds exactly this.
    """
    where = str(paths.siblings(spec_path)["bundle"])
    try:
        old = Path(where).read_bytes()
        text = Path(spec_path).read_text(encoding="utf-8")
    except OSError as e:
        raise InputError("--passphrase-file", f"{e.filename}: {e.strerror}", "re-seal on the host that holds bundle.dbrs") from None
    bundle = secretsmod.open_bundle(old, passphrase, where=where)
    have, new = of_text(bundle.spec_text), of_text(text)
    if new < have:
        raise InputError(str(spec_path), f"spec generation {new} is older than the bundle's {have}",
                         "re-seal on the host where the spec was last changed; the bundle was left as it is")
    sec = secretsmod.load(spec_path, keyfile=True) if sec is None else sec
    files = _ca_files(spec_path, bundle)
    same = (bundle.spec_text == text and secretsmod.secrets_toml(bundle.secrets) == secretsmod.secrets_toml(sec)
            and bundle.secrets.keyfile == sec.keyfile and bundle.secrets.backup_key == sec.backup_key
            and {k: v for k, v in bundle.files.items() if k != "secrets"} == files)
    if same:
        return None
    try:
        write_file("/", where, secretsmod.seal_bundle(text, sec, passphrase, files), 0o600, chown=False)
    except OSError as e:
        raise DbrsError(f"re-sealing {where}: {e.strerror}; the change itself is made: run "
                        "`sudo dbrs member seal --passphrase-file FILE` once that is fixed") from None
    return where
