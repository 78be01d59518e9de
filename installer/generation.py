"""Spec generations: a host never installs an older spec than the one it has.

Every spec change (`dbrs member ...`) raises `[cluster] generation`. A
bundle sealed before that change still opens with the same passphrase, so
without this check `dbrs-install --bundle old.dbrs` would quietly roll the
host back to members, ports or options the set has left.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from .errors import InputError
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
