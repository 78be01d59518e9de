"""Catalog entries built in memory, for the pure planners (retention, PITR)."""

from installer.backup import catalog, entry, times
from installer.backup.manifest import Manifest


def ts(sec, inc=1):
    return times.ts_int(sec, inc)


def full(created, start=None, end=None, name=None, cluster="dbrs"):
    start = ts(int(created) - 60) if start is None else start
    end = ts(int(created)) if end is None else end
    name = name or catalog.file_name(cluster, catalog.FULL, created)
    m = {"name": name, "kind": "full", "finished": times.iso(created), "bytes": 1, "cluster": cluster,
         "encrypted": True, "oplog_start": times.ts_json(start), "oplog_end": times.ts_json(end),
         "member": "mongod2", "host": "db2"}
    return entry.Entry("full", name, f"/nonexistent/{name}", Manifest.from_dict(m))


def piece(after, first, last, gap=False, created=None, cluster="dbrs", name=None):
    created = (last >> 32) + 5 if created is None else created
    name = name or f"{cluster}-{last >> 32:012d}-{last & 0xFFFFFFFF:06d}.oplog.gz"
    m = {"name": name, "kind": "oplog", "finished": times.iso(created), "bytes": 1, "cluster": cluster,
         "encrypted": True, "after": times.ts_json(after), "first": times.ts_json(first),
         "last": times.ts_json(last), "gap": gap, "count": 3}
    return entry.Entry("oplog", name, f"/nonexistent/{name}", Manifest.from_dict(m))


def chain(start, end, step=300, begin_after=None):
    """Contiguous slices covering (start, end] every `step` seconds."""
    out = []
    after = ts(start) if begin_after is None else begin_after
    t = start
    while t < end:
        t2 = min(t + step, end)
        out.append(piece(after, ts(t + 1), ts(t2)))
        after = ts(t2)
        t = t2
    return out
