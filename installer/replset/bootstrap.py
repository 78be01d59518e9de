"""`dbrs bootstrap` and its preview: initiate the set, create the dbrs users, set the write concern.

Every step checks whether it is done, so a re-run is safe. The documents
come from `documents`, the verdicts from `health`; every connection is a
`connection.Conn` and every wait one `connection.wait_until`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..errors import DbrsError
from . import connection as conn
from .documents import (RESTORE_ROLE, concern_matches, concern_text, connection_strings, create_user_command,
                        initiate_config, restore_role_command, rw_concern, user_roles)
from .health import explain_initiate_failure, explain_missing, interpret_status

def _say(progress, text):
    if progress:
        progress(text)


def tell_step(progress, name, status, detail):
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
    members = list(only or spec.members)
    hellos, errors = {}, {}

    def probe():
        errors.clear()
        for m in members:
            if m.name not in hellos:
                try:
                    hellos[m.name] = conn.hello(conn.host_of(m, local), m.port)
                except conn.errors().PyMongoError as e:
                    errors[m.name] = str(e)
        return None if errors else hellos

    def describe(final):
        missing = "; ".join(explain_missing(spec.member(n), errors[n]) for n in sorted(errors))
        if final:
            return f"after {wait_s:g} s no answer from {missing} (raise {wait_flag} to wait longer)"
        return "up: " + (", ".join(sorted(hellos)) or "none") + "; waiting for: " + missing, tuple(sorted(errors))

    return conn.wait_until(time.monotonic() + wait_s, probe, describe, limit=wait_s, progress=progress,
                           poll_s=conn.POLL_S * 2)


def _wait_primary(spec, local, wait_s, progress):
    """The address of the PRIMARY as the local member sees it; the local member once it was just initiated."""
    def probe():
        try:
            return local.address if conn.hello(conn.LOOPBACK, local.port).get("isWritablePrimary") else None
        except conn.errors().PyMongoError:
            return None

    def describe(final):
        if final:
            return (f"{local.name} did not become PRIMARY within {wait_s:g} s; check `journalctl -u "
                    f"dbrs-mongod@{local.name}` and `dbrs status`")
        return f"waiting for {local.name} to become PRIMARY"

    return conn.wait_until(time.monotonic() + wait_s, probe, describe, limit=wait_s, progress=progress)


def _users_exist(member, secrets, host):
    """Whether another dbrs user can log in: MongoDB answers a wrong password and a missing user alike."""
    for user in ("monitor", "backup"):
        try:
            password = secrets.password(user)
        except DbrsError:
            continue
        with conn.connect_member(member, user, password, host) as c:
            try:
                c.client.admin.command("ping")
                return True
            except conn.errors().OperationFailure as e:
                if not conn.is_auth_failure(e):
                    return False
            except conn.errors().PyMongoError:
                return False
    return False


def _ensure_users(spec, secrets, local, primary_address):
    """Create missing users and the restore role; returns the names created.

    On a fresh set the localhost exception allows exactly one user: admin
    goes first over 127.0.0.1, everything else as admin.
    """
    created = []
    primary = conn.member_at(spec, primary_address) or local
    host = conn.host_of(primary, local)
    admin_pw = secrets.password("admin")

    def as_admin():
        return conn.connect_member(primary, "admin", admin_pw, host)

    with as_admin() as c, conn.talking(c.who, "ping"):
        try:
            c.client.admin.command("ping")
            have_admin = True
        except conn.errors().OperationFailure as e:
            if not conn.is_auth_failure(e):
                raise
            have_admin = False
    if not have_admin and _users_exist(primary, secrets, host):
        raise DbrsError(f"admin cannot log in to {conn.who(primary, host=host)}: the set has users, but not with the admin "
                        "password of secrets.toml (it belongs to another cluster, or secrets.toml was replaced; copy "
                        "this cluster's with `dbrs-install --bundle`)")
    if not have_admin:
        if primary.name != local.name:
            raise DbrsError(f"no admin user yet and the primary is {primary.name}, not this host's {local.name}: "
                            f"run `dbrs bootstrap` on {primary.host}")
        roles = dict(user_roles(spec))["admin"]
        with conn.connect_member(local, host=conn.LOOPBACK) as c, conn.talking(c.who, "createUser admin"):
            try:
                c.client.admin.command(create_user_command("admin", admin_pw, roles))
            except conn.errors().OperationFailure as e:
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


def ensure_rw_concern(client, cluster):
    if concern_matches(client.command("getDefaultRWConcern"), cluster):
        return False
    client.command({"setDefaultRWConcern": 1, "defaultWriteConcern": rw_concern(cluster)})
    return True


def _wait_healthy(client, spec, wait_s, progress, wait_flag="--wait"):
    last = {}

    def probe():
        st = last["st"] = interpret_status(client.command("replSetGetStatus"), spec)
        return st if st.primary and all(m.healthy for m in st.members) else None

    def describe(final):
        st = last["st"]
        bad = [m for m in st.members if not m.healthy]
        if final:
            details = [explain_missing(conn.member_at(spec, m.address) or spec.members[0], m.message) if m.message
                       else f"{m.name}: {m.state}" for m in bad]
            return f"after {wait_s:g} s not healthy: " + "; ".join(details) + f" (raise {wait_flag} to wait longer)"
        up = [m.name for m in st.members if m.healthy]
        return ("healthy: " + (", ".join(up) or "none") + "; waiting for: " + ", ".join(
            f"{m.name} {m.state}" + (f" ({m.message[:80]})" if m.message else "") for m in bad),
            tuple(m.name + m.state for m in bad))

    return conn.wait_until(time.monotonic() + wait_s, probe, describe, limit=wait_s, progress=progress,
                           tell_last=False)


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
        tell_step(progress, name, status, detail)

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
        with conn.connect_member(local, host=conn.LOOPBACK) as c, conn.talking(c.who, "replSetInitiate"):
            try:
                c.client.admin.command({"replSetInitiate": initiate_config(spec)})
            except conn.errors().OperationFailure as e:
                if e.code != 23:  # AlreadyInitialized: a concurrent run got there first
                    raise DbrsError(explain_initiate_failure(spec, e.details.get("errmsg", str(e)))) from None
        step("initiate", "changed", f"replica set {spec.cluster.name} with " + ", ".join(spec.names()))
        primary = _wait_primary(spec, local, wait_s, progress)

    created, dropped = _ensure_users(spec, secrets, local, primary)
    done = ([f"created {', '.join(created)}"] if created else []) + ([f"dropped {', '.join(dropped)}"] if dropped else [])
    step("users", "changed" if done else "unchanged", "; ".join(done) or "all present")

    pm = conn.member_at(spec, primary) or local
    host = conn.host_of(pm, local)
    with conn.connect_member(pm, "admin", secrets.password("admin"), host) as c:
        changed = ensure_rw_concern(c, spec.cluster)
        step("write concern", "changed" if changed else "unchanged", concern_text(rw_concern(spec.cluster)))
        if any(s[1] == "changed" for s in steps):
            _wait_healthy(c, spec, wait_s, progress, wait_flag)
            step("health", "unchanged", "all members healthy")
        else:
            bad = [m for m in interpret_status(c.command("replSetGetStatus"), spec).members if not m.healthy]
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
        h = conn.hello(conn.LOOPBACK, local.port)
    except conn.errors().PyMongoError:
        return [("members", "would change", f"{local.name} is not running yet: wait for all "
                 f"{len(spec.members)} members to answer")] + fresh
    if not h.get("setName"):
        return fresh
    out = [("initiate", "unchanged", f"replica set {h['setName']} exists")]
    pm = conn.member_at(spec, h.get("primary", "")) or local
    host = conn.host_of(pm, local)
    with conn.connect_member(pm, "admin", secrets.password("admin"), host) as c:
        try:
            have = {u["user"] for u in c.client.admin.command(
                "usersInfo", [{"user": u, "db": "admin"} for u in want_users])["users"]}
            got = c.client.admin.command("getDefaultRWConcern")
        except conn.errors().PyMongoError as e:
            return out + [("users", "unknown", conn.cause(e)), ("write concern", "unknown", "see users")]
    missing = [u for u in want_users if u not in have]
    out.append(("users", "would change", "create " + ", ".join(missing)) if missing
               else ("users", "unchanged", "all present"))
    same = concern_matches(got, spec.cluster)
    have_wc = got.get("defaultWriteConcern") or {}
    out.append(("write concern", "unchanged" if same else "would change",
                concern if same else f"{concern_text(have_wc)} -> {concern}"))
    return out
