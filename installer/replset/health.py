"""What the set's answers mean: replSetGetStatus interpreted, connection failures in the operator's words.

Pure: tested on recorded documents without a server. Each problem names the
next command to run; `dbrs status --check` fails on problems, not on notes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timezone

from .documents import concern_matches, concern_text, rw_concern

STATE_NAMES = {
    0: "STARTUP", 1: "PRIMARY", 2: "SECONDARY", 3: "RECOVERING", 5: "STARTUP2",
    6: "UNKNOWN", 7: "ARBITER", 8: "DOWN", 9: "ROLLBACK", 10: "REMOVED",
}
LAG_WARN_S = 30          # a secondary further behind than this is worth a page


# ------------------------------------------------------------ connection failures

def failure_kind(error_text):
    """refused | timeout | dns | auth | other, from a pymongo error message.

    DNS first: pymongo's server-selection error after a failed lookup also says "Timeout: 2.0s"."""
    t = error_text.lower()
    if any(s in t for s in ("name or service not known", "nodename nor servname", "temporary failure in name",
                            "no address associated with hostname")):
        return "dns"
    if "refused" in t:
        return "refused"
    if "timed out" in t or "timeout" in t:
        return "timeout"
    if "authentication failed" in t or "auth" in t and "fail" in t:
        return "auth"
    return "other"


_CAUSE = {
    "refused": "connection refused: nothing listens there; is dbrs-mongod@{name} running on {host}?",
    "timeout": "timed out: a firewall drops the traffic or the host is down",
    "dns": "{host} does not resolve (no DNS or /etc/hosts entry here); fix the name or the spec's host",
    "auth": "authentication between members failed: the keyfiles differ; copy the cluster with `dbrs-install --bundle`",
    "other": "{error}",
}


def explain_missing(member, error_text):
    kind = failure_kind(error_text)
    return f"{member.name} ({member.address}): " + _CAUSE[kind].format(name=member.name, host=member.host,
                                                                        error=error_text.splitlines()[0][:200])


def explain_initiate_failure(spec, errmsg):
    """replSetInitiate's quorum-check error names the members that failed; say why in operator terms."""
    named = [m for m in spec.members if m.address in errmsg]
    if not named:
        return f"replSetInitiate failed: {errmsg}"
    parts = []
    for m in named:
        tail = errmsg.split(m.address + " failed with", 1)[-1].split(";")[0]
        parts.append(explain_missing(m, tail))
    return "replSetInitiate failed: " + "; ".join(parts)


# ------------------------------------------------------------ status

@dataclass
class MemberStatus:
    name: str
    address: str
    state: str
    health: bool
    votes: int = 1
    priority: float = 1
    arbiter: bool = False
    lag_s: float | None = None
    heard_ago_s: float | None = None     # since it last answered a heartbeat (lastHeartbeatRecv)
    is_self: bool = False                # the member that answered replSetGetStatus
    message: str = ""

    @property
    def healthy(self):
        return self.health and self.state in ("PRIMARY", "SECONDARY", "ARBITER")

    @property
    def degraded(self):
        return not self.arbiter and self.votes == 0


@dataclass
class Status:
    set_name: str
    primary: str | None
    members: list
    commit_lag_s: float | None = None
    oplog_window_s: float | None = None
    write_concern: dict | None = None
    read_concern: dict | None = None
    problems: list = field(default_factory=list)   # unhealthy: `dbrs status --check` fails on these
    notes: list = field(default_factory=list)      # worth knowing, not a failure

    def member(self, name):
        for m in self.members:
            if m.name == name:
                return m
        return None

    def healthy_secondaries(self):
        return [m for m in self.members if m.state == "SECONDARY" and m.health]

    @property
    def ok(self):
        return not self.problems

    def to_json(self):
        return {
            "set": self.set_name,
            "primary": self.primary,
            "ok": self.ok,
            "members": [
                {"name": m.name, "address": m.address, "state": m.state, "health": m.health, "votes": m.votes,
                 "priority": m.priority, "lag_s": m.lag_s, "last_heard_s": m.heard_ago_s,
                 "message": m.message}
                for m in self.members
            ],
            "majority_commit_lag_s": self.commit_lag_s,
            "oplog_window_s": self.oplog_window_s,
            "default_write_concern": self.write_concern,
            "default_read_concern": self.read_concern,
            "problems": self.problems,
            "notes": self.notes,
        }


def _seconds(later, earlier):
    if later is None or earlier is None:
        return None
    return max(0.0, (_aware(later) - _aware(earlier)).total_seconds())


def _heard(now, recv):
    """Seconds since the last answer; None when never (mongod reports the epoch then)."""
    if recv is None or _aware(recv).year <= 1970:
        return None
    return _seconds(now, recv)


def _aware(dt):
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def interpret_status(rs_status, spec, config=None, rw=None, oplog_window_s=None):
    """What a replSetGetStatus (+ config, getDefaultRWConcern) means, with warnings in plain words."""
    by_address = {m.address: m for m in spec.members}
    cfg_members = {c["host"]: c for c in (config or {}).get("members", [])}
    now = rs_status.get("date")
    members, primary = [], None
    primary_optime = None
    for raw in rs_status.get("members", []):
        if raw.get("state") == 1:
            primary_optime = raw.get("optimeDate")
    if primary_optime is None:
        dates = [r.get("optimeDate") for r in rs_status.get("members", []) if r.get("optimeDate")]
        primary_optime = max(dates, key=_aware) if dates else None
    for raw in rs_status.get("members", []):
        address = raw["name"]
        member = by_address.get(address)
        cfg = cfg_members.get(address, {})
        arbiter = bool(cfg.get("arbiterOnly")) or raw.get("state") == 7 or bool(member and member.arbiter)
        state = raw.get("stateStr") or STATE_NAMES.get(raw.get("state"), str(raw.get("state")))
        if not raw.get("health"):
            state = "DOWN"
        ms = MemberStatus(
            name=member.name if member else address,
            address=address,
            state=state,
            health=bool(raw.get("health")),
            votes=cfg.get("votes", 1),
            priority=cfg.get("priority", 0 if arbiter else 1),
            arbiter=arbiter,
            lag_s=None if arbiter or not raw.get("health") else _seconds(primary_optime, raw.get("optimeDate")),
            # lastHeartbeat is the last *attempt* (set on failures too); lastHeartbeatRecv the last answer.
            heard_ago_s=None if raw.get("self") else _heard(now, raw.get("lastHeartbeatRecv")),
            is_self=bool(raw.get("self")),
            message=raw.get("lastHeartbeatMessage", "") or raw.get("infoMessage", ""),
        )
        if raw.get("state") == 1:
            primary = ms.name
        members.append(ms)

    optimes = rs_status.get("optimes", {})
    commit_lag = _seconds(optimes.get("lastAppliedWallTime"), optimes.get("lastCommittedWallTime"))
    wc = (rw or {}).get("defaultWriteConcern")
    status = Status(
        set_name=rs_status.get("set", spec.cluster.name),
        primary=primary,
        members=members,
        commit_lag_s=commit_lag,
        oplog_window_s=oplog_window_s,
        write_concern=wc,
        read_concern=(rw or {}).get("defaultReadConcern"),
    )
    _judge(status, spec, rw, cfg_members)
    return status


def _judge(status, spec, rw, cfg_members):
    problems, notes = status.problems, status.notes
    majority = spec.cluster.write_concern == "majority"
    timeout_s = spec.cluster.write_timeout_ms / 1000
    voters = [m for m in status.members if m.votes]
    up_voters = [m for m in voters if m.healthy]
    if status.primary is None:
        problems.append(f"no PRIMARY: the set accepts no writes; {len(up_voters)} of {len(voters)} voting members "
                        f"are up and {len(voters) // 2 + 1} are needed to elect one")
    for m in status.members:
        if m.healthy:
            continue
        why = f" ({m.message})" if m.message else ""
        if m.arbiter:
            problems.append(f"arbiter {m.name} is {m.state.lower()}{why}: the set still has a majority, but losing "
                            f"one more member leaves it without a primary; start dbrs-mongod@{m.name} again")
        elif m.degraded:
            problems.append(f"{m.name} is {m.state.lower()}{why} and degraded (votes 0): writes do not wait for it; "
                            f"run `dbrs recover {m.name}` once it is back")
        elif majority and status.primary:
            problems.append(f"secondary {m.name} is {m.state.lower()}{why}: majority writes time out after "
                            f"{timeout_s:g} s; run `dbrs degrade {m.name}` if it stays down")
        elif status.primary:
            problems.append(f"secondary {m.name} is {m.state.lower()}{why}: writes are acknowledged by the primary "
                            f"alone and are lost if it fails too; start dbrs-mongod@{m.name} again")
        else:
            problems.append(f"{m.name} is {m.state.lower()}{why}")
    for m in status.members:
        if m.healthy and m.degraded:
            problems.append(f"{m.name} is healthy again but still degraded (votes 0, priority {m.priority:g}): "
                            f"run `dbrs recover {m.name}`")
        if m.healthy and m.lag_s is not None and m.lag_s > LAG_WARN_S and m.state == "SECONDARY":
            problems.append(f"secondary {m.name} is {m.lag_s:.0f} s behind the primary")
    if status.commit_lag_s is not None and status.commit_lag_s > LAG_WARN_S:
        problems.append(f"the majority commit point is {status.commit_lag_s:.0f} s behind the primary: majority "
                        "writes are not confirmed and the primary keeps their history in memory until it catches up")
    in_spec = {m.address for m in spec.members}
    for m in spec.members:
        if cfg_members and m.address not in cfg_members:
            problems.append(f"{m.name} ({m.address}) is in the spec but not in the set's config; run `dbrs reconfigure`")
    for address in cfg_members:
        if address not in in_spec:
            problems.append(f"{address} is in the set's config but not in the spec; run `dbrs reconfigure`")
    if rw is not None and not concern_matches(rw, spec.cluster):
        problems.append(f"the cluster default write concern is {concern_text(status.write_concern)}"
                        f"{' (implicit)' if rw.get('defaultWriteConcernSource') == 'implicit' else ''}, "
                        f"the spec asks for {concern_text(rw_concern(spec.cluster))}; run `dbrs bootstrap`")
    if not majority:
        notes.append("write concern w:1: an acknowledged write can roll back when the primary fails (not zero RPO)")


def ago(seconds):
    """A duration as the operator reads it: 42s, 17min, 3.5h (- when unknown)."""
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}min"
    return f"{seconds / 3600:.1f}h"
