"""Members that left this host's spec: stop and disable their unit, remove their config.

`decide` is pure: the spec's members on this host against the members found
on it (conf dirs /etc/dbrs/*/mongod.conf, enabled or running dbrs-mongod@
instances). `prune` carries one decision out in small idempotent steps, so a
run cut short converges on the next. The data directory stays unless
--purge-data: a member removed by mistake can be put back with its data, and
a removed member's files are the last copy of what it held.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from . import fsutil, paths
from .errors import StepFailed
from .replset import connection

UNIT = "dbrs-mongod@{}.service"
WANTS = paths.UNIT_DIR / "multi-user.target.wants"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Found:
    """One member dbrs installed on this host, as the host shows it."""

    name: str
    conf: bool = False        # /etc/dbrs/NAME/mongod.conf exists
    enabled: bool = False     # its instance is enabled (a link in multi-user.target.wants)
    active: bool = False      # its mongod runs or starts
    data: bool = False        # /var/lib/dbrs/NAME exists
    in_set: bool = False      # it runs and the replica set's config still lists it (hello: `me` in hosts/arbiters)


@dataclass(frozen=True)
class Prune:
    name: str
    stop: bool
    disable: bool
    remove_conf: bool
    purge: bool               # delete the data and log directories
    data_dir: str
    data_there: bool
    in_set: bool = False

    @property
    def needed(self):
        return self.stop or self.disable or self.remove_conf or (self.purge and self.data_there)

    def actions(self):
        out = (["stop"] if self.stop else []) + (["disable"] if self.disable else [])
        out += ["remove mongod.conf"] if self.remove_conf else []
        out += [f"delete {self.data_dir}"] if self.purge and self.data_there else []
        return out

    def line(self, dry_run=False):
        """(step, status, detail) in the install report; the detail says where the data is."""
        where = (f"data deleted ({self.data_dir})" if self.purge else
                 f"data kept in {self.data_dir} (delete it with --purge-data)" if self.data_there else
                 f"no data directory at {self.data_dir}")
        if self.in_set:
            return (f"departed {self.name}", "waiting", "not in this host's spec, but the replica set still lists it: "
                    "left running; remove it from the set first (`dbrs reconfigure` on the primary's host), then run "
                    "dbrs-install here again")
        if not self.needed:
            return (f"departed {self.name}", "unchanged", f"not in this host's spec; {where}")
        verb = "would change" if dry_run else "changed"
        if dry_run and self.purge and self.data_there:
            where = f"would delete {self.data_dir}"
        return (f"departed {self.name}", verb, f"not in this host's spec: {', '.join(self.actions())}; {where}")


def decide(keep, found, purge=False):
    """What to do with each member found on the host that `keep` (names of this host's spec members) lacks.

    A member with nothing left but its data directory is reported only under
    --purge-data; otherwise the host is clean of it and says nothing. One the
    running set still lists is left alone: stopping it would take a vote the
    set counts on (remove it from the set first).
    """
    keep = set(keep)
    out = []
    for f in sorted(found, key=lambda f: f.name):
        if f.name in keep:
            continue
        if f.in_set:
            out.append(Prune(f.name, False, False, False, False, str(paths.member_data(f.name)), f.data, in_set=True))
            continue
        p = Prune(f.name, stop=f.active, disable=f.enabled, remove_conf=f.conf, purge=purge,
                  data_dir=str(paths.member_data(f.name)), data_there=f.data)
        if f.conf or f.enabled or f.active or (purge and f.data):
            out.append(p)
    return out


# ------------------------------------------------------------------ facts

def parse_instances(names):
    """Member names of dbrs-mongod@NAME.service unit names."""
    out = set()
    for n in names:
        if n.startswith("dbrs-mongod@") and n.endswith(".service"):
            name = n[len("dbrs-mongod@"):-len(".service")]
            if NAME.match(name):
                out.add(name)
    return out


PORT = re.compile(rb"^\s+port:\s*(\d+)\s*$", re.M)


def _lists(hello):
    return bool(hello.get("me")) and hello["me"] in (hello.get("hosts", []) + hello.get("arbiters", [])
                                                      + hello.get("passives", []))


def listed_in_set(conf_path):
    """Whether the mongod of this conf is a member the set counts on: its own config lists it (hello on
    loopback) and another member of that config answers and lists it too. A removed member whose
    removal never reached it (the others' firewalls drop it) lists itself forever; no other member
    can hear it, so stopping it takes nothing from the set."""
    try:
        m = PORT.search(conf_path.read_bytes())
    except OSError:
        return False
    if not m:
        return False
    try:
        with connection.client("127.0.0.1", int(m.group(1)), timeout_ms=1500) as c:
            h = c.admin.command("hello")
    except connection.errors().PyMongoError:
        return False
    if not _lists(h):
        return False
    for other in h.get("hosts", []) + h.get("arbiters", []) + h.get("passives", []):
        if other == h["me"]:
            continue
        host, _, port = other.rpartition(":")
        try:
            with connection.client(host, int(port), timeout_ms=1500) as c:
                theirs = c.admin.command("hello")
        except (connection.errors().PyMongoError, ValueError):
            continue
        if h["me"] in theirs.get("hosts", []) + theirs.get("arbiters", []) + theirs.get("passives", []):
            return True
    return False


def found(root=None, live=True, running=()):
    """Members dbrs installed here: conf dirs, enabled and running instances, data dirs (what --purge-data finds)."""
    etc = fsutil.under(root, paths.ETC)
    confs = {p.parent.name for p in etc.glob("*/mongod.conf") if NAME.match(p.parent.name)}
    wants = fsutil.under(root, WANTS)
    enabled = parse_instances(p.name for p in wants.glob("dbrs-mongod@*.service")) if wants.is_dir() else set()
    active = set(running) if live else set()
    data_root = fsutil.under(root, paths.DATA)
    data = {p.name for p in data_root.iterdir() if p.is_dir() and NAME.match(p.name)} if data_root.is_dir() else set()
    return [Found(n, conf=n in confs, enabled=n in enabled, active=n in active, data=n in data,
                  in_set=live and n in active and listed_in_set(fsutil.under(root, paths.member_conf(n))))
            for n in sorted(confs | enabled | active | data)]


# ------------------------------------------------------------------ doing

def _systemctl(*args):
    r = subprocess.run(["systemctl", *args], capture_output=True, text=True)
    if r.returncode != 0:
        detail = (r.stderr or r.stdout).strip().splitlines()
        raise StepFailed("systemctl " + " ".join(args), detail[-1] if detail else f"exited {r.returncode}")


def prune(p, root=None, live=True):
    """Stop, disable, remove the config, and (--purge-data) delete data and logs; each step re-checkable."""
    unit = UNIT.format(p.name)
    if live and p.stop:
        _systemctl("stop", unit)
    if live and p.disable:
        _systemctl("disable", unit)
    elif p.disable:
        link = fsutil.under(root, WANTS / unit)
        link.unlink(missing_ok=True)
    if p.remove_conf:
        conf = fsutil.under(root, paths.member_conf(p.name))
        conf.unlink(missing_ok=True)
        try:
            conf.parent.rmdir()
        except OSError:
            pass        # something of the operator's is in there: leave the folder
        fsutil.fsync_dir(conf.parent.parent)
    if live and (p.stop or p.disable):
        subprocess.run(["systemctl", "reset-failed", unit], capture_output=True)
    if p.purge:
        for d in (paths.member_data(p.name), paths.member_log(p.name)):
            where = fsutil.under(root, d)
            if where.is_dir() and not where.is_symlink():
                shutil.rmtree(where)


def run(target, root, dry_run, purge, running):
    """The install step: decide from the host, then prune (unless dry_run); one report line per member.

    A staging root (--root) may hold the members of several hosts, so there
    only members the spec no longer names at all are departed.
    """
    members = target.host_members + target.members if target.live else target.spec.members
    keep = {m.name for m in members}
    decisions = decide(keep, found(root, target.live, set(running) - keep), purge)
    lines = []
    for p in decisions:
        if not dry_run:
            prune(p, root, target.live)
        lines.append(p.line(dry_run))
    return lines
