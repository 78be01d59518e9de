"""The oplog a point-in-time restore replays: slices read back, every entry proven against its manifest,
trimmed to what the base does not hold yet, written once and in order into one oplog.bson."""

from __future__ import annotations

import hashlib
import os
import struct
import zlib

from . import archive, times


def gunzip(chunks, name):
    z = zlib.decompressobj(31)
    for data in chunks:
        try:
            out = z.decompress(data)
        except zlib.error as e:
            raise archive.ArchiveError(f"{name}: not valid gzip ({e})") from None
        if out:
            yield out
    if not z.eof:
        raise archive.ArchiveError(f"{name}: gzip stream cut off")



def oplog_docs(chunks, name):
    """Raw BSON documents, one by one, out of a gzip'd oplog.bson stream."""
    buf = bytearray()
    for data in gunzip(chunks, name):
        buf += data
        off = 0
        while len(buf) - off >= 4:
            (n,) = struct.unpack_from("<i", buf, off)
            if n < 5:
                raise archive.ArchiveError(f"{name}: BSON document of length {n}")
            if len(buf) - off < n:
                break
            yield bytes(buf[off:off + n])
            off += n
        del buf[:off]
    if buf:
        raise archive.ArchiveError(f"{name}: ends inside a BSON document")



def entry_ts(raw):
    from bson.raw_bson import RawBSONDocument

    ts = RawBSONDocument(raw)["ts"]
    return times.ts_int(ts.time, ts.inc)



def slice_entries(entry, chunks):
    """(ts, raw) of a slice's entries; ArchiveError unless the data is what the manifest says.

    Raised at the end (or at the first entry out of order), so a caller
    that acts on entries must finish the loop before acting.
    """
    m = entry.manifest
    name = entry.name
    sha = hashlib.sha256()
    first = last = None
    n = 0
    for raw in oplog_docs(chunks, name):
        v = entry_ts(raw)
        if last is not None and v <= last:
            raise archive.ArchiveError(f"{name}: entry {times.ts_exact(v)} after {times.ts_exact(last)}: "
                                       "out of order or repeated")
        first = v if first is None else first
        last = v
        n += 1
        sha.update(raw)
        yield v, raw
    want = (entry.first, entry.last, m.count)
    if (first, last, n) != want:
        raise archive.ArchiveError(
            f"{name}: holds {n} entries {times.ts_exact(first)} .. {times.ts_exact(last)}, the manifest says "
            f"{m.count} entries {times.ts_exact(entry.first)} .. {times.ts_exact(entry.last)}; "
            "this slice cannot be trusted")
    if m.entries_sha256 and sha.hexdigest() != m.entries_sha256:
        raise archive.ArchiveError(f"{name}: its entries do not match the manifest's hash; this slice cannot be trusted")
    if first is not None and not m.gap and entry.after is not None and first <= entry.after:
        raise archive.ArchiveError(f"{name}: first entry {times.ts_exact(first)} is not after the slice's start "
                                   f"{times.ts_exact(entry.after)}")



def wanted(raw):
    """Entries mongorestore may replay: none for config/local or admin's collections (admin.$cmd stays:
    transactions commit as applyOps commands there)."""
    from bson.raw_bson import RawBSONDocument

    ns = RawBSONDocument(raw).get("ns", "")
    db = ns.split(".", 1)[0]
    return not (db in ("config", "local") or (db == "admin" and ns != "admin.$cmd"))



def replay_filter(docs, after, limit):
    """Entries to replay from raw documents: after < ts < limit, each once, in order, per `wanted`."""
    for raw in docs:
        v = entry_ts(raw)
        if v <= after:
            continue
        if v >= limit:
            return
        after = v
        if wanted(raw):
            yield raw



def prepare_oplog(plan, key, folder):
    """Prove every slice and write the replay's oplog.bson into `folder`, each entry once in order. Returns the count.

    One read per slice: entries at or before what is already covered (the
    base's oplog start, then each earlier slice's entries) are trimmed by
    timestamp, so overlapping slices replay nothing twice.
    """
    path = os.path.join(folder, "oplog.bson")
    n = 0
    covered = plan.base.oplog_start
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        for s in plan.slices:
            keep = []
            for v, raw in slice_entries(s, s.proven(key)):
                if covered < v < plan.limit and wanted(raw):
                    keep.append(raw)
            # the slice proved itself whole (slice_entries raises at its end) before any of it is used
            for raw in keep:
                f.write(raw)
            n += len(keep)
            covered = max(covered, min(s.last, plan.limit - 1))
    return n
