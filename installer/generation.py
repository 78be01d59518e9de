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


def check(spec, installed_path, flag):
    """Refuse (exit 2, before anything changes) a spec older than the one installed at `installed_path`."""
    have = installed(installed_path)
    if have is None:
        return
    err = refusal(spec.cluster.generation, have[0], flag, have[1],
                  "the host where the spec was last changed (its /etc/dbrs/bundle.dbrs, re-sealed by `dbrs member` "
                  "or `dbrs member seal`)")
    if err:
        raise err
