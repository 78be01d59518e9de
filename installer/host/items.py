"""The things a host holds (items), the shapes of what was found (facts), and their comparison. Pure.

`compare()` sets each item against the facts read from the host and says
"changed" or "unchanged" with the reasons. Nothing here reads or writes the
host, so every decision is unit-tested without root; the planners and the
fact readers both import from here, so neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .. import paths


# ------------------------------------------------------------------- items

@dataclass(frozen=True)
class User:
    """The system user and group mongod runs as (MongoDB's packages use `mongodb`)."""

    name: str
    home: str

    kind = "user"

    @property
    def key(self):
        return f"user:{self.name}"

    def label(self):
        return f"user {self.name}"


@dataclass(frozen=True)
class AptKey:
    """MongoDB's release signing key, fetched once into a keyring used by signed-by."""

    url: str
    path: str

    kind = "aptkey"

    @property
    def key(self):
        return f"aptkey:{self.path}"

    def label(self):
        return f"apt key {self.path}"


@dataclass(frozen=True)
class Packages:
    names: tuple
    debs_from: Optional[str] = None

    kind = "packages"

    @property
    def key(self):
        return "packages:" + ",".join(self.names)

    def label(self):
        src = f" from {self.debs_from}" if self.debs_from else ""
        return "packages " + " ".join(self.names) + src


@dataclass(frozen=True)
class NpmPackage:
    """One npm package at an exact version under `prefix` (npm install --prefix); its fact is the installed version."""

    name: str
    version: str
    prefix: str
    # --no-packages: only look whether it is there; "skipped" (never installed by this run) when not
    check_only: bool = False

    kind = "npm"

    @property
    def key(self):
        return f"npm:{self.prefix}:{self.name}"

    def label(self):
        return f"npm {self.name}@{self.version} in {self.prefix}"

    def argv(self, prefix):
        """The npm command for this exact version into `prefix` (the root-mapped one);
        --ignore-scripts: root never runs a dependency's install hook."""
        return ["npm", "install", "--prefix", prefix, "--omit=dev", "--no-audit", "--no-fund",
                "--ignore-scripts", f"{self.name}@{self.version}"]


@dataclass(frozen=True)
class Dir:
    path: str
    mode: int = 0o755
    owner: str = "root"
    group: str = "root"

    kind = "dir"

    @property
    def key(self):
        return f"path:{self.path}"

    def label(self):
        return f"dir {self.path}"


@dataclass(frozen=True)
class File:
    path: str
    content: bytes
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"
    secret: bool = False
    # units restarted (if running) when this file changes
    notify: tuple = ()

    kind = "file"

    @property
    def key(self):
        return f"path:{self.path}"

    def label(self):
        return f"file {self.path}"


@dataclass(frozen=True)
class Link:
    """A symlink; `systemctl mask` is a link to /dev/null, so masking works under --root too."""

    path: str
    target: str
    notify: tuple = ()

    kind = "link"

    @property
    def key(self):
        return f"path:{self.path}"

    def label(self):
        return f"link {self.path} -> {self.target}"


@dataclass(frozen=True)
class Absent:
    """A file dbrs once wrote that the spec no longer wants (removed, e.g. Mongo Express turned off)."""

    path: str

    kind = "absent"

    @property
    def key(self):
        return f"path:{self.path}"

    def label(self):
        return f"no file {self.path}"


@dataclass(frozen=True)
class Service:
    """A unit that should be enabled and running (or skipped by its own Condition=)."""

    unit: str
    enable: bool = True
    start: bool = True
    # stopped and disabled instead (a feature turned off in the spec)
    off: bool = False
    # key of an item this unit cannot run without; when that item is skipped, so is the unit
    needs: str = ""

    kind = "service"

    @property
    def key(self):
        return f"service:{self.unit}"

    def label(self):
        return f"service {self.unit}"


# -------------------------------------------------------------- facts shapes

@dataclass(frozen=True)
class PathFact:
    exists: bool
    kind: str = ""           # "file", "dir", "link", "other"
    content: bytes = b""
    mode: int = 0
    owner: str = ""
    group: str = ""
    target: str = ""
    mtime_ns: int = 0


@dataclass(frozen=True)
class ServiceFact:
    enabled: str = ""        # systemctl is-enabled: enabled, disabled, static, masked, ...
    active: str = ""         # ActiveState
    condition: str = ""      # ConditionResult: yes/no (no = the unit's Condition= skipped it)
    loaded: bool = True


# ------------------------------------------------------------------ changes

class Action:
    """What apply does for a change; `reasons` only tells the operator why."""
    WRITE = "write"
    ATTRS = "attrs"
    MKDIR = "mkdir"
    LINK = "link"
    REMOVE = "remove"
    CREATE_USER = "create-user"
    FETCH_KEY = "fetch-key"
    INSTALL = "install"
    STOP = "stop"
    DISABLE = "disable"
    ENABLE = "enable"
    START = "start"
    RESTART = "restart"
    RELOAD_TABLE = "reload-table"
    UNITS_CHANGED = "units-changed"   # a unit file changed: daemon-reload before the next service step


@dataclass
class Change:
    item: object
    status: str               # "changed" | "unchanged" | "skipped"
    reasons: list = field(default_factory=list)
    before: Optional[PathFact] = None
    actions: tuple = ()

    @property
    def changed(self):
        return self.status == "changed"

    def line(self):
        why = f" ({', '.join(self.reasons)})" if self.reasons else ""
        return f"{self.status:9} {self.item.label()}{why}"


def _path_reasons(item, fact, chown):
    if not fact.exists:
        return ["new"]
    reasons = []
    if item.kind == "link":
        if fact.kind != "link" or fact.target != item.target:
            reasons.append("target")
        return reasons
    if item.kind == "dir" and fact.kind != "dir":
        return ["not a directory"]
    if item.kind == "file":
        if fact.kind != "file":
            return ["not a regular file"]
        if fact.content != item.content:
            reasons.append("content")
    if fact.mode != item.mode:
        reasons.append(f"mode {fact.mode:04o}->{item.mode:04o}")
    if chown and (fact.owner, fact.group) != (item.owner, item.group):
        reasons.append(f"owner {fact.owner}:{fact.group}->{item.owner}:{item.group}")
    return reasons


def compare(items, facts, *, chown=True):
    """Set each desired item against its fact. `facts` maps item.key to a fact.

    A Service is "changed" when it is not enabled/running, or when a file that
    notifies it changed in this plan (it will be restarted).
    """
    changes = []
    touched_units = set()
    skipped = set()
    for item in items:
        fact = facts.get(item.key)
        if item.kind in ("file", "dir", "link"):
            reasons = _path_reasons(item, fact or PathFact(False), chown)
            if reasons and getattr(item, "notify", ()):
                touched_units.update(item.notify)
            changes.append(Change(item, "changed" if reasons else "unchanged", reasons, fact,
                                  _path_actions(item, fact or PathFact(False)) if reasons else ()))
        elif item.kind == "user":
            changes.append(Change(item, "unchanged" if fact else "changed", [] if fact else ["new"],
                                  actions=() if fact else (Action.CREATE_USER,)))
        elif item.kind == "aptkey":
            present = fact is not None and fact.exists
            changes.append(Change(item, "unchanged" if present else "changed", [] if present else ["new"],
                                  actions=() if present else (Action.FETCH_KEY,)))
        elif item.kind == "packages":
            missing = [n for n in item.names if n not in (fact or ())]
            changes.append(Change(item, "changed" if missing else "unchanged",
                                  ["missing " + " ".join(missing)] if missing else [],
                                  actions=(Action.INSTALL,) if missing else ()))
        elif item.kind == "npm":
            reasons = [] if fact == item.version else ["new" if not fact else f"version {fact}->{item.version}"]
            if reasons and item.check_only:
                skipped.add(item.key)
                changes.append(Change(item, "skipped", ["not installed, and --no-packages installs nothing; "
                                                        "run dbrs-install without --no-packages"]))
                continue
            changes.append(Change(item, "changed" if reasons else "unchanged", reasons,
                                  actions=(Action.INSTALL,) if reasons else ()))
        elif item.kind == "absent":
            there = fact is not None and fact.exists
            changes.append(Change(item, "changed" if there else "unchanged", ["remove"] if there else [], fact,
                                  (Action.REMOVE,) + _unit_actions(item) if there else ()))
        elif item.kind == "service" and item.needs in skipped:
            changes.append(Change(item, "skipped", ["not installed"]))
        elif item.kind == "service" and item.off:
            fact = fact or ServiceFact(loaded=False)
            reasons = []
            if fact.active in ("active", "activating", "reloading"):
                reasons.append("stop")
            if fact.enabled in ("enabled", "enabled-runtime"):
                reasons.append("disable")
            changes.append(Change(item, "changed" if reasons else "unchanged", reasons,
                                  actions=tuple(_SERVICE_ACTION[r] for r in reasons)))
        elif item.kind == "service":
            fact = fact or ServiceFact(loaded=False)
            reasons = []
            if item.enable and fact.enabled not in ("enabled", "static", "alias", "indirect", "generated"):
                reasons.append("enable")
            skipped_by_condition = fact.condition == "no"
            if item.start and fact.active != "active" and not skipped_by_condition:
                reasons.append("start")
            elif item.unit in touched_units or _template_of(item.unit) in touched_units:
                reasons.append("restart")
            changes.append(Change(item, "changed" if reasons else "unchanged", reasons,
                                  actions=tuple(_SERVICE_ACTION[r] for r in reasons)))
        elif item.kind == "nftable":
            reasons = [] if fact == "?" else item.reasons(fact)
            changes.append(Change(item, "changed" if reasons else "unchanged", reasons,
                                  actions=(Action.RELOAD_TABLE,) if reasons else ()))
        else:
            raise TypeError(f"unknown item kind {item.kind}")
    return changes


_SERVICE_ACTION = {"stop": Action.STOP, "disable": Action.DISABLE, "enable": Action.ENABLE,
                   "start": Action.START, "restart": Action.RESTART}


def _unit_actions(item):
    return (Action.UNITS_CHANGED,) if str(item.path).startswith(str(paths.UNIT_DIR) + "/") else ()


def _path_actions(item, fact):
    if item.kind == "link":
        return (Action.LINK,) + _unit_actions(item)
    if item.kind == "dir":
        return (Action.MKDIR,)
    rewrite = not fact.exists or fact.kind != "file" or fact.content != item.content
    return (Action.WRITE if rewrite else Action.ATTRS,) + _unit_actions(item)


def _template_of(unit):
    if "@" in unit:
        prefix, _, rest = unit.partition("@")
        return f"{prefix}@{rest[rest.index('.'):] if '.' in rest else ''}"
    return unit


def summary(changes):
    changed = sum(1 for c in changes if c.changed)
    return {"changed": changed, "unchanged": len(changes) - changed}


def unit_path(unit):
    return str(paths.UNIT_DIR / unit)
