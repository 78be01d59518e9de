"""`dbrs oplog`: a point-in-time-recovery slice, the oplog entries since the last one.

Entries come from `local.oplog.rs` as raw BSON (pymongo's RawBSONDocument:
the bytes the server sent, never decoded and re-encoded) and are written as
a gzip'd `oplog.bson` (BSON documents back to back, what `mongorestore
--oplogReplay` reads), through the same Sink as full backups.

Slices chain: each starts after the previous one's last entry ("after"),
the first after the newest full backup's oplog start. If the oldest entry
still in the oplog is newer than "after", entries were overwritten before
they were saved: a gap. PITR across it is impossible; the run saves what
is there, marks the slice, and fails so the alert fires. A full backup
taken after the gap re-anchors the chain and ends the failure.
"""

from __future__ import annotations

import hashlib
import socket
import time
import zlib
from dataclasses import dataclass

from .. import tools
from . import archive, catalog, dump, finish, source, times, history
from .manifest import Manifest
from ..errors import DbrsError
from ..replset.connection import talking


class Gap(DbrsError):
    """The oplog rolled over before a slice saved it."""


@dataclass(frozen=True)
class SlicePlan:
    after: int          # save entries with ts > after
    gap: bool           # entries between after and the oldest oplog entry are lost
    reanchored: bool    # the chain restarts at a full backup taken after an older gap


def plan(fulls, slices, oldest):
    """Where the next slice starts and whether there is a gap. Pure.

    `fulls`/`slices` are good catalog entries (oldest first); `oldest` is
    the oldest ts in the member's oplog right now.
    """
    chain = slices[-1].last if slices else None
    if chain is None:
        if not fulls:
            raise source.Skip("no full backup yet; slices start after the first one (run `dbrs backup`)")
        chain = fulls[-1].oplog_start
        if oldest > chain:
            raise Gap(f"the oplog no longer reaches the newest full backup ({times.ts_iso(chain)}); "
                      "take a new full backup")
        return SlicePlan(chain, False, False)
    if oldest <= chain:
        return SlicePlan(chain, False, False)
    anchors = [f.oplog_start for f in fulls if f.oplog_start is not None and f.oplog_start >= oldest]
    if anchors:
        return SlicePlan(min(anchors), False, True)
    return SlicePlan(chain, True, False)


def committed_ts(status):
    """The majority-committed point, so a slice never holds entries a rollback could undo."""
    try:
        ts = status["optimes"]["lastCommittedOpTime"]["ts"]
    except (KeyError, TypeError):
        return None
    return times.ts_int(ts.time, ts.inc)


def read_entries(client, after, until=None, batch_size=2000, include_after=False):
    """Yield raw BSON bytes of oplog entries with after < ts (<= until), in oplog order.

    `include_after` asks for the entry at `after` too (ts >= after), so the
    caller can prove the oplog still reaches the previous slice (continuing).
    """
    from bson.codec_options import CodecOptions
    from bson.raw_bson import RawBSONDocument
    from bson.timestamp import Timestamp

    coll = client.get_database("local", codec_options=CodecOptions(document_class=RawBSONDocument))["oplog.rs"]
    query = {"$gte" if include_after else "$gt": Timestamp(after >> 32, after & 0xFFFFFFFF)}
    if until is not None:
        query["$lte"] = Timestamp(until >> 32, until & 0xFFFFFFFF)
    cursor = coll.find({"ts": query}, sort=[("$natural", 1)], batch_size=batch_size)
    for doc in cursor:
        yield doc


def continuing(docs, after):
    """The entries after `after`, once the first one read proved to be `after` itself.

    MongoDB's own continuity check: if the previous slice's last entry is
    still in the oplog, nothing between it and this read was overwritten.
    Checked in the same query that reads the entries, so a rollover between
    the bounds check and the read cannot open a silent hole.
    """
    it = iter(docs)
    for doc in it:
        ts = doc["ts"]
        if times.ts_int(ts.time, ts.inc) != after:
            raise Gap(f"the oplog rolled past {times.ts_exact(after)} (the previous slice's last entry) while "
                      "this slice was read; nothing was saved; run `dbrs backup` to start a new chain")
        break
    else:
        raise Gap(f"the oplog no longer holds {times.ts_exact(after)}, the previous slice's last entry; nothing "
                  "was saved; run `dbrs backup` to start a new chain")
    yield from it


def write_slice(docs, sink, sha=None):
    """gzip the raw entries into `sink`; returns (first ts, last ts, count). `sha` hashes the entries' bytes."""
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    first = last = None
    count = 0
    pending = []
    size = 0
    for doc in docs:
        raw = doc.raw
        if first is None:
            ts = doc["ts"]
            first = times.ts_int(ts.time, ts.inc)
        last_doc = doc
        pending.append(raw)
        if sha is not None:
            sha.update(raw)
        size += len(raw)
        count += 1
        if size >= 1 << 20:
            sink.write(z.compress(b"".join(pending)))
            pending, size = [], 0
    if count:
        ts = last_doc["ts"]
        last = times.ts_int(ts.time, ts.inc)
    sink.write(z.compress(b"".join(pending)) + z.flush())
    return first, last, count


@dataclass
class Result:
    status: str
    reason: str = ""
    name: str = ""
    manifest: dict = None

    def line(self):
        if self.status == "skipped":
            return f"oplog slice skipped: {self.reason}"
        m = self.manifest
        return (f"oplog slice {self.name}: {m['count']} entries {times.ts_iso(times.ts_from_json(m['first']))}"
                f" .. {times.ts_iso(times.ts_from_json(m['last']))}, {dump.human(m['bytes'])}")


def run(spec, spec_path, *, connect_fn=None, now=time.time, hostname=None, local=None):
    state_file, password, key, local, connect_fn = source.prepare(spec, spec_path, connect_fn, local)
    if not local:
        return Result("skipped", "this host has no data-bearing member of the spec")
    bdir = spec.backup.dir
    with tools.signals_as_errors("the oplog slice"), catalog.lock(bdir, catalog.OPLOG):
        client = connect_fn(local[0], password)
        try:
            try:
                status = source.first_status(client, local[0], state_file)
            except source.Skip as s:
                return Result("skipped", str(s))
            with talking(source.who(local[0]), "replSetGetConfig"):
                ident = source.cluster_identity(client, spec)
            catalog.remember_identity(ident, state_file)
            catalog.clear_partials(bdir, catalog.OPLOG, ident)
            try:
                member, _ = source.choose_source(spec, local, source.member_states(spec, status))
                fulls = catalog.scan(bdir, catalog.FULL, ident)[0]
                slices = catalog.scan(bdir, catalog.OPLOG, ident)[0]
                if member != local[0]:
                    client.close()
                    client = connect_fn(member, password)
                    # users reach the other members a moment after the bootstrap created them
                    status = source.first_status(client, member, state_file)
                with talking(source.who(member), "find local.oplog.rs"):
                    oldest, _newest = source.oplog_bounds(client)
                p = plan(fulls, slices, oldest)
            except source.Skip as s:
                return Result("skipped", str(s))
            started = now()
            name = catalog.free_name(catalog.kind_dir(bdir, catalog.OPLOG), ident.cluster, catalog.OPLOG, started,
                                     ident.replset_id)
            path = catalog.kind_dir(bdir, catalog.OPLOG) / name
            try:
                with catalog.folder_errors(bdir), archive.Sink(path, key) as sink, \
                        talking(source.who(member), "find local.oplog.rs"):
                    entries_sha = hashlib.sha256()
                    docs = read_entries(client, p.after, committed_ts(status), include_after=not p.gap)
                    first, last, count = write_slice(docs if p.gap else continuing(docs, p.after), sink,
                                                     entries_sha)
                    if not count:
                        sink.abort()
                        return Result("skipped", f"no new oplog entries after {times.ts_iso(p.after)}")
                    written = sink.commit()
            except OSError as e:
                raise DbrsError(f"writing {path}: {e.strerror or e}; nothing was kept (is {bdir} full?)") from None
        finally:
            client.close()
        manifest = Manifest(
            kind=catalog.OPLOG, name=name, cluster=spec.cluster.name, replset_id=ident.replset_id,
            member=member.name, host=hostname or socket.gethostname(), started=times.iso(started),
            finished=times.iso(now()), after=p.after, first=first, last=last, count=count,
            entries_sha256=entries_sha.hexdigest(), gap=p.gap, reanchored=p.reanchored, bytes=written.bytes,
            plain_bytes=written.plain_bytes, sha256=written.sha256, encrypted=written.encrypted,
            key_id=archive.key_id(key).hex() if key else None, **archive.proofs(written))
        finish.write_manifest_or_remove(path, manifest)
        finish.record_written(path)
        finish.queue_offsite(spec, path)
    if p.gap:
        raise Gap(f"oplog gap: entries after {times.ts_iso(p.after)} up to {times.ts_iso(first)} were "
                  f"overwritten before a slice saved them; point-in-time restore is broken until the next "
                  f"full backup (run `dbrs backup`, and raise the oplog size or slice more often)")
    history.record_success(catalog.OPLOG, {"name": name, "last": times.ts_iso(last), "count": count}, state_file)
    finish.metrics(spec, state_file)
    return Result("done", "", name, manifest.to_dict())
