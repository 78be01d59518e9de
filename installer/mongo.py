"""Connections to the members, the one place pymongo clients are made.

Passwords go to pymongo as arguments, never into a URI that could be
logged. Timeouts are short: an operator waiting on a dead member wants to
hear about it in seconds, not after pymongo's 30 s default.
"""

from __future__ import annotations

DEFAULT_TIMEOUT_MS = 5000
# pymongo's background threads (monitors, cursor killer) sleep in steps of this many seconds,
# and its atexit hook joins them: at the default 0.5 s every command lingered up to half a
# second after its last output. 50 ms steps keep exit prompt; it also bounds how often a
# monitor re-checks a server while a selection waits (20/s), harmless for a short CLI run.
THREAD_STEP_S = 0.05
SOCKET_TIMEOUT_MIN_MS = 30000   # a command may run longer than connecting may take


def client(host, port, *, user=None, password=None, direct=True, replica_set=None, timeout_ms=None, **kw):
    """A MongoClient to one member (direct) or to the set (replica_set=NAME, hosts as list)."""
    import pymongo
    from pymongo import common

    common.MIN_HEARTBEAT_INTERVAL = min(common.MIN_HEARTBEAT_INTERVAL, THREAD_STEP_S)
    timeout_ms = DEFAULT_TIMEOUT_MS if timeout_ms is None else timeout_ms
    options = dict(
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=max(timeout_ms * 6, SOCKET_TIMEOUT_MIN_MS),
        appname="dbrs",
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


def member_client(member, **kw):
    """Connect to a spec member; members on this host are reached over loopback (localhost exception)."""
    return client(member.host, member.port, **kw)


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
    from .errors import DbrsError

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
