"""The things a host holds (items), the shapes of what was found (facts), and their comparison. Pure.

One `compare_*` per kind sets an item against the fact read from the host and
says "changed" or "unchanged", with the reasons for the operator and the
typed actions for `apply`. Nothing here reads or writes the host, so every
decision is unit-tested without root; the planners and the fact readers both
import from here, so neither imports the other. host/registry binds each kind
to its comparison, its fact reader and its step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Optional

from .. import paths


# ------------------------------------------------------------------- items
# Items and fact shapes are NamedTuples (immutable, compared by value): a frozen dataclass costs
# ~0.6 ms to create at import, a NamedTuple ~0.1 ms, and every dbrs-install run loads all of them.

class User(NamedTuple):
    """The system user and group mongod runs as (MongoDB's packages use `mongodb`)."""

    name: str
    home: str

    kind = "user"

    @property
    def key(self):
        return f"user:{self.name}"

    def label(self):
        return f"user {self.name}"


class AptKey(NamedTuple):
    """MongoDB's release signing key, fetched once into a keyring used by signed-by."""

    url: str
    path: str

    kind = "aptkey"

    @property
    def key(self):
        return f"aptkey:{self.path}"

    def label(self):
        return f"apt key {self.path}"


class Packages(NamedTuple):
    names: tuple
    debs_from: Optional[str] = None

    kind = "packages"

    @property
    def key(self):
        return "packages:" + ",".join(self.names)

    def label(self):
        src = f" from {self.debs_from}" if self.debs_from else ""
        return "packages " + " ".join(self.names) + src


class NpmPackage(NamedTuple):
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


class Dir(NamedTuple):
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


class File(NamedTuple):
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


class Link(NamedTuple):
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


class Absent(NamedTuple):
    """A file dbrs once wrote that the spec no longer wants (removed, e.g. Mongo Express turned off)."""

    path: str

    kind = "absent"

    @property
    def key(self):
        return f"path:{self.path}"

    def label(self):
        return f"no file {self.path}"


class Service(NamedTuple):
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

class PathFact(NamedTuple):
    exists: bool
    kind: str = ""           # "file", "dir", "link", "other"
    content: bytes = b""
    mode: int = 0
    owner: str = ""
    group: str = ""
    target: str = ""
    mtime_ns: int = 0


class ServiceFact(NamedTuple):
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


def _attr_reasons(item, fact, chown):
    reasons = []
    if fact.mode != item.mode:
        reasons.append(f"mode {fact.mode:04o}->{item.mode:04o}")
    if chown and (fact.owner, fact.group) != (item.owner, item.group):
        reasons.append(f"owner {fact.owner}:{fact.group}->{item.owner}:{item.group}")
    return reasons


class Seen:
    """What the comparison of earlier items tells later ones: which units a changed file restarts,
    which items were skipped (a service needing one is skipped too), and whether owners are judged."""

    __slots__ = ("chown", "touched_units", "skipped")

    def __init__(self, chown=True):
        self.chown = chown
        self.touched_units = set()
        self.skipped = set()


def _change(item, reasons, actions, before=None):
    return Change(item, "changed" if reasons else "unchanged", reasons, before, actions if reasons else ())


# One comparison per kind of item, `(item, fact, seen) -> Change`, bound to its kind in host/registry.

def compare_file(item, fact, seen):
    rewrite = True
    if fact is None or not fact.exists:
        reasons = ["new"]
    elif fact.kind != "file":
        reasons = ["not a regular file"]
    else:
        rewrite = fact.content != item.content
        reasons = (["content"] if rewrite else []) + _attr_reasons(item, fact, seen.chown)
    if reasons and item.notify:
        seen.touched_units.update(item.notify)
    return _change(item, reasons, (Action.WRITE if rewrite else Action.ATTRS,) + _unit_actions(item), fact)


def compare_dir(item, fact, seen):
    if fact is None or not fact.exists:
        reasons = ["new"]
    elif fact.kind != "dir":
        reasons = ["not a directory"]
    else:
        reasons = _attr_reasons(item, fact, seen.chown)
    return _change(item, reasons, (Action.MKDIR,), fact)


def compare_link(item, fact, seen):
    if fact is None or not fact.exists:
        reasons = ["new"]
    else:
        reasons = ["target"] if fact.kind != "link" or fact.target != item.target else []
    if reasons and item.notify:
        seen.touched_units.update(item.notify)
    return _change(item, reasons, (Action.LINK,) + _unit_actions(item), fact)


def compare_user(item, fact, seen):
    return _change(item, [] if fact else ["new"], (Action.CREATE_USER,))


def compare_aptkey(item, fact, seen):
    present = fact is not None and fact.exists
    return _change(item, [] if present else ["new"], (Action.FETCH_KEY,))


def compare_packages(item, fact, seen):
    missing = [n for n in item.names if n not in (fact or ())]
    return _change(item, ["missing " + " ".join(missing)] if missing else [], (Action.INSTALL,))


def compare_npm(item, fact, seen):
    reasons = [] if fact == item.version else ["new" if not fact else f"version {fact}->{item.version}"]
    if reasons and item.check_only:
        seen.skipped.add(item.key)
        return Change(item, "skipped", ["not installed, and --no-packages installs nothing; "
                                        "run dbrs-install without --no-packages"])
    return _change(item, reasons, (Action.INSTALL,))


def compare_absent(item, fact, seen):
    there = fact is not None and fact.exists
    return _change(item, ["remove"] if there else [], (Action.REMOVE,) + _unit_actions(item), fact)


def compare_service(item, fact, seen):
    if item.needs in seen.skipped:
        return Change(item, "skipped", ["not installed"])
    fact = fact or ServiceFact(loaded=False)
    reasons = []
    if item.off:
        if fact.active in ("active", "activating", "reloading"):
            reasons.append("stop")
        if fact.enabled in ("enabled", "enabled-runtime"):
            reasons.append("disable")
    else:
        if item.enable and fact.enabled not in ("enabled", "static", "alias", "indirect", "generated"):
            reasons.append("enable")
        skipped_by_condition = fact.condition == "no"
        if item.start and fact.active != "active" and not skipped_by_condition:
            reasons.append("start")
        elif item.unit in seen.touched_units or _template_of(item.unit) in seen.touched_units:
            reasons.append("restart")
    return _change(item, reasons, tuple(_SERVICE_ACTION[r] for r in reasons))


_SERVICE_ACTION = {"stop": Action.STOP, "disable": Action.DISABLE, "enable": Action.ENABLE,
                   "start": Action.START, "restart": Action.RESTART}


def _unit_actions(item):
    """A unit file written or removed: systemd must reload its units before the next service step."""
    return (Action.UNITS_CHANGED,) if str(item.path).startswith(str(paths.UNIT_DIR) + "/") else ()


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
