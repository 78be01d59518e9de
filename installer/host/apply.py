"""Doing: carry out the changed items of a plan, each small and idempotent.

Files go through `fsutil`'s atomic writer. Each step re-checks the host
right before it acts, since earlier steps may have changed it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ..errors import StepFailed
from ..fsutil import fsync_dir, make_dir, make_link, set_attrs, under, write_file
from .facts import nft_table, user_exists
from .firewall import UNIT as FIREWALL_UNIT
from .items import Action

_SERVICE_STEPS = {Action.STOP, Action.DISABLE, Action.ENABLE, Action.START, Action.RESTART, Action.RELOAD_TABLE}


def run(argv, step, **kw):
    """Run a command (argv list, never a shell string); StepFailed with its stderr on failure."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True, **kw)
    except FileNotFoundError:
        raise StepFailed(step, f"{argv[0]} not found") from None
    if r.returncode != 0:
        detail = (r.stderr or r.stdout).strip().splitlines()
        raise StepFailed(step, detail[-1] if detail else f"{argv[0]} exited {r.returncode}")
    return r


def create_user(name, home):
    if user_exists(name):
        return
    run(["adduser", "--system", "--group", "--home", home, "--no-create-home",
         "--shell", "/usr/sbin/nologin", "--quiet", name], f"user {name}")


def fetch_key(url, root, path):
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            data = r.read()
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise StepFailed(f"apt key {path}", f"cannot fetch {url}: {reason}; is the MongoDB repository "
                         "reachable from this host? (air-gapped: use --packages-from DIR)") from None
    if b"BEGIN PGP PUBLIC KEY BLOCK" not in data:
        raise StepFailed(f"apt key {path}", f"{url} did not return a PGP public key")
    write_file(root, path, data, 0o644)


def install_packages(item):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if item.debs_from:
        debs = sorted(str(p) for p in Path(item.debs_from).glob("*.deb"))
        if not debs:
            raise StepFailed(item.label(), f"no .deb files in {item.debs_from}")
        run(["apt-get", "install", "-y", "--no-install-recommends", *debs], item.label(), env=env)
        return
    try:
        run(["apt-get", "update", "-q"], "apt-get update", env=env)
    except StepFailed as e:
        raise StepFailed("apt-get update", f"{e.detail}; is the MongoDB repository reachable? "
                         "(air-gapped: use --packages-from DIR)") from None
    run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *item.names], item.label(), env=env)


def npm_install(item, root=None):
    """npm install of one exact version; the item carries its argv, never a shell."""
    try:
        run(item.argv(str(under(root, item.prefix))), item.label())
    except StepFailed as e:
        raise StepFailed(item.label(), f"{e.detail}; is the npm registry reachable from this host? "
                         "(or set mongo_express.enabled = false)") from None


def systemctl(*args):
    return run(["systemctl", *args], "systemctl " + " ".join(args))


def apply(changes, root=None, live=True, progress=None, done=None):
    """Carry out the changed items in order; returns the changes as done.

    Units are reloaded once after unit files changed, then services are
    enabled/started, or reloaded/restarted when a file they use changed.
    `done(change)` is called for every item once it is settled (at once for
    an unchanged one), so the report streams as the host changes.
    """
    unit_files_changed = False
    for change in changes:
        if not change.changed:
            if done:
                done(change)
            continue
        item = change.item
        if progress:
            progress(change)
        try:
            acts = change.actions
            if acts and (set(acts) & _SERVICE_STEPS):
                if unit_files_changed and live:
                    systemctl("daemon-reload")
                    unit_files_changed = False
                if Action.RELOAD_TABLE in acts:
                    _table(item)
                else:
                    _service(item, acts)
            else:
                _one(item, change, root, live)
                if Action.UNITS_CHANGED in acts:
                    unit_files_changed = True
        except StepFailed:
            raise
        except OSError as e:
            raise StepFailed(item.label(), e.strerror or str(e)) from None
        if done:
            done(change)
    if unit_files_changed and live:
        systemctl("daemon-reload")
    return changes


def _one(item, change, root, live):
    kind = item.kind
    if kind == "user":
        create_user(item.name, item.home)
    elif kind == "aptkey":
        fetch_key(item.url, root, item.path)
    elif kind == "packages":
        install_packages(item)
    elif kind == "npm":
        npm_install(item, root)
    elif kind == "dir":
        make_dir(root, item.path, item.mode, item.owner, item.group, live)
    elif kind == "link":
        make_link(root, item.path, item.target)
    elif kind == "absent":
        p = under(root, item.path)
        try:
            p.unlink()
        except FileNotFoundError:
            return
        fsync_dir(p.parent)
    elif kind == "file":
        if Action.WRITE in change.actions:
            write_file(root, item.path, item.content, item.mode, item.owner, item.group, live)
        else:
            set_attrs(root, item.path, item.mode, item.owner, item.group, live)


def _table(item):
    """Load the firewall table again through its unit, unless a restart earlier in this run already did."""
    if item.reasons(nft_table("inet", "dbrs")):
        systemctl("restart", FIREWALL_UNIT)


def _service(item, actions):
    if Action.STOP in actions:
        systemctl("stop", item.unit)
    if Action.DISABLE in actions:
        systemctl("disable", item.unit)
    if Action.ENABLE in actions:
        systemctl("enable", item.unit)
    if Action.START in actions:
        systemctl("start", item.unit)
    elif Action.RESTART in actions:
        # reload where the unit can (the firewall swaps its table atomically), else restart
        systemctl("try-reload-or-restart", item.unit)
