"""What the off-site targets hold, read through rclone: listing with manifests, the retention applied there, and
the check of remote copies against their manifests."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from . import archive, catalog, entry, offsite, offsite_targets, rclone, times
from .rclone import RemoteError, one_line, root_of
from .manifest import Manifest, ManifestError
from ..errors import InputError


ORPHAN_AGE = 86400          # a data object without manifest this old is a dead upload, not one in progress


@dataclass(frozen=True)
class Remote:
    """One file on a target, with its manifest when there is one."""

    kind: str
    name: str
    size: int
    manifest: dict = None
    mtime: float = 0.0

    @property
    def good(self):
        """A manifest that reads (Manifest.from_dict) and names this very file and size."""
        m = self.typed
        return m is not None and m.name == self.name and m.bytes == self.size

    @cached_property
    def typed(self):
        try:
            return Manifest.from_dict(self.manifest) if self.manifest else None
        except ManifestError:
            return None

    @property
    def entry(self):
        """As a catalog.Entry, so restore's planners work on remote backups too."""
        return entry.Entry(self.kind, self.name, self.name, self.typed)


def parse_listing(listing, manifests):
    """lsjson rows + {relative path: manifest} -> Remote files of both kinds, by name. Pure."""
    out = []
    for row in listing:
        path = row["Path"]
        kind, _, name = path.partition("/")
        if kind not in catalog.SUFFIX or "/" in name or not name.endswith(catalog.SUFFIX[kind]):
            continue
        mtime = 0.0
        if row.get("ModTime"):
            try:
                mtime = times.parse_iso(row["ModTime"][:19] + "Z")
            except ValueError:
                pass
        out.append(Remote(kind, name, row["Size"], manifests.get(path + catalog.MANIFEST), mtime))
    return sorted(out, key=lambda r: (r.kind, r.name))


def listing(spec, target, session):
    """What is on one target, manifests read (one rclone call for the list, one for all manifests)."""
    import tempfile

    root = root_of(target, spec.cluster.name)
    rows = session.lsjson(root)
    manifests = {}
    if any(r["Path"].endswith(catalog.MANIFEST) for r in rows):
        tmp = Path(tempfile.mkdtemp(dir=session.dir))
        session.copy_manifests(root, tmp)
        for r in rows:
            if r["Path"].endswith(catalog.MANIFEST):
                try:
                    manifests[r["Path"]] = json.loads((tmp / r["Path"]).read_text())
                except (OSError, ValueError):
                    pass
    return parse_listing(rows, manifests)


def decide_remote(files, keep_min, retention_days, now, orphan_age=ORPHAN_AGE):
    """Which remote files to delete. Pure.

    Full backups older than `retention_days` go, but the newest `keep_min`
    good ones always stay, and a file without a good manifest never counts
    toward them. Slices go when they end before the oplog start of the
    oldest full backup kept. Data without a good manifest goes once it is
    `orphan_age` old (a dead upload; a younger one may be in progress).
    """
    fulls = sorted((f for f in files if f.kind == catalog.FULL and f.good),
                   key=lambda f: f.entry.created)
    cutoff = now - retention_days * 86400
    keep = set(f.name for f in fulls[-keep_min:]) if keep_min else set()
    keep |= {f.name for f in fulls if f.entry.created >= cutoff}
    drop = [f for f in fulls if f.name not in keep]
    kept = [f for f in fulls if f.name in keep]
    if kept:
        oldest = min(f.entry.oplog_start or 0 for f in kept)
        for s in files:
            if s.kind == catalog.OPLOG and s.good:
                last = s.entry.last
                if last is not None and last < oldest:
                    drop.append(s)
    drop += [f for f in files if not f.good and now - f.mtime > orphan_age]
    return drop


def prune(spec, sec, *, target=None, dry_run=False, now=None, progress=None, spool=None):
    """Apply the retention to each target: manifest first, then data (as catalog.remove does)."""
    spool = spool or offsite.spool_of(spec)
    say = progress or (lambda line: None)
    now = time.time() if now is None else now
    result = {}
    for t in offsite_targets.targets_of(spec, target):
        keep_min = t.keep_min or spec.backup.keep_min
        days = t.retention_days or spec.backup.retention_days
        with rclone.Session(t, sec, offsite.spool_dirs(spool)["run"]) as s:
            # another cluster's files (same name, new replica set id) never count and are never deleted
            files = own_files(listing(spec, t, s), catalog.identity(spec.backup.dir, spec.cluster.name))
            drop = decide_remote(files, keep_min, days, now)
            for f in drop:
                why = "no good manifest" if not f.good else "past retention"
                say(f"{'would delete' if dry_run else 'deleted'} {t.name}: {f.name} ({why})")
                if dry_run:
                    continue
                path = offsite.remote_path(spec, t, f.kind, f.name)
                if f.manifest is not None:
                    s.deletefile(path + catalog.MANIFEST)
                s.deletefile(path)
            if t.type == "s3" and not dry_run:
                s.run("cleanup", rclone.root_of(t, spec.cluster.name))   # parts of interrupted multipart uploads
        result[t.name] = [f.name for f in drop]
    return result


@dataclass(frozen=True)
class Check:
    target: str
    name: str
    ok: bool
    detail: str

    def line(self):
        return f"{'ok    ' if self.ok else 'FAILED'} {self.target}: {self.name}: {self.detail}"


def _remote_sha256(session, path):
    """sha256 and size of the stored bytes, streamed through `rclone cat` (nothing written locally)."""
    p = session.popen("cat", path)
    sha, n = hashlib.sha256(), 0
    for block in iter(lambda: p.stdout.read(offsite.READ_BLOCK), b""):
        sha.update(block)
        n += len(block)
    err = p.stderr.read().decode(errors="replace")
    if p.wait() != 0:
        raise RemoteError(one_line(err, session.target.name))
    return sha.hexdigest(), n


def verify(spec, sec, *, target=None, names=None, download=False, key=None, spool=None):
    """Check remote files against their manifests: size, sha256 of the stored bytes, and
    with `download` every encrypted chunk (needs backup.key). Returns [Check]."""
    spool = spool or offsite.spool_of(spec)
    out = []
    for t in offsite_targets.targets_of(spec, target):
        with rclone.Session(t, sec, offsite.spool_dirs(spool)["run"]) as s:
            files = listing(spec, t, s)
            if names:
                files = [f for f in files if f.name in names]
                for missing in sorted(set(names) - {f.name for f in files}):
                    out.append(Check(t.name, missing, False, "not on the target"))
            for f in files:
                path = offsite.remote_path(spec, t, f.kind, f.name)
                if f.manifest is None:
                    out.append(Check(t.name, f.name, False, "no manifest (an interrupted upload; not a backup)"))
                    continue
                if not f.good:
                    out.append(Check(t.name, f.name, False,
                                     f"{f.size} bytes, the manifest says {f.manifest.get('bytes')}"))
                    continue
                try:
                    if download:
                        tmp = s.dir / f.name
                        s.run("copyto", path, str(tmp))
                        try:
                            for _ in replace(f.entry, path=str(tmp)).open(key):
                                pass
                        finally:
                            tmp.unlink(missing_ok=True)
                        out.append(Check(t.name, f.name, True, "checksum and size match, every chunk authenticates"))
                        continue
                    got, n = _remote_sha256(s, path)
                except archive.ArchiveError as e:
                    out.append(Check(t.name, f.name, False, str(e).split(": ", 1)[-1]))
                    continue
                if n != f.typed.bytes or got != f.typed.sha256:
                    out.append(Check(t.name, f.name, False, f"sha256 {got[:16]}… does not match the manifest's "
                                     f"{f.typed.sha256[:16]}…"))
                else:
                    out.append(Check(t.name, f.name, True, "checksum and size match"))
    return out


def own_files(files, ident):
    """The remote files of this cluster only. Pure.

    A target's folder is per cluster name, but a re-initiated cluster of the
    same name (a new replica set id) writes there too: with the id known, the
    other set's files are left out; unknown (a brand-new host), the id the
    remote manifests carry is taken when there is exactly one.
    """
    if ident.replset_id is None:
        ids = {f.typed.replset_id for f in files if f.good and f.typed.replset_id}
        if len(ids) > 1:
            raise InputError("--cluster-id", f"the off-site target holds backups of {len(ids)} clusters named "
                             f"{ident.cluster!r} (replica set ids {', '.join(sorted(ids))})",
                             "name the one to use with --cluster-id ID")
        ident = catalog.Identity(ident.cluster, ids.pop() if ids else None)
    return [f for f in files if not f.manifest or ident.owns(f.manifest.get("cluster"), f.manifest.get("replset_id"))]
