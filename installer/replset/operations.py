"""The set from any member host: status, degrade/recover, stepdown.

Thin loops around the pure parts (`documents.plan_reconfig`, `health`):
every connection is a `connection.Conn`, so any MongoDB failure ends as one
line naming the member, the command and the likely cause, and every wait is
one `connection.wait_until` with progress and a deadline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..errors import DbrsError, InputError
from . import connection as conn
from .documents import config_member, plan_reconfig
from .health import ago, interpret_status

CATCH_UP_S = 10          # recover hands the priority back once the member is this close
VOTE_LAG_S = 2           # ... and the vote only this close: a lagged voter stalls the majority commit point
STEPDOWN_CATCH_UP_S = 10  # MongoDB's default secondaryCatchUpPeriodSecs
# Errors of a reconfig that only mean "the previous config is not committed yet": retry.
RECONFIG_RETRY_CODES = (109, 308)


def _say(progress, text):
    if progress:
        progress(text)


# ------------------------------------------------------------ from any member host

def _oplog_window(c):
    try:
        oplog = c.client.local["oplog.rs"]
        first = next(iter(oplog.find({}, {"ts": 1, "wall": 1}).sort("$natural", 1).limit(1)), None)
        last = next(iter(oplog.find({}, {"ts": 1, "wall": 1}).sort("$natural", -1).limit(1)), None)
    except conn.errors().OperationFailure:
        return None
    if not first or not last:
        return None
    return float(last["ts"].time - first["ts"].time)


def read_status(spec, secrets, user="monitor"):
    """Status as seen by the primary (or, without one, by the first data-bearing member that answers)."""
    member, client = conn.connect_any(spec, secrets, user, need_primary=False)
    with client as c:
        try:
            rs = c.client.admin.command("replSetGetStatus")
        except conn.errors().PyMongoError as e:
            if conn.is_auth_failure(e):
                raise DbrsError(f"{user} cannot log in to {member.name}: the password in secrets.toml is not the "
                                "set's; is --config pointing at this cluster?") from None
            raise conn.translate(e, c.who, "replSetGetStatus") from None
        config = c.command("replSetGetConfig")["config"]
        rw = c.command("getDefaultRWConcern")
        with conn.talking(c.who, "find local.oplog.rs"):
            window = _oplog_window(c)
    return interpret_status(rs, spec, config, rw, window)


def _reconfig(c, new, deadline):
    """replSetReconfig, retried while the previous config is not committed yet (until `deadline`)."""
    last = {}

    def probe():
        try:
            c.client.admin.command({"replSetReconfig": new})
            return True
        except conn.errors().OperationFailure as e:
            if e.code not in RECONFIG_RETRY_CODES or time.monotonic() >= deadline:
                raise conn.translate(e, c.who, "replSetReconfig") from None
            last["error"] = e
        except conn.errors().PyMongoError as e:
            raise conn.translate(e, c.who, "replSetReconfig") from None
        return None

    conn.wait_until(deadline, probe, lambda final: str(conn.translate(last["error"], c.who, "replSetReconfig")))


def _state(client, spec):
    config = client.command("replSetGetConfig")["config"]
    st = interpret_status(client.command("replSetGetStatus"), spec, config)
    up = {m.address for m in st.members if m.healthy}
    primary = next((m.address for m in st.members if m.state == "PRIMARY"), None)
    return config, st, up, primary


def degrade(spec, secrets, name, wait_s=60):
    """votes 0 / priority 0 for a member that is down, so majority writes succeed without it."""
    member = conn.lookup(spec, name)
    _, client = conn.connect_any(spec, secrets, "admin", need_primary=True)
    with client as c:
        config, _, up, primary = _state(c, spec)
        new = plan_reconfig(config, member, "degrade", primary=primary, up=up)
        _reconfig(c, new, time.monotonic() + wait_s)
    return f"{name} degraded: votes 0, priority 0 (config version {new['version']}); writes no longer wait for it"


def recover(spec, secrets, name, wait_s=600, progress=None):
    """Give the vote back once the member has caught up (a lagged voter stalls the majority commit point,
    which is what degrade avoided), with priority 0; then its priority."""
    member = conn.lookup(spec, name)
    deadline = time.monotonic() + wait_s
    _, client = conn.connect_any(spec, secrets, "admin", need_primary=True)
    with client as c:
        config, _, up, primary = _state(c, spec)
        new = plan_reconfig(config, member, "recover", primary=primary, up=up)
        if config_member(config, member).get("votes", 1) == 0:
            _wait_caught_up(c, spec, member, VOTE_LAG_S, deadline, wait_s, progress,
                            "it is still degraded (votes 0), which is safe")
            config, _, up, primary = _state(c, spec)
            new = plan_reconfig(config, member, "recover", primary=primary, up=up)
            _reconfig(c, new, deadline)
            _say(progress, f"{name} votes again (priority 0, config version {new['version']})")
        _wait_caught_up(c, spec, member, CATCH_UP_S, deadline, wait_s, progress,
                        "it votes again with priority 0")
        config, _, up, primary = _state(c, spec)
        new = plan_reconfig(config, member, "recover", primary=primary, up=up)
        _reconfig(c, new, deadline)
    return f"{name} recovered: votes 1, priority {member.priority:g} (config version {new['version']})"


def _wait_caught_up(client, spec, member, within_s, deadline, wait_s, progress, state_now):
    """Until `member` is a SECONDARY at most `within_s` behind the primary; DbrsError at the deadline."""
    name = member.name
    last = {}

    def probe():
        ms = last["ms"] = _state(client, spec)[1].member(name)
        return True if ms and ms.state == "SECONDARY" and ms.lag_s is not None and ms.lag_s <= within_s else None

    def describe(final):
        ms = last["ms"]
        where = f"state {ms.state if ms else '?'}, lag {ago(ms.lag_s) if ms and ms.lag_s is not None else '?'}"
        if final:
            return (f"{name} has not caught up within {wait_s:g} s ({where}); {state_now}; "
                    f"run `dbrs recover {name}` again to finish")
        return f"waiting for {name} to catch up to within {within_s:g} s ({where})", ms.state if ms else None

    conn.wait_until(deadline, probe, describe, limit=wait_s, progress=progress, tell_last=False)


@dataclass
class Stepdown:
    old: str
    new: str
    no_primary_s: float


def stepdown(spec, secrets, secs=60, wait_s=60):
    """Step the primary down and time how long the set had no primary (a failover drill).

    MongoDB refuses a stepdown shorter than its secondaryCatchUpPeriodSecs,
    so the catch-up period follows a short --secs instead of the fixed 10 s.
    """
    catch_up_s = min(STEPDOWN_CATCH_UP_S, secs)
    old, client = conn.connect_any(spec, secrets, "admin", need_primary=True)
    with client as c:
        _, st, _, _ = _state(c, spec)
        electable = [m for m in st.members if m.state == "SECONDARY" and m.health and m.votes and m.priority > 0]
        if not electable:
            raise InputError("stepdown", "no healthy electable secondary",
                             "the set would stay without a primary; bring a secondary back (or recover it) first")
        started = time.monotonic()
        try:
            c.client.admin.command({"replSetStepDown": secs, "secondaryCatchUpPeriodSecs": catch_up_s})
        except conn.errors().AutoReconnect:
            pass  # older servers close every connection on stepdown
        except conn.errors().PyMongoError as e:
            raise conn.translate(e, c.who, "replSetStepDown") from None

    def probe():
        for m in spec.members:
            if m.name == old.name or m.arbiter:
                continue
            try:
                if conn.hello(m.host, m.port, 1000).get("isWritablePrimary"):
                    return Stepdown(old.name, m.name, time.monotonic() - started)
            except conn.errors().PyMongoError:
                pass
        return None

    return conn.wait_until(started + wait_s, probe,
                           lambda final: f"{old.name} stepped down but no new primary within {wait_s:g} s; "
                                         "see `dbrs status`", poll_s=0.1)
