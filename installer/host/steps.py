"""The small host steps apply takes, one per kind of item, each idempotent and re-checking the host.

Files go through `fsutil`'s atomic writer. Each step reads the host right
before it acts, since earlier steps may have changed it. Every step is
`(item, actions, root, live)`; host/registry binds it to its kind of item.
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


def user(item, actions, root, live):
    create_user(item.name, item.home)


def aptkey(item, actions, root, live):
    fetch_key(item.url, root, item.path)


def packages(item, actions, root, live):
    install_packages(item)


def npm(item, actions, root, live):
    npm_install(item, root)


def directory(item, actions, root, live):
    make_dir(root, item.path, item.mode, item.owner, item.group, live)


def link(item, actions, root, live):
    make_link(root, item.path, item.target)


def absent(item, actions, root, live):
    p = under(root, item.path)
    try:
        p.unlink()
    except FileNotFoundError:
        return
    fsync_dir(p.parent)


def file(item, actions, root, live):
    if Action.WRITE in actions:
        write_file(root, item.path, item.content, item.mode, item.owner, item.group, live)
    else:
        set_attrs(root, item.path, item.mode, item.owner, item.group, live)


def table(item, actions, root, live):
    """Load the firewall table again through its unit, unless a restart earlier in this run already did."""
    if item.reasons(nft_table("inet", "dbrs")):
        systemctl("restart", FIREWALL_UNIT)


def service(item, actions, root, live):
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
