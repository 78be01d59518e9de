"""Doing a rolling upgrade on this host: read the live set, let `upgrade.decide` choose, carry it out.

Every restart re-reads the set first and goes ahead only when every other
member is healthy, so two hosts upgrading at once cannot take two members
down together. A run cut short anywhere is resumed by running it again: the
versions the members report say what is left.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import replace

from . import generation, paths, secrets, upgrade
from .host import apply, facts, packages, registry, steps
from .host.items import Packages
from .replset import connection, health, operations
from .errors import DbrsError, InputError
from .fsutil import write_file
from .host.target import Target
from .upgrade import MemberView, View

POLL_S = 1.0
STEPDOWN_S = 60


def build_version(member, timeout_ms=2000):
    """buildInfo.version of one member (MongoDB answers it before authentication), None when it does not answer."""
    try:
        with connection.client(member.host, member.port, timeout_ms=timeout_ms) as c:
            return str(c.admin.command("buildInfo")["version"])
    except connection.errors().PyMongoError:
        return None


def read_view(spec, secrets, local_names):
    """Versions from each member, states and lag from the primary, the FCV from the primary."""
    primary, seen = connection.find_primary(spec)
    if primary is None:
        answering = [n for n, h in seen.items() if isinstance(h, dict)]
        raise DbrsError("no member is PRIMARY (answering: " + (", ".join(answering) or "none")
                        + "); an upgrade starts from a healthy set (see `dbrs status`)")
    with connection.connect(primary.name, primary.host, primary.port, user="admin", password=secrets.password("admin")) as c:
        rs = c.command("replSetGetStatus")
        fcv = c.command({"getParameter": 1, "featureCompatibilityVersion": 1}).get("featureCompatibilityVersion", {})
    status = health.interpret_status(rs, spec)
    members = []
    for m in spec.members:
        ms = status.member(m.name)
        members.append(MemberView(m.name, m.host, ms.state if ms else "NOT IN THE SET", build_version(m),
                                  local=m.name in local_names, lag_s=ms.lag_s if ms else None))
    return View(tuple(members), fcv.get("version"), fcv.get("targetVersion"))


class Host:
    """This host's side: MongoDB's repository, the pin and the packages for a version; restarting a member."""

    def __init__(self, spec, packages_from=None):
        self.spec = spec
        self.packages_from = packages_from

    def install(self, version):
        spec = replace(self.spec, cluster=replace(self.spec.cluster, mongodb_version=version))
        target = Target(spec=spec, members=(), host_members=(), packages=True, live=True,
                        debs_from=self.packages_from, os=None if self.packages_from else facts.os_release())
        items = packages.items(target)
        files = [i for i in items if not isinstance(i, Packages)]
        apply.apply(registry.compare(files, registry.gather(files, None, True)), live=True)
        for item in items:
            if isinstance(item, Packages):
                steps.install_packages(item)    # an installed package moves to the pin's candidate

    def restart(self, name):
        steps.systemctl("restart", f"dbrs-mongod@{name}.service")


def _ready(spec, secrets, local_names, name):
    """Re-read the set right before a restart: every other member healthy and caught up."""
    view = read_view(spec, secrets, local_names)
    others = [m for m in view.members if m.name != name]
    bad = [m for m in others if not m.healthy or (m.state == "SECONDARY" and (m.lag_s or 0) > upgrade.CATCH_UP_S)]
    if bad:
        raise DbrsError(f"not restarting {name}: " + ", ".join(f"{m.name} {m.state.lower()}" for m in bad)
                        + "; each member is restarted only while all others are healthy (run it again when they are)")


def _wait_member(spec, secrets, local_names, name, to, deadline, wait_s, progress):
    started = time.monotonic()
    while True:
        try:
            view = read_view(spec, secrets, local_names)
            m = next(m for m in view.members if m.name == name)
            where = f"{m.state.lower()}, {m.version or 'not answering'}" + (
                f", {m.lag_s:.0f} s behind" if m.lag_s is not None else "")
            if (m.series == to and m.state in ("SECONDARY", "ARBITER", "PRIMARY")
                    and (m.lag_s is None or m.lag_s <= upgrade.CATCH_UP_S)):
                return m
        except DbrsError as e:      # the set may have no primary for a moment
            where = str(e)[:160]
        if time.monotonic() >= deadline:
            raise DbrsError(f"{name} is not healthy on {to} within {wait_s:g} s ({where}); see "
                            f"`journalctl -u dbrs-mongod@{name}` and `dbrs status`, then run `dbrs upgrade --to {to}` "
                            "again")
        if progress:
            progress.wait(f"waiting for {name} on {to} ({where})", time.monotonic() - started, wait_s)
        time.sleep(POLL_S)


def run(spec, secrets, to, local_names, host, progress=None, wait_s=600, dry_run=False):
    """Decide from the live set and, unless dry_run or it is not this host's turn, carry the steps out.

    Returns (decision, done steps). `progress` is a cli Reporter (or None).
    """
    decision = upgrade.decide(read_view(spec, secrets, local_names), to)
    if dry_run or decision.status != "upgrade":
        return decision, []
    done = []
    for step in decision.steps:
        if progress:
            progress(step.text())
        if step.action == "packages":
            host.install(to)
        elif step.action == "stepdown":
            sd = operations.stepdown(spec, secrets, secs=STEPDOWN_S, wait_s=min(wait_s, 120))
            step = replace(step, member=f"{sd.old} -> {sd.new} ({sd.no_primary_s:.1f} s without a primary)")
        else:
            _ready(spec, secrets, local_names, step.member)
            host.restart(step.member)
            _wait_member(spec, secrets, local_names, step.member, to, time.monotonic() + wait_s, wait_s, progress)
        done.append(step)
    return decision, done


VERSION_LINE = re.compile(r'^(\s*mongodb_version\s*=\s*)(["\'])([^"\']*)\2', re.M)


def spec_with_version(text, to):
    """The spec text with cluster.mongodb_version set to `to`, every other byte (comments too) kept; None if no
    such line (the default 8.0 applies then)."""
    m = VERSION_LINE.search(text)
    if not m:
        return None
    return text[:m.start(3)] + to + text[m.end(3):]


def set_spec_version(spec_path, to):
    """Write `to` into this host's spec (atomically, same mode); True when it changed."""
    with open(spec_path, encoding="utf-8") as f:
        text = f.read()
    new = spec_with_version(text, to)
    if new is None:
        if to == "8.0":
            return False
        raise DbrsError(f"{spec_path} has no cluster.mongodb_version line; add mongodb_version = \"{to}\" under [cluster]")
    if new == text:
        return False
    st = os.stat(spec_path)
    write_file("/", str(spec_path), new.encode(), st.st_mode & 0o7777, chown=False)
    return True


def open_bundle(spec_path, passphrase):
    """The bundle next to the spec, opened with `passphrase` (checked before anything changes)."""
    where = str(paths.siblings(spec_path)["bundle"])
    try:
        data = open(where, "rb").read()
    except OSError as e:
        raise InputError("--passphrase-file", f"{where}: {e.strerror}", "re-seal on the host that holds bundle.dbrs") from None
    return secrets.open_bundle(data, passphrase, where=where)


def reseal(spec_path, passphrase):
    """bundle.dbrs sealed again with this host's spec (now at the new version), its secrets unchanged;
    True when it changed. Hosts installed from it later get the new version's repository and pin."""
    return generation.reseal(spec_path, passphrase) is not None
