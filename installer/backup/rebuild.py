"""`dbrs backup verify --rebuild-manifest NAME`: bring back a quarantined archive whose manifest was lost.

What the bytes tell is re-derived: size, sha256, encryption and key id,
the dump's length (by reading it through, which also proves every chunk
authenticates), and for a slice its entries' count and first/last
timestamps. What only the run knew (member, host, the dump's oplog start
and end, tool versions, collection counts) is left out, and the manifest
says `"rebuilt": true`, so nobody mistakes it for an original. A full
backup without oplog times can be restored by NAME, never picked for --to.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace

from . import archive, catalog, entry, replay, times, verification
from .manifest import Manifest
from ..errors import DbrsError, InputError


def rebuild(backup_dir, name, key, cluster, now=None):
    """Re-derive NAME's manifest from its bytes, put it back into the catalog, record it verified."""
    name = str(name)
    if "/" in name or name in (".", ".."):
        raise InputError("NAME", f"{catalog.shown(name)!r} is a path", "give the name `dbrs backup list` shows")
    kind = next((k for k, suffix in catalog.SUFFIX.items() if name.endswith(suffix)), None)
    entry = next((q for q in catalog.quarantined(backup_dir) if q["name"] == name), None)
    if kind is None or entry is None:
        raise InputError("NAME", f"{catalog.shown(name)!r} is not in quarantine", "see `dbrs backup list`")
    qdir = os.path.join(str(backup_dir), catalog.QUARANTINE)
    stored = os.path.join(qdir, entry.get("stored_as", name))
    if not os.path.exists(stored):
        raise InputError("NAME", f"{name}: only its manifest is in quarantine, the data is gone",
                         "nothing to rebuild from")
    with catalog.lock(backup_dir, kind):
        target = catalog.kind_dir(backup_dir, kind) / name
        if os.path.lexists(target) or os.path.lexists(str(target) + catalog.MANIFEST):
            raise InputError("NAME", f"{name} exists in the catalog again", "move one of them away first")
        manifest = derive(stored, name, kind, key, cluster)
        catalog.write_manifest(target, manifest)
        os.rename(stored, target)
        for suffix in (catalog.MANIFEST, catalog.RECORD, catalog.WHY):
            try:
                os.unlink(stored + suffix)
            except FileNotFoundError:
                pass
        verification.write(target, True, "rebuilt", "manifest re-derived from the bytes", now)
    return manifest


def derive(path, name, kind, key, cluster):
    """The manifest the bytes at `path` support, marked rebuilt; DbrsError when they do not read back."""
    sha = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        head = f.read(archive.HEADER_SIZE)
        f.seek(0)
        while block := f.read(1 << 20):
            sha.update(block)
            size += len(block)
    encrypted = head.startswith(archive.MAGIC)
    kid = None
    if encrypted:
        kid = head[-8:].hex()
        if key is None or kid != archive.key_id(key).hex():
            raise DbrsError(f"{name}: encrypted with key id {kid}, backup.key is another; cannot read it to rebuild")
    st = os.stat(path)
    m = Manifest(kind=kind, name=name, cluster=cluster, started=times.iso(st.st_mtime),
                 finished=times.iso(st.st_mtime), bytes=size, sha256=sha.hexdigest(), encrypted=encrypted,
                 key_id=kid, rebuilt=True,
                 rebuilt_note="re-derived from the file by `dbrs backup verify --rebuild-manifest`; "
                              "times are the file's mtime, run details unknown")
    chunks = entry.Entry(kind, name, path, m).open(key if encrypted else None)
    try:
        if kind == catalog.FULL:
            return replace(m, plain_bytes=sum(len(c) for c in chunks))
        from bson.raw_bson import RawBSONDocument


        first = last = None
        count = 0
        for raw in replay.oplog_docs(chunks, name):
            ts = RawBSONDocument(raw)["ts"]
            v = times.ts_int(ts.time, ts.inc)
            first = v if first is None else first
            last = v
            count += 1
        if not count:
            raise archive.ArchiveError(f"{name}: holds no oplog entries")
        return replace(m, count=count, first=first, last=last, after=first - 1, gap=False, reanchored=False)
    except archive.ArchiveError as e:
        raise DbrsError(f"cannot rebuild: {e}; the file stays in quarantine") from None
