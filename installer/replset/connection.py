"""Talking to the set: the one place pymongo clients are made, members are found and errors translated.

Passwords go to pymongo as arguments, never into a URI that could be
logged. Timeouts are short: an operator waiting on a dead member wants to
hear about it in seconds, not after pymongo's 30 s default. A member on this
host is reached over 127.0.0.1 (the localhost exception needs it before the
first user exists), every pymongo error ends as one line naming the member,
the command and the likely cause, and every wait is one `wait_until`.
"""

from __future__ import annotations

import os
import time

from .. import machine
from .. import tls
from ..errors import DbrsError, InputError
from .health import explain_missing

DEFAULT_TIMEOUT_MS = 5000
# pymongo's background threads (monitors, cursor killer) sleep in steps of this many seconds,
# and its atexit hook joins them: at the default 0.5 s every command lingered up to half a
# second after its last output. 50 ms steps keep exit prompt; it also bounds how often a
# monitor re-checks a server while a selection waits (20/s), harmless for a short CLI run.
THREAD_STEP_S = 0.05
SOCKET_TIMEOUT_MIN_MS = 30000   # a command may run longer than connecting may take
_tls_options = {}               # set once per run from the spec by use_tls; every client below gets it


def use_tls(spec, etc, step_path=None):
    """Make every client of this run dial TLS verified by the cluster CA when the spec turns TLS on.

    Set once where the CLI loads the spec, so no code path (status, bootstrap,
    users, backup, restore, upgrade) can forget it and fall back to plaintext.
    """
    _tls_options.clear()
    _tls_options.update(tls.client_kwargs(tls.client_mode(spec, step_path), tls.ca_path(etc)))


def require_ca(spec, etc, step_path=None):
    """A command about to dial a TLS set stops here, in one line, when the CA file is missing (pymongo would
    fail later with a traceback-shaped FileNotFoundError). dbrs-install does not call it: it writes that file."""
    options = tls.client_kwargs(tls.client_mode(spec, step_path), tls.ca_path(etc))
    if options and not os.path.exists(options["tlsCAFile"]):
        raise DbrsError(f"{options['tlsCAFile']} is missing (the cluster CA certificate; cluster.tls is "
                        f'"{spec.cluster.tls}"): {tls.MISSING_CA_FIX}')


def client(host, port, *, user=None, password=None, direct=True, replica_set=None, timeout_ms=None, tls_options=None,
           **kw):
    """A MongoClient to one member (direct) or to the set (replica_set=NAME, hosts as list).

    `tls_options` {} dials plaintext on purpose (the restore drill's own loopback mongod); None uses use_tls's.
    """
    import pymongo
    from pymongo import common

    common.MIN_HEARTBEAT_INTERVAL = min(common.MIN_HEARTBEAT_INTERVAL, THREAD_STEP_S)
    timeout_ms = DEFAULT_TIMEOUT_MS if timeout_ms is None else timeout_ms
    options = dict(
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=max(timeout_ms * 6, SOCKET_TIMEOUT_MIN_MS),
        appname="dbrs",
        **(_tls_options if tls_options is None else tls_options),
        **kw,
    )
    if replica_set:
        options["replicaSet"] = replica_set
    else:
        options["directConnection"] = direct
    if user:
        options.update(username=user, password=password, authSource="admin", authMechanism="SCRAM-SHA-256")
    hosts = host if isinstance(host, (list, tuple)) else [f"{_bracket(host)}:{port}"]
    return pymongo.MongoClient(hosts, **options)


def _bracket(host):
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


# ------------------------------------------------------------ the one error path

def errors():
    import pymongo.errors

    return pymongo.errors


# Server error codes (src/mongo/base/error_codes.yml) and what they mean for the operator.
_NOT_PRIMARY = {10107: "NotWritablePrimary", 13435: "NotPrimaryNoSecondaryOk", 189: "PrimarySteppedDown",
                11602: "InterruptedDueToReplStateChange", 10058: "LegacyNotPrimary"}
_TIME_LIMIT = {50: "MaxTimeMSExpired", 262: "ExceededTimeLimit", 64: "WriteConcernFailed"}


def cause(e):
    """The likely cause of a pymongo error in the operator's words (one line, bounded)."""
    E = errors()
    text = " ".join(str(e).split())
    if isinstance(e, E.OperationFailure):
        msg = " ".join(str((e.details or {}).get("errmsg") or text.split(", full error")[0]).split())[:300]
        if e.code == 18:
            return ("authentication failed: the password in secrets.toml is not the set's (is --config this "
                    "cluster's spec? `dbrs bootstrap` creates the users)")
        if e.code == 13:
            return f"not authorized ({msg}): the user lacks a role; `dbrs bootstrap` grants the dbrs roles"
        if e.code in _NOT_PRIMARY:
            return f"the member is not PRIMARY any more ({msg}): an election is under way; run it again in a few seconds"
        if e.code in _TIME_LIMIT:
            return f"the server gave up waiting ({msg}); see `dbrs status` for members that are down or behind"
        return f"server error {e.code} {(e.details or {}).get('codeName', '')}: {msg}".replace("  ", " ")
    if isinstance(e, (E.NetworkTimeout, E.ExecutionTimeout, E.WTimeoutError)) or "timed out" in text.lower():
        return "no answer in time: the host is down, overloaded, or a firewall drops the traffic"
    if "refused" in text.lower():
        return "connection refused: nothing listens there; is its dbrs-mongod@ unit running?"
    if isinstance(e, E.AutoReconnect):
        return ("the connection was lost mid-command (mongod restarted or stepped down, or the network dropped); "
                "run it again, and see `dbrs status`")
    if isinstance(e, E.ConfigurationError):
        return f"bad connection settings: {text[:300]}"
    return f"{type(e).__name__}: {text[:300]}"


def translate(e, who, command):
    """A DbrsError (exit 1) naming the member, the command and the likely cause."""
    return DbrsError(f"{who}: {command} failed: {cause(e)}")


class talking:
    """`with talking(who, command):` turns any pymongo error inside into translate()'s one line."""

    def __init__(self, who, command):
        self.who, self.command = who, command

    def __enter__(self):
        return self

    def __exit__(self, kind, e, tb):
        if e is not None and isinstance(e, errors().PyMongoError):
            raise translate(e, self.who, self.command) from None
        return False


class Conn:
    """A client to one member that names the member in every error: `conn.command(...)` is admin.command."""

    def __init__(self, who, client_):
        self.who = who
        self.client = client_

    def command(self, cmd, *args, **kw):
        name = cmd if isinstance(cmd, str) else next(iter(cmd))
        with talking(self.who, name):
            return self.client.admin.command(cmd, *args, **kw)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.client.close()
        return False


def connect(who, host, port, **kw):
    """A Conn to host:port (see `client` for the options)."""
    return Conn(who, client(host, port, **kw))


def is_auth_failure(e):
    return isinstance(e, errors().OperationFailure) and e.code == 18


# ------------------------------------------------------------ the members

POLL_S = 0.5
HELLO_TIMEOUT_MS = 2000
LOOPBACK = "127.0.0.1"


def hello(host, port, timeout_ms=HELLO_TIMEOUT_MS):
    """One unauthenticated `hello` (allowed before and after users exist)."""
    with client(host, port, timeout_ms=timeout_ms) as c:
        return c.admin.command("hello")


def member_at(spec, address):
    """The spec member at `address` (host:port as the set names it), or None."""
    return next((m for m in spec.members if m.address == address), None)


def lookup(spec, name):
    """The spec member called `name` (an argument of degrade/recover); InputError naming the known ones."""
    if name not in spec.names():
        raise InputError(name, "is not a member of the spec", "known: " + ", ".join(spec.names()))
    return spec.member(name)


def host_of(member, local=None):
    """Where to reach `member`: 127.0.0.1 when it is `local` (the member on this host), else its spec host."""
    return LOOPBACK if local is not None and member.name == local.name else member.host


def local_first(spec):
    """The spec members, those on this host first (they answer even when the network does not)."""
    here = machine.this_host()
    return sorted(spec.members, key=lambda m: not machine.is_local(m.host, here))


def who(member, user=None, host=None):
    where = f"{host}:{member.port}" if host else member.address
    return f"{member.name} ({where})" + (f" as {user}" if user else "")


def connect_member(member, user=None, password=None, host=None):
    """A Conn to a spec member (at `host` when given, e.g. 127.0.0.1), named for its errors."""
    return connect(who(member, user, host), host or member.host, member.port, user=user, password=password)


def find_primary(spec, timeout_ms=HELLO_TIMEOUT_MS):
    """(primary Member or None, {name: hello or error text}); asks the members on this host first."""
    seen = {}
    for m in local_first(spec):
        try:
            h = hello(m.host, m.port, timeout_ms)
        except errors().PyMongoError as e:
            seen[m.name] = str(e)
            continue
        seen[m.name] = h
        if h.get("isWritablePrimary"):
            return m, seen
        candidate = member_at(spec, h.get("primary") or "")
        if candidate is not None:
            try:
                if hello(candidate.host, candidate.port, timeout_ms).get("isWritablePrimary"):
                    return candidate, seen
            except errors().PyMongoError:
                pass
    return None, seen


def seen_text(spec, seen):
    """What each member answered find_primary, in the operator's words."""
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


def primary(spec):
    """The PRIMARY member, or DbrsError saying what each member answered."""
    found, seen = find_primary(spec)
    if found is None:
        raise DbrsError("no member is PRIMARY: " + seen_text(spec, seen) + "; see `dbrs status`")
    return found


def connect_any(spec, secrets, user, need_primary):
    """(member, Conn as `user`) to the primary, or without one (need_primary False) the first data-bearing
    member that answers, this host's first."""
    found, seen = find_primary(spec)
    if found is None and need_primary:
        raise DbrsError("no member is PRIMARY: " + seen_text(spec, seen) + "; see `dbrs status`")
    member = found
    if member is None:
        member = next((m for m in local_first(spec) if isinstance(seen.get(m.name), dict) and m.data_bearing), None)
    if member is None:
        raise DbrsError("no member answers: " + seen_text(spec, seen))
    return member, connect_member(member, user, secrets.password(user))


# ------------------------------------------------------------ the one wait

def wait_line(progress, text, elapsed, limit, key=None):
    """One poll of a long wait: the reporter decides how often it shows (live line, or when `key` changes and
    every few seconds); a plain callable hears every poll."""
    if progress is None:
        return
    wait = getattr(progress, "wait", None)
    if wait:
        wait(text, elapsed, limit, key=key)
    else:
        progress(f"{text} [{elapsed:.0f}/{limit:g} s]")


def wait_until(deadline, probe, describe, *, limit=None, progress=None, poll_s=POLL_S, tell_last=True):
    """Poll `probe()` until it returns something other than None, and return that.

    `deadline` is on time.monotonic(); `limit` the whole wait in seconds
    (for the progress line; the deadline's distance from now by default).
    `describe(final)` says what is still missing: with final=False a progress
    line (text, or (text, key) so the reporter can tell a change), with
    final=True the one-line failure raised as DbrsError at the deadline.
    `tell_last` False skips the progress line of the poll that hits the deadline.
    """
    limit = deadline - time.monotonic() if limit is None else limit
    while True:
        got = probe()
        if got is not None:
            return got
        now = time.monotonic()
        late = now >= deadline
        if progress is not None and (tell_last or not late):
            line = describe(False)
            text, key = line if isinstance(line, tuple) else (line, None)
            wait_line(progress, text, limit - (deadline - now), limit, key=key)
        if late:
            raise DbrsError(describe(True))
        time.sleep(min(poll_s, max(0.0, deadline - now)))
