"""The replica set through pymongo: bootstrap, status, degrade/recover, stepdown.

Deciding is pure and tested without a server: the documents sent
(`initiate_config`, `user_commands`, `rw_concern`), what a replSetGetStatus
means (`interpret_status`), the next config of a degrade or recover
(`plan_reconfig`). The functions that talk to mongod are thin loops around
them; every connection is a `mongo.Conn`, so any MongoDB failure ends as
one line naming the member, the command and the likely cause.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timezone

from . import mongo
from .errors import DbrsError, InputError

__path__ = [__file__[:-3]]  # installer/replset/*.py (issue 11 layout) import as installer.replset.X until this file moves

STATE_NAMES = {
    0: "STARTUP", 1: "PRIMARY", 2: "SECONDARY", 3: "RECOVERING", 5: "STARTUP2",
    6: "UNKNOWN", 7: "ARBITER", 8: "DOWN", 9: "ROLLBACK", 10: "REMOVED",
}
HEALTHY_STATES = (1, 2, 7)
RESTORE_ROLE = "dbrsOplogReplay"
LAG_WARN_S = 30          # a secondary further behind than this is worth a page
CATCH_UP_S = 10          # recover hands the priority back once the member is this close
VOTE_LAG_S = 2           # ... and the vote only this close: a lagged voter stalls the majority commit point
STEPDOWN_CATCH_UP_S = 10  # MongoDB's default secondaryCatchUpPeriodSecs
POLL_S = 0.5
HELLO_TIMEOUT_MS = 2000
# Errors of a reconfig that only mean "the previous config is not committed yet": retry.
RECONFIG_RETRY_CODES = (109, 308)


# ------------------------------------------------------------ documents (pure)

def initiate_config(spec):
    """replSetInitiate's document: every member, arbiter arbiterOnly, the primary-role member priority 2."""
    members = []
    for i, m in enumerate(spec.members):
        doc = {"_id": i, "host": m.address, "priority": m.priority}
        if m.arbiter:
            doc["arbiterOnly"] = True
        members.append(doc)
    return {"_id": spec.cluster.name, "members": members}


def _role(name, db="admin"):
    return {"role": name, "db": db}


def user_roles(spec):
    """Each dbrs user with no more than its job needs, in creation order (admin first: it ends the localhost exception)."""
    users = [
        ("admin", [_role("root")]),
        ("backup", [_role("backup"), _role("clusterMonitor"), _role("read", "local")]),
        ("restore", [_role("restore"), _role(RESTORE_ROLE)]),
        ("monitor", [_role("clusterMonitor")]),
    ]
    if spec.mongo_express.enabled:
        # Mongo Express browses and edits documents and shows serverStatus; no user or cluster admin.
        users.append(("express", [_role("readWriteAnyDatabase"), _role("clusterMonitor")]))
    return users


def restore_role_command():
    """`mongorestore --oplogReplay` applies arbitrary oplog entries, which MongoDB allows only with anyAction."""
    return {
        "createRole": RESTORE_ROLE,
        "privileges": [{"resource": {"anyResource": True}, "actions": ["anyAction"]}],
        "roles": [],
    }


def create_user_command(user, password, roles):
    return {"createUser": user, "pwd": password, "roles": roles, "mechanisms": ["SCRAM-SHA-256"]}


def rw_concern(cluster):
    """The cluster default write concern; the wtimeout makes writes fail fast when the secondary is down."""
    w = "majority" if cluster.write_concern == "majority" else int(cluster.write_concern)
    return {"w": w, "wtimeout": cluster.write_timeout_ms}


def concern_text(wc):
    if not wc:
        return "unknown"
    text = f"w:{wc.get('w', 1)}"
    if wc.get("wtimeout"):
        text += f", wtimeout {wc['wtimeout'] / 1000:g} s"
    return text


def connection_strings(spec, user=None):
    """(uri, read-scaling uri) over the data-bearing members; never with a password."""
    hosts = ",".join(m.address for m in spec.members if m.data_bearing)
    from urllib.parse import quote

    who = f"{quote(user, safe='')}@" if user else ""   # a user name with @ : / ? must not break the URI
    base = f"mongodb://{who}{hosts}/?replicaSet={spec.cluster.name}"
    if user:
        base += "&authSource=admin"
    return base, base + "&readPreference=secondaryPreferred"


# ------------------------------------------------------------ errors (pure)

def failure_kind(error_text):
    """refused | timeout | dns | auth | other, from a pymongo error message."""
    t = error_text.lower()
    if "refused" in t:
        return "refused"
    if "timed out" in t or "timeout" in t:
        return "timeout"
    if "name or service not known" in t or "nodename nor servname" in t or "temporary failure in name" in t:
        return "dns"
    if "authentication failed" in t or "auth" in t and "fail" in t:
        return "auth"
    return "other"


_CAUSE = {
    "refused": "connection refused: nothing listens there; is dbrs-mongod@{name} running on {host}?",
    "timeout": "timed out: a firewall drops the traffic or the host is down",
    "dns": "the host name does not resolve",
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


# ------------------------------------------------------------ status (pure)

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
    names_in_config = {c for c in cfg_members}
    for m in spec.members:
        if cfg_members and m.address not in names_in_config:
            problems.append(f"{m.name} ({m.address}) is in the spec but not in the set's config; run `dbrs bootstrap`")
    wc = status.write_concern
    want = rw_concern(spec.cluster)
    if rw is not None and (not wc or rw.get("defaultWriteConcernSource") != "global"
                           or str(wc.get("w")) != str(want["w"]) or wc.get("wtimeout", 0) != want["wtimeout"]):
        problems.append(f"the cluster default write concern is {concern_text(wc)}"
                        f"{' (implicit)' if rw.get('defaultWriteConcernSource') == 'implicit' else ''}, "
                        f"the spec asks for {concern_text(want)}; run `dbrs bootstrap`")
    if not majority:
        notes.append("write concern w:1: an acknowledged write can roll back when the primary fails (not zero RPO)")


def _ago(seconds):
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}min"
    return f"{seconds / 3600:.1f}h"


def render_status(status):
    """One screen for the person on call."""
    lines = [f"replica set {status.set_name}: " + (f"primary {status.primary}" if status.primary else "NO PRIMARY")]
    rows = [("MEMBER", "ADDRESS", "STATE", "VOTES", "PRIORITY", "LAG", "LAST HEARD")]
    for m in status.members:
        heard = "self" if m.is_self else "never" if m.heard_ago_s is None else _ago(m.heard_ago_s) + " ago"
        rows.append((m.name, m.address, m.state, str(m.votes), f"{m.priority:g}",
                     "-" if m.lag_s is None else _ago(m.lag_s), heard))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    lines.append(f"majority commit point: {_ago(status.commit_lag_s)} behind the primary"
                 if status.commit_lag_s is not None else "majority commit point: unknown")
    lines.append(f"oplog window: {_ago(status.oplog_window_s)}" if status.oplog_window_s is not None
                 else "oplog window: unknown")
    read = (status.read_concern or {}).get("level", "local")
    lines.append(f"default write concern: {concern_text(status.write_concern)}; default read concern: {read}")
    for p in status.problems:
        lines.append(f"WARN {p}")
    for n in status.notes:
        lines.append(f"note {n}")
    if status.ok:
        lines.append("all members healthy")
    return "\n".join(lines)


# ------------------------------------------------------------ reconfig (pure)

def plan_reconfig(config, member, action, *, primary=None, up=()):
    """The next config for `degrade` or `recover` of spec member `member`; InputError when it makes no sense.

    `primary` is the address of the current primary, `up` the addresses of
    healthy members. Degrade sets votes 0 / priority 0 (MongoDB's PSA
    mitigation). Recover is two reconfigs: first the vote back with
    priority 0, then (once the member caught up) its priority; each call
    returns the next one, so an interrupted recover resumes.
    """
    members = [dict(m) for m in config["members"]]
    target = next((m for m in members if m["host"] == member.address), None)
    if target is None:
        raise DbrsError(f"{member.name} ({member.address}) is not in the set's config; run `dbrs bootstrap` first")
    if target.get("arbiterOnly") or member.arbiter:
        raise InputError(member.name, "is the arbiter", "degrade/recover apply to a data-bearing secondary")
    votes, priority = target.get("votes", 1), target.get("priority", 1)
    if action == "degrade":
        if member.address == primary:
            raise InputError(member.name, "is the primary", "run `dbrs stepdown` first, then degrade it")
        if votes == 0:
            raise InputError(member.name, "is already degraded (votes 0)", f"run `dbrs recover {member.name}` once it is back")
        voters_after = [m for m in members if m.get("votes", 1) and m is not target]
        up_after = [m for m in voters_after if m["host"] in up]
        need = len(voters_after) // 2 + 1
        if len(up_after) < need:
            raise InputError(member.name, f"degrading it leaves {len(up_after)} of {len(voters_after)} voting members up "
                             f"and {need} are needed", "bring another member back first")
        target["votes"], target["priority"] = 0, 0
    elif action == "recover":
        if votes and priority == member.priority:
            raise InputError(member.name, "is not degraded", "nothing to recover")
        if member.address not in up:
            raise InputError(member.name, "is not healthy", f"start dbrs-mongod@{member.name} and wait for SECONDARY first")
        if votes == 0:
            target["votes"], target["priority"] = 1, 0
        else:
            target["priority"] = member.priority
    else:
        raise ValueError(action)
    new = {k: v for k, v in config.items() if k != "term"}
    new["members"] = members
    new["version"] = config["version"] + 1
    return new


# ------------------------------------------------------------ I/O

def _errors():
    import pymongo.errors as e

    return e


def hello(host, port, timeout_ms=HELLO_TIMEOUT_MS):
    """One unauthenticated `hello` (allowed before and after users exist)."""
    with mongo.client(host, port, timeout_ms=timeout_ms) as c:
        return c.admin.command("hello")


def _local_first(spec):
    from . import facts

    here = facts.this_host()
    return sorted(spec.members, key=lambda m: not facts.is_local(m.host, here))


def _say(progress, text):
    if progress:
        progress(text)


def _wait_line(progress, text, elapsed, limit, key=None):
    """One poll of a long wait: the reporter decides how often it shows (live line, or when `key` changes and
    every few seconds); a plain callable hears every poll."""
    if progress is None:
        return
    wait = getattr(progress, "wait", None)
    if wait:
        wait(text, elapsed, limit, key=key)
    else:
        progress(f"{text} [{elapsed:.0f}/{limit:g} s]")


def _step(progress, name, status, detail):
    """A finished bootstrap step, told as it happens."""
    if progress is None:
        return
    tell = getattr(progress, "step", None)
    if tell:
        tell(name, status, detail)
    else:
        progress(f"{name}: {status}" + (f" ({detail})" if detail else ""))


def wait_for_members(spec, wait_s, progress=None, local=None, only=None, wait_flag="--wait"):
    """Every member (or those in `only`) answers `hello`, or DbrsError naming each missing one and the likely cause."""
    started = time.monotonic()
    members = list(only or spec.members)
    hellos = {}
    while True:
        errors = {}
        for m in members:
            if m.name in hellos:
                continue
            host = "127.0.0.1" if local and m.name == local.name else m.host
            try:
                hellos[m.name] = hello(host, m.port)
            except _errors().PyMongoError as e:
                errors[m.name] = str(e)
        if not errors:
            return hellos
        elapsed = time.monotonic() - started
        missing = "; ".join(explain_missing(spec.member(n), errors[n]) for n in sorted(errors))
        _wait_line(progress, "up: " + (", ".join(sorted(hellos)) or "none") + "; waiting for: " + missing,
                   elapsed, wait_s, key=tuple(sorted(errors)))
        if elapsed >= wait_s:
            raise DbrsError(f"after {wait_s:g} s no answer from {missing} (raise {wait_flag} to wait longer)")
        time.sleep(min(POLL_S * 2, max(0.0, wait_s - elapsed)))


def _wait_primary(spec, local, wait_s, progress):
    """The address of the PRIMARY as the local member sees it; the local member once it was just initiated."""
    started = time.monotonic()
    while True:
        try:
            h = hello("127.0.0.1", local.port)
            if h.get("isWritablePrimary"):
                return local.address
        except _errors().PyMongoError:
            pass
        elapsed = time.monotonic() - started
        _wait_line(progress, f"waiting for {local.name} to become PRIMARY", elapsed, wait_s)
        if elapsed >= wait_s:
            raise DbrsError(f"{local.name} did not become PRIMARY within {wait_s:g} s; check `journalctl -u "
                            f"dbrs-mongod@{local.name}` and `dbrs status`")
        time.sleep(POLL_S)


def _member_at(spec, address):
    for m in spec.members:
        if m.address == address:
            return m
    return None


def _is_auth_failure(e):
    return isinstance(e, _errors().OperationFailure) and e.code == 18


def _who(member, user=None, host=None):
    where = f"{host}:{member.port}" if host else member.address
    return f"{member.name} ({where})" + (f" as {user}" if user else "")


def _conn(member, user=None, password=None, host=None):
    return mongo.connect(_who(member, user, host), host or member.host, member.port, user=user, password=password)


def _users_exist(member, secrets, host):
    """Whether another dbrs user can log in: MongoDB answers a wrong password and a missing user alike."""
    for user in ("monitor", "backup"):
        try:
            password = secrets.password(user)
        except DbrsError:
            continue
        with _conn(member, user, password, host) as c:
            try:
                c.client.admin.command("ping")
                return True
            except _errors().OperationFailure as e:
                if not _is_auth_failure(e):
                    return False
            except _errors().PyMongoError:
                return False
    return False


def _ensure_users(spec, secrets, local, primary_address):
    """Create missing users and the restore role; returns the names created.

    On a fresh set the localhost exception allows exactly one user: admin
    goes first over 127.0.0.1, everything else as admin.
    """
    created = []
    primary = _member_at(spec, primary_address) or local
    host = "127.0.0.1" if primary.name == local.name else primary.host
    admin_pw = secrets.password("admin")

    def as_admin():
        return _conn(primary, "admin", admin_pw, host)

    with as_admin() as c, mongo.talking(c.who, "ping"):
        try:
            c.client.admin.command("ping")
            have_admin = True
        except _errors().OperationFailure as e:
            if not _is_auth_failure(e):
                raise
            have_admin = False
    if not have_admin and _users_exist(primary, secrets, host):
        raise DbrsError(f"admin cannot log in to {_who(primary, host=host)}: the set has users, but not with the admin "
                        "password of secrets.toml (it belongs to another cluster, or secrets.toml was replaced; copy "
                        "this cluster's with `dbrs-install --bundle`)")
    if not have_admin:
        if primary.name != local.name:
            raise DbrsError(f"no admin user yet and the primary is {primary.name}, not this host's {local.name}: "
                            f"run `dbrs bootstrap` on {primary.host}")
        roles = dict(user_roles(spec))["admin"]
        with _conn(local, host="127.0.0.1") as c, mongo.talking(c.who, "createUser admin"):
            try:
                c.client.admin.command(create_user_command("admin", admin_pw, roles))
            except _errors().OperationFailure as e:
                if e.code == 13:
                    raise DbrsError(f"{c.who}: users exist already but not with the admin password of secrets.toml: "
                                    "the set belongs to another cluster spec or secrets.toml was replaced") from None
                raise
        created.append("admin")
    with as_admin() as c:
        wanted = user_roles(spec)
        unwanted = [] if spec.mongo_express.enabled else ["express"]   # Mongo Express turned off: its user goes
        have = {u["user"] for u in c.command(
            "usersInfo", [{"user": u, "db": "admin"} for u in [n for n, _ in wanted] + unwanted])["users"]}
        if "restore" not in have and not c.command("rolesInfo", RESTORE_ROLE)["roles"]:
            c.command(restore_role_command())
        for user, roles in wanted:
            if user in have or user in created:
                continue
            c.command(create_user_command(user, secrets.password(user), roles))
            created.append(user)
        dropped = []
        for user in unwanted:
            if user in have:
                c.command({"dropUser": user})
                dropped.append(user)
    return created, dropped


def _ensure_rw_concern(client, cluster):
    want = rw_concern(cluster)
    got = client.command("getDefaultRWConcern")
    wc = got.get("defaultWriteConcern") or {}
    if (got.get("defaultWriteConcernSource") == "global" and str(wc.get("w")) == str(want["w"])
            and wc.get("wtimeout", 0) == want["wtimeout"]):
        return False
    client.command({"setDefaultRWConcern": 1, "defaultWriteConcern": want})
    return True


def _rs_status(client):
    return client.command("replSetGetStatus")


def _wait_healthy(client, spec, wait_s, progress, wait_flag="--wait"):
    started = time.monotonic()
    while True:
        st = interpret_status(_rs_status(client), spec)
        bad = [m for m in st.members if not m.healthy]
        if not bad and st.primary:
            return st
        elapsed = time.monotonic() - started
        if elapsed >= wait_s:
            details = []
            for m in bad:
                cause = explain_missing(_member_at(spec, m.address) or spec.members[0], m.message) if m.message else f"{m.name}: {m.state}"
                details.append(cause)
            raise DbrsError(f"after {wait_s:g} s not healthy: " + "; ".join(details) + f" (raise {wait_flag} to wait longer)")
        up = [m.name for m in st.members if m.healthy]
        _wait_line(progress, "healthy: " + (", ".join(up) or "none") + "; waiting for: " + ", ".join(
            f"{m.name} {m.state}" + (f" ({m.message[:80]})" if m.message else "") for m in bad), elapsed, wait_s,
            key=tuple(m.name + m.state for m in bad))
        time.sleep(POLL_S)


@dataclass
class BootstrapResult:
    steps: list                 # (step, "changed"|"unchanged"|"waiting", detail)
    uri: str
    read_uri: str
    notes: list = field(default_factory=list)

    @property
    def changed(self):
        return any(s[1] == "changed" for s in self.steps)

    @property
    def waiting(self):
        """A member is missing, but the set had nothing to do: it catches up when the member is back."""
        return any(s[1] == "waiting" for s in self.steps)


def bootstrap(spec, secrets, wait_s=600, progress=None, wait_flag="--wait"):
    """Idempotent set-up run on the primary-role member's host; every step checks whether it is done.

    A set that is already complete is not waited for: a re-run while
    another member's host is down reports that member and returns at once.
    Only an initiate (which needs every member) and a set that just changed
    wait, for at most `wait_s`.
    """
    local = spec.primary
    steps, notes = [], []

    def step(name, status, detail):
        steps.append((name, status, detail))
        _step(progress, name, status, detail)

    h = wait_for_members(spec, wait_s, progress, local=local, only=(local,), wait_flag=wait_flag)[local.name]
    if h.get("setName"):
        if h["setName"] != spec.cluster.name:
            raise DbrsError(f"{local.name} belongs to replica set {h['setName']!r}, the spec says "
                            f"{spec.cluster.name!r}; fix cluster.name or the member's data")
        step("initiate", "unchanged", f"replica set {h['setName']} exists")
        primary = h.get("primary") or _wait_primary(spec, local, wait_s, progress)
    else:
        wait_for_members(spec, wait_s, progress, local=local, wait_flag=wait_flag)
        step("members", "unchanged", f"all {len(spec.members)} answer hello")
        _say(progress, f"initiating replica set {spec.cluster.name}")
        with _conn(local, host="127.0.0.1") as c, mongo.talking(c.who, "replSetInitiate"):
            try:
                c.client.admin.command({"replSetInitiate": initiate_config(spec)})
            except _errors().OperationFailure as e:
                if e.code != 23:  # AlreadyInitialized: a concurrent run got there first
                    raise DbrsError(explain_initiate_failure(spec, e.details.get("errmsg", str(e)))) from None
        step("initiate", "changed", f"replica set {spec.cluster.name} with " + ", ".join(spec.names()))
        primary = _wait_primary(spec, local, wait_s, progress)

    created, dropped = _ensure_users(spec, secrets, local, primary)
    done = ([f"created {', '.join(created)}"] if created else []) + ([f"dropped {', '.join(dropped)}"] if dropped else [])
    step("users", "changed" if done else "unchanged", "; ".join(done) or "all present")

    pm = _member_at(spec, primary) or local
    host = "127.0.0.1" if pm.name == local.name else pm.host
    with _conn(pm, "admin", secrets.password("admin"), host) as c:
        changed = _ensure_rw_concern(c, spec.cluster)
        step("write concern", "changed" if changed else "unchanged", concern_text(rw_concern(spec.cluster)))
        if any(s[1] == "changed" for s in steps):
            _wait_healthy(c, spec, wait_s, progress, wait_flag)
            step("health", "unchanged", "all members healthy")
        else:
            bad = [m for m in interpret_status(_rs_status(c), spec).members if not m.healthy]
            if bad:
                step("health", "waiting", "; ".join(
                    f"{m.name} is {m.state.lower()}" + (f" ({m.message[:120]})" if m.message else "") for m in bad)
                    + ": the set needed nothing; it catches up once back (`dbrs status` shows it)")
            else:
                step("health", "unchanged", "all members healthy")
    if spec.cluster.write_concern != "majority":
        notes.append("write concern w:1: an acknowledged write can roll back when the primary fails (not zero RPO)")
    uri, read_uri = connection_strings(spec)
    return BootstrapResult(steps, uri, read_uri, notes)


def preview(spec, secrets):
    """What `bootstrap` would do, from read-only queries (hello, usersInfo, rolesInfo, getDefaultRWConcern):
    the replica-set part of `dbrs-install --dry-run`. Returns (step, status, detail) with status
    "would change", "unchanged" or "unknown"."""
    local = spec.primary
    want_users = [u for u, _ in user_roles(spec)]
    concern = concern_text(rw_concern(spec.cluster))
    fresh = [("initiate", "would change", f"replica set {spec.cluster.name} with " + ", ".join(spec.names())),
             ("users", "would change", "create " + ", ".join(want_users)),
             ("write concern", "would change", concern)]
    try:
        h = hello("127.0.0.1", local.port)
    except _errors().PyMongoError:
        return [("members", "would change", f"{local.name} is not running yet: wait for all "
                 f"{len(spec.members)} members to answer")] + fresh
    if not h.get("setName"):
        return fresh
    out = [("initiate", "unchanged", f"replica set {h['setName']} exists")]
    pm = _member_at(spec, h.get("primary", "")) or local
    host = "127.0.0.1" if pm.name == local.name else pm.host
    with _conn(pm, "admin", secrets.password("admin"), host) as c:
        try:
            have = {u["user"] for u in c.client.admin.command(
                "usersInfo", [{"user": u, "db": "admin"} for u in want_users])["users"]}
            got = c.client.admin.command("getDefaultRWConcern")
        except _errors().PyMongoError as e:
            return out + [("users", "unknown", mongo.cause(e)), ("write concern", "unknown", "see users")]
    missing = [u for u in want_users if u not in have]
    out.append(("users", "would change", "create " + ", ".join(missing)) if missing
               else ("users", "unchanged", "all present"))
    wc = got.get("defaultWriteConcern") or {}
    want = rw_concern(spec.cluster)
    same = (got.get("defaultWriteConcernSource") == "global" and str(wc.get("w")) == str(want["w"])
            and wc.get("wtimeout", 0) == want["wtimeout"])
    out.append(("write concern", "unchanged" if same else "would change",
                concern if same else f"{concern_text(wc)} -> {concern}"))
    return out


# ------------------------------------------------------------ from any member host

def find_primary(spec, timeout_ms=HELLO_TIMEOUT_MS):
    """(primary Member or None, {name: hello or error text}); asks the members on this host first."""
    seen = {}
    for m in _local_first(spec):
        try:
            h = hello(m.host, m.port, timeout_ms)
        except _errors().PyMongoError as e:
            seen[m.name] = str(e)
            continue
        seen[m.name] = h
        if h.get("isWritablePrimary"):
            return m, seen
        if h.get("primary") and _member_at(spec, h["primary"]):
            candidate = _member_at(spec, h["primary"])
            try:
                if hello(candidate.host, candidate.port, timeout_ms).get("isWritablePrimary"):
                    return candidate, seen
            except _errors().PyMongoError:
                pass
    return None, seen


def _connect_any(spec, secrets, user, need_primary):
    primary, seen = find_primary(spec)
    if primary is None and need_primary:
        raise DbrsError("no member is PRIMARY: " + _seen_text(spec, seen) + "; see `dbrs status`")
    member = primary
    if member is None:
        member = next((m for m in _local_first(spec) if isinstance(seen.get(m.name), dict) and m.data_bearing), None)
    if member is None:
        raise DbrsError("no member answers: " + _seen_text(spec, seen))
    return member, _conn(member, user, secrets.password(user))


def _seen_text(spec, seen):
    out = []
    for m in spec.members:
        v = seen.get(m.name)
        if isinstance(v, dict):
            state = "PRIMARY" if v.get("isWritablePrimary") else "SECONDARY" if v.get("secondary") else (
                "ARBITER" if v.get("arbiterOnly") else "not initiated" if not v.get("setName") else "not ready")
            out.append(f"{m.name} {state}")
        elif v is not None:
            out.append(explain_missing(m, v))
    return "; ".join(out)


def _oplog_window(conn):
    try:
        oplog = conn.client.local["oplog.rs"]
        first = next(iter(oplog.find({}, {"ts": 1, "wall": 1}).sort("$natural", 1).limit(1)), None)
        last = next(iter(oplog.find({}, {"ts": 1, "wall": 1}).sort("$natural", -1).limit(1)), None)
    except _errors().OperationFailure:
        return None
    if not first or not last:
        return None
    return float(last["ts"].time - first["ts"].time)


def read_status(spec, secrets, user="monitor"):
    """Status as seen by the primary (or, without one, by the first data-bearing member that answers)."""
    member, client = _connect_any(spec, secrets, user, need_primary=False)
    with client as c:
        try:
            rs = c.client.admin.command("replSetGetStatus")
        except _errors().OperationFailure as e:
            if _is_auth_failure(e):
                raise DbrsError(f"{user} cannot log in to {member.name}: the password in secrets.toml is not the "
                                "set's; is --config pointing at this cluster?") from None
            raise mongo.translate(e, c.who, "replSetGetStatus") from None
        except _errors().PyMongoError as e:
            raise mongo.translate(e, c.who, "replSetGetStatus") from None
        config = c.command("replSetGetConfig")["config"]
        rw = c.command("getDefaultRWConcern")
        with mongo.talking(c.who, "find local.oplog.rs"):
            window = _oplog_window(c)
    return interpret_status(rs, spec, config, rw, window)


def _reconfig(client, new, deadline):
    while True:
        try:
            client.client.admin.command({"replSetReconfig": new})
            return
        except _errors().OperationFailure as e:
            if e.code not in RECONFIG_RETRY_CODES or time.monotonic() >= deadline:
                raise mongo.translate(e, client.who, "replSetReconfig") from None
        except _errors().PyMongoError as e:
            raise mongo.translate(e, client.who, "replSetReconfig") from None
        time.sleep(POLL_S)


def _lookup(spec, name):
    for m in spec.members:
        if m.name == name:
            return m
    raise InputError(name, "is not a member of the spec", "known: " + ", ".join(spec.names()))


def _state(client, spec):
    config = client.command("replSetGetConfig")["config"]
    st = interpret_status(_rs_status(client), spec, config)
    up = {m.address for m in st.members if m.healthy}
    primary = next((m.address for m in st.members if m.state == "PRIMARY"), None)
    return config, st, up, primary


def degrade(spec, secrets, name, wait_s=60):
    """votes 0 / priority 0 for a member that is down, so majority writes succeed without it."""
    member = _lookup(spec, name)
    _, client = _connect_any(spec, secrets, "admin", need_primary=True)
    with client as c:
        config, _, up, primary = _state(c, spec)
        new = plan_reconfig(config, member, "degrade", primary=primary, up=up)
        _reconfig(c, new, time.monotonic() + wait_s)
    return f"{name} degraded: votes 0, priority 0 (config version {new['version']}); writes no longer wait for it"


def recover(spec, secrets, name, wait_s=600, progress=None):
    """Give the vote back once the member has caught up (a lagged voter stalls the majority commit point,
    which is what degrade avoided), with priority 0; then its priority."""
    member = _lookup(spec, name)
    started = time.monotonic()
    deadline = started + wait_s
    _, client = _connect_any(spec, secrets, "admin", need_primary=True)
    with client as c:
        config, _, up, primary = _state(c, spec)
        new = plan_reconfig(config, member, "recover", primary=primary, up=up)
        if config_member(config, member).get("votes", 1) == 0:
            _wait_caught_up(c, spec, member, VOTE_LAG_S, started, wait_s, progress,
                            "it is still degraded (votes 0), which is safe")
            config, _, up, primary = _state(c, spec)
            new = plan_reconfig(config, member, "recover", primary=primary, up=up)
            _reconfig(c, new, deadline)
            _say(progress, f"{name} votes again (priority 0, config version {new['version']})")
        _wait_caught_up(c, spec, member, CATCH_UP_S, started, wait_s, progress,
                        "it votes again with priority 0")
        config, _, up, primary = _state(c, spec)
        new = plan_reconfig(config, member, "recover", primary=primary, up=up)
        _reconfig(c, new, deadline)
    return f"{name} recovered: votes 1, priority {member.priority:g} (config version {new['version']})"


def _wait_caught_up(client, spec, member, within_s, started, wait_s, progress, state_now):
    """Until `member` is a SECONDARY at most `within_s` behind the primary; DbrsError at the deadline."""
    name = member.name
    while True:
        _, st, _, _ = _state(client, spec)
        ms = st.member(name)
        if ms and ms.state == "SECONDARY" and ms.lag_s is not None and ms.lag_s <= within_s:
            return
        elapsed = time.monotonic() - started
        where = f"state {ms.state if ms else '?'}, lag {_ago(ms.lag_s) if ms and ms.lag_s is not None else '?'}"
        if elapsed >= wait_s:
            raise DbrsError(f"{name} has not caught up within {wait_s:g} s ({where}); {state_now}; "
                            f"run `dbrs recover {name}` again to finish")
        _wait_line(progress, f"waiting for {name} to catch up to within {within_s:g} s ({where})", elapsed, wait_s,
                   key=ms.state if ms else None)
        time.sleep(POLL_S)


def config_member(config, member):
    return next((m for m in config["members"] if m["host"] == member.address), {})


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
    old, client = _connect_any(spec, secrets, "admin", need_primary=True)
    with client as c:
        _, st, _, _ = _state(c, spec)
        electable = [m for m in st.members if m.state == "SECONDARY" and m.health and m.votes and m.priority > 0]
        if not electable:
            raise InputError("stepdown", "no healthy electable secondary",
                             "the set would stay without a primary; bring a secondary back (or recover it) first")
        started = time.monotonic()
        try:
            c.client.admin.command({"replSetStepDown": secs, "secondaryCatchUpPeriodSecs": catch_up_s})
        except _errors().AutoReconnect:
            pass  # older servers close every connection on stepdown
        except _errors().PyMongoError as e:
            raise mongo.translate(e, c.who, "replSetStepDown") from None
    deadline = started + wait_s
    while True:
        for m in spec.members:
            if m.name == old.name or m.arbiter:
                continue
            try:
                if hello(m.host, m.port, 1000).get("isWritablePrimary"):
                    return Stepdown(old.name, m.name, time.monotonic() - started)
            except _errors().PyMongoError:
                pass
        if time.monotonic() >= deadline:
            raise DbrsError(f"{old.name} stepped down but no new primary within {wait_s:g} s; see `dbrs status`")
        time.sleep(0.1)
