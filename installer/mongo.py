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


def client(host, port, *, user=None, password=None, direct=True, replica_set=None, timeout_ms=DEFAULT_TIMEOUT_MS,
           **kw):
    """A MongoClient to one member (direct) or to the set (replica_set=NAME, hosts as list)."""
    import pymongo
    from pymongo import common

    common.MIN_HEARTBEAT_INTERVAL = min(common.MIN_HEARTBEAT_INTERVAL, THREAD_STEP_S)
    options = dict(
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=max(timeout_ms * 6, 30000),
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
