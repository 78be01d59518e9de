"""A running member's oplog size: read it, and change it with replSetResizeOplog.

mongod reads replication.oplogSizeMB only when it creates the oplog, so a
new cluster.oplog_size_mb reaches members that already run only through
replSetResizeOplog, sent to each data-bearing member itself (the command
changes the oplog of the member that runs it). The oplog size bounds how far
back point-in-time restore and a lagging secondary can reach.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import DbrsError
from . import connection
from .connection import cause, errors

MIB = 1024 * 1024


def resize_command(size_mb):
    """replSetResizeOplog's document (size in MB, as a double)."""
    return {"replSetResizeOplog": 1, "size": float(size_mb)}


def stats_pipeline():
    return [{"$collStats": {"storageStats": {}}}]


@dataclass(frozen=True)
class Resize:
    member: str
    before_mb: float
    after_mb: float

    @property
    def changed(self):
        return self.before_mb != self.after_mb


def current_mb(client):
    """The configured maximum size of this member's oplog, in MB."""
    batch = list(client.local["oplog.rs"].aggregate(stats_pipeline()))
    if not batch or "maxSize" not in batch[0].get("storageStats", {}):
        raise DbrsError("local.oplog.rs has no maxSize in $collStats: is this a replica-set member?")
    return batch[0]["storageStats"]["maxSize"] / MIB


def ensure(client, member_name, size_mb):
    """Resize the oplog of the member `client` is directly connected to, if it differs; idempotent."""
    try:
        before = current_mb(client)
        if round(before) == size_mb:
            return Resize(member_name, before, before)
        client.admin.command(resize_command(size_mb))
        after = current_mb(client)
    except errors().PyMongoError as e:
        raise DbrsError(f"{member_name}: resizing the oplog to {size_mb} MB failed: {cause(e)} "
                        "(run `dbrs status`; dbrs-install retries on its next run)") from None
    if round(after) != size_mb:
        raise DbrsError(f"{member_name}: the oplog is {after:.0f} MB after replSetResizeOplog asked for {size_mb} MB")
    return Resize(member_name, before, after)


def install_steps(target, secrets):
    """The dbrs-install step after apply (and the bootstrap): cluster.oplog_size_mb on each running data-bearing
    member of this run, over loopback as admin. A member not in an initiated set yet is left for a later run."""
    size = target.spec.cluster.oplog_size_mb
    if not size or not target.live or not target.start:
        return []
    changed, same, later = [], [], []
    for m in target.members:
        if not m.data_bearing:
            continue
        try:
            initiated = bool(connection.hello("127.0.0.1", m.port).get("setName"))
        except connection.errors().PyMongoError as e:
            later.append(f"{m.name} does not answer ({connection.cause(e)[:120]})")
            continue
        if not initiated:
            later.append(f"{m.name} is not in an initiated set yet")
            continue
        with connection.client("127.0.0.1", m.port, user="admin", password=secrets.password("admin")) as c:
            r = ensure(c, m.name, size)
        (changed if r.changed else same).append(f"{m.name} {r.before_mb:.0f} -> {r.after_mb:.0f} MB" if r.changed
                                                else f"{m.name} {r.after_mb:.0f} MB")
    if not changed and not same and not later:
        return []
    status = "changed" if changed else "waiting" if later else "unchanged"
    detail = "; ".join(changed + same + [f"{t}: dbrs-install sets it on its next run" for t in later])
    return [("oplog size", status, detail)]
