"""Which member a backup or slice reads from, and talking to it: shared by full backups and oplog slices.

Every data-bearing host runs the timers; exactly one of them reads: the one
holding the first healthy SECONDARY (spec order), or the primary's host
when no secondary is healthy. The others skip with a reason and exit 0.
The member is reached over loopback as the backup user.
"""

from __future__ import annotations

import time

from . import catalog, times, history
from .. import machine, secrets
from ..errors import DbrsError, InputError
from ..replset import connection
from ..replset.connection import talking
from ..replset.health import interpret_status


USER = "backup"


LOOPBACK = "127.0.0.1"


# Timers fire before `dbrs-install --role primary` has initiated the set and created the backup user;
# the first runs within this long wait quietly, later ones fail (a wrong password must not stay silent).
BOOTSTRAP_GRACE_S = 3600


NOT_BOOTSTRAPPED = (18, 94, 93)     # AuthenticationFailed, NotYetInitialized, InvalidReplicaSetConfig


class Skip(Exception):
    """This host is not the one to back up now (not an error: exit 0 with the reason)."""


def backup_key(sec):
    try:
        return secrets.backup_key_bytes(sec.backup_key)
    except ValueError:
        raise InputError("backup.key", "is not base64", "restore it from the bundle (`dbrs-install --bundle FILE`)") \
            from None


def local_members(spec):
    """Data-bearing spec members whose host is this machine."""
    here = machine.this_host()
    return [m for m in spec.members if m.data_bearing and machine.is_local(m.host, here)]


def member_states(spec, status):
    """{member name: (state, healthy)} from a replSetGetStatus reply (read by replset.health.interpret_status)."""

    seen = {m.name: (m.state, bool(m.health)) for m in interpret_status(status, spec).members}
    return {m.name: seen.get(m.name, ("UNKNOWN", False)) for m in spec.members}


def choose_source(spec, local, states):
    """The member to dump on this host, or Skip(reason). Pure.

    One host dumps per run: the first healthy SECONDARY in spec order;
    when none is healthy, the PRIMARY (a dump there competes with the
    application, so it is the fallback, not the rule).
    """
    secondaries = [m for m in spec.members if states.get(m.name) == ("SECONDARY", True)]
    if secondaries:
        chosen, why = secondaries[0], "healthy secondary"
    else:
        primaries = [m for m in spec.members if states.get(m.name) == ("PRIMARY", True)]
        if not primaries:
            raise DbrsError("no healthy PRIMARY or SECONDARY in the replica set; nothing to back up from "
                            "(check `dbrs status`)")
        chosen, why = primaries[0], "primary, because no secondary is healthy"
    if chosen.name in {m.name for m in local}:
        return chosen, why
    here = ", ".join(m.name for m in local) or "no data-bearing member"
    raise Skip(f"{chosen.name} ({chosen.address}, {why}) takes the backup; this host has {here}")


def prepare(spec, spec_path, connect_fn=None, local=None):
    """What a full backup and an oplog slice both need first: (state file, the backup user's password, the backup
    key or None, this host's data-bearing members, the connect function)."""
    sec = secrets.load(spec_path)
    return (history.state_path(spec_path), sec.password(USER), backup_key(sec) if spec.backup.encrypt else None,
            local_members(spec) if local is None else local, connect_fn or connect)


def first_status(client, member, state_file, now=None):
    """replSetGetStatus as the backup user, or Skip("not bootstrapped yet") while the set is young.

    Before bootstrap the backup user does not exist (AuthenticationFailed)
    or the set is not initiated (NotYetInitialized). That is expected for
    the first runs after an install; it is a failure once it lasts longer
    than BOOTSTRAP_GRACE_S, counted from the first such run, and at once
    on a set that has been backed up before.
    """
    from pymongo.errors import OperationFailure

    now = time.time() if now is None else now
    with talking(who(member), "replSetGetStatus"):
        try:
            return read_status(client)
        except OperationFailure as e:
            if e.code not in NOT_BOOTSTRAPPED:
                raise
            state = history.update_state(
                lambda s: None if s.get("last_success") else s.setdefault("waiting_for_bootstrap_since", now),
                state_file)
            since = state.get("waiting_for_bootstrap_since", now - BOOTSTRAP_GRACE_S)
            if now - since < BOOTSTRAP_GRACE_S:
                raise Skip(f"not bootstrapped yet: {member.name} has no replica set or no backup user "
                           f"({(e.details or {}).get('errmsg') or e}); waiting for `dbrs-install --role primary`") \
                    from None
            raise DbrsError(f"{who(member)}: {(e.details or {}).get('errmsg') or e} (the replica set or its backup "
                            "user is missing, or the password in secrets.toml does not match; run `dbrs bootstrap` "
                            "on the primary's host)") from None


def who(member):
    return f"{member.name} ({LOOPBACK}:{member.port}) as {USER}"


def connect(member, password, **kw):
    return connection.client(LOOPBACK, member.port, user=USER, password=password, **kw)


def read_status(client):
    return client.admin.command("replSetGetStatus")


def cluster_identity(client, spec):
    """This set's catalog.Identity: its name and replSetGetConfig.settings.replicaSetId (clusterMonitor may ask)."""
    cfg = client.admin.command("replSetGetConfig").get("config", {})
    rsid = (cfg.get("settings") or {}).get("replicaSetId")
    return catalog.Identity(spec.cluster.name, str(rsid) if rsid is not None else None)


def server_version(client):
    return client.admin.command("buildInfo").get("version", "unknown")


def _oplog_edge(client, direction):
    from bson.codec_options import CodecOptions
    from bson.raw_bson import RawBSONDocument

    coll = client.get_database("local", codec_options=CodecOptions(document_class=RawBSONDocument))["oplog.rs"]
    docs = list(coll.find({}, {"ts": 1}).sort("$natural", direction).limit(1))
    if not docs:
        raise DbrsError("local.oplog.rs is empty; is this member part of an initiated replica set?")
    ts = docs[0]["ts"]
    return times.ts_int(ts.time, ts.inc)


def newest_ts(client):
    """The newest oplog entry's timestamp: the dump's bounds are read just before and just after it."""
    return _oplog_edge(client, -1)


def oplog_bounds(client):
    """(oldest, newest) oplog entry timestamps as ints, read as raw BSON."""
    return _oplog_edge(client, 1), _oplog_edge(client, -1)
