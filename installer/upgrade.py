"""Rolling MongoDB upgrades, decided on data. Pure: no I/O.

dbrs has no SSH: the operator runs `dbrs upgrade --to 8.0` on each host in
turn, and `decide` says from the live set (versions from buildInfo, states
from replSetGetStatus, the FCV from getParameter) whether it is this host's
turn and what it does. MongoDB's order (release notes, "Upgrade a Replica Set
to 8.0"): every member on the previous series with the FCV at that series;
secondaries and the arbiter first, one at a time, each healthy and caught up
before the next; the primary last, after a step-down; then
setFeatureCompatibilityVersion, which enables the new on-disk formats and
is one-way in practice (going back needs the FCV lowered first, and 8.0 only
goes back to 7.0 with MongoDB's support).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import DbrsError, InputError

# One major release at a time, as MongoDB allows; dbrs installs the last two.
SERIES = ("4.4", "5.0", "6.0", "7.0", "8.0")
DBRS_SERIES = ("7.0", "8.0")
HEALTHY = ("PRIMARY", "SECONDARY", "ARBITER")
CATCH_UP_S = 10.0     # a secondary further behind than this is not restarted past, nor counted as caught up


def series(version):
    """'8.0.4' -> '8.0' (None stays None)."""
    if not version:
        return None
    parts = str(version).split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 else str(version)


def path_between(frm, to):
    """The series MongoDB needs in between, inclusive: 6.0 -> 8.0 is ['6.0', '7.0', '8.0']."""
    a, b = SERIES.index(frm), SERIES.index(to)
    return list(SERIES[a:b + 1])


def check_version(flag, to):
    """InputError naming `flag` unless `to` is a series dbrs installs (the argument shown cut short)."""
    if to not in DBRS_SERIES:
        shown = repr(to[:20]) + ("..." if len(to) > 20 else "")
        raise InputError(flag, f"{shown} is not a MongoDB version dbrs installs", "use one of " + ", ".join(DBRS_SERIES))


def check_jump(frm, to):
    """InputError unless `frm` -> `to` is one step MongoDB supports and dbrs installs."""
    check_version("--to", to)
    if frm == to:
        return
    if frm not in SERIES:
        raise InputError("--to", f"the set runs MongoDB {frm}, which dbrs does not know",
                         "upgrade it to 7.0 with MongoDB's own procedure first")
    if SERIES.index(frm) > SERIES.index(to):
        raise InputError("--to", f"{frm} -> {to} is a downgrade", "dbrs does not downgrade; MongoDB's downgrade "
                         "procedure needs the FCV lowered first (see its release notes)")
    steps = path_between(frm, to)
    if len(steps) > 2:
        raise InputError("--to", f"MongoDB does not upgrade {frm} -> {to} in one step",
                         "go one release at a time, each with its FCV step: " + " -> ".join(steps)
                         + (f" (dbrs installs only {', '.join(DBRS_SERIES)}: take the set to 7.0 with MongoDB's "
                            "own procedure first)" if frm not in DBRS_SERIES else ""))


@dataclass(frozen=True)
class MemberView:
    name: str
    host: str
    state: str                   # PRIMARY, SECONDARY, ARBITER, or what replSetGetStatus says (DOWN, RECOVERING...)
    version: str | None          # buildInfo.version, None when it did not answer
    local: bool = False
    lag_s: float | None = None

    @property
    def series(self):
        return series(self.version)

    @property
    def healthy(self):
        return self.state in HEALTHY and self.version is not None


@dataclass(frozen=True)
class View:
    members: tuple
    fcv: str | None              # featureCompatibilityVersion.version on the primary
    fcv_target: str | None = None  # set while an FCV change is under way (or stopped half-way)


@dataclass(frozen=True)
class Step:
    action: str                  # "packages" | "restart" | "stepdown"
    member: str = ""
    version: str = ""

    def text(self):
        return {"packages": f"install MongoDB {self.version} packages on this host",
                "restart": f"restart {self.member} on the {self.version} binary and wait until it is healthy "
                           "and caught up",
                "stepdown": f"step {self.member} down (a caught-up secondary takes over)"}[self.action]


@dataclass
class Decision:
    status: str                  # "upgrade" | "not yet" (the primary's host, too early) | "host done" | "done"
    steps: list = field(default_factory=list)
    message: str = ""


def _by_state(members):
    return ", ".join(f"{m.name} {m.state.lower()}" for m in members)


def check_set(view, to):
    """The set as a whole may be upgraded: every member answers and is healthy, no secondary lags,
    every binary is on the previous series or `to`, and the FCV is the previous series."""
    unhealthy = [m for m in view.members if not m.healthy]
    if unhealthy:
        raise DbrsError("the set is not healthy: " + _by_state(unhealthy) + "; an upgrade restarts members one at a "
                        "time and needs every other one up (bring them back, see `dbrs status`)")
    lagging = [m for m in view.members if m.state == "SECONDARY" and m.lag_s is not None and m.lag_s > CATCH_UP_S]
    if lagging:
        raise DbrsError("secondaries are behind: " + ", ".join(f"{m.name} {m.lag_s:.0f} s" for m in lagging)
                        + f"; wait until they are within {CATCH_UP_S:g} s (`dbrs status`)")
    found = sorted({m.series for m in view.members if m.series}, key=lambda s: SERIES.index(s) if s in SERIES else -1)
    older = [s for s in found if s != to]
    if len(older) > 1:
        raise DbrsError(f"the members run {', '.join(found)}: finish the earlier upgrade first")
    frm = older[0] if older else to
    check_jump(frm, to)
    if view.fcv_target:
        raise DbrsError(f"the feature compatibility version is changing ({view.fcv} -> {view.fcv_target}): "
                        f"finish it with `dbrs upgrade --set-fcv {view.fcv_target}` first")
    if frm != to and view.fcv != frm:
        raise DbrsError(f"the feature compatibility version is {view.fcv}, not {frm}: MongoDB upgrades a set to {to} "
                        f"only from FCV {frm}; run `dbrs upgrade --set-fcv {frm}` first")
    return frm


def decide(view, to):
    """This host's turn, and its steps; or who goes next."""
    frm = check_set(view, to)
    old = [m for m in view.members if m.series != to]
    if not old:
        fcv = "" if view.fcv == to else (f"; then, once your applications are checked against {to}, "
                                         f"`dbrs upgrade --set-fcv {to}` (one-way in practice)")
        return Decision("done", [], f"every member runs {to}{fcv}")
    local_old = [m for m in old if m.local]
    if not local_old:
        return Decision("host done", [], "this host's members already run " + to + "; next: "
                        + _next_hint(old, to))
    primary = next((m for m in view.members if m.state == "PRIMARY"), None)
    remote_old = [m for m in old if not m.local]
    if primary and primary.local and primary in old and remote_old:
        return Decision("not yet", [], f"this host holds the primary ({primary.name}), which goes last; "
                        "first: " + _next_hint(remote_old, to))
    steps = [Step("packages", version=to)]
    steps += [Step("restart", m.name, to) for m in local_old if m.state != "PRIMARY"]
    if primary and primary in local_old:
        steps += [Step("stepdown", primary.name), Step("restart", primary.name, to)]
    return Decision("upgrade", steps, f"{frm} -> {to} on this host: " + "; ".join(s.text() for s in steps))


def _next_hint(old, to):
    non_primary = [m for m in old if m.state != "PRIMARY"] or old
    hosts = sorted({m.host for m in non_primary})
    return f"run `sudo dbrs upgrade --to {to}` on {' or '.join(hosts)} (" + \
        ", ".join(f"{m.name} {m.version}" for m in non_primary) + ")"


def fcv_command(to):
    """MongoDB 7.0+ refuses setFeatureCompatibilityVersion without confirm: true."""
    return {"setFeatureCompatibilityVersion": to, "confirm": True}


def decide_fcv(view, to):
    """None when the FCV is `to` already; else the command, once every member runs `to` and is healthy."""
    check_version("--set-fcv", to)
    if view.fcv == to and not view.fcv_target:
        return None
    behind = [m for m in view.members if m.series != to]
    if behind:
        raise DbrsError(f"not every member runs {to}: " + ", ".join(f"{m.name} {m.version or 'not answering'}"
                                                                     for m in behind)
                        + f"; run `dbrs upgrade --to {to}` on their hosts first")
    unhealthy = [m for m in view.members if not m.healthy]
    if unhealthy:
        raise DbrsError("the set is not healthy: " + _by_state(unhealthy) + "; the FCV change needs a majority of "
                        "data-bearing members (see `dbrs status`)")
    return fcv_command(to)
