"""Off-site copies: the queue of files to copy, pushing them, and the remote side (list, verify, prune, fetch).

A backup next to the database is not a backup. After a full backup or an
oplog slice is complete (manifest written), `enqueue` drops a small entry
into a spool folder (no network, never fails the backup); `push` (the
dbrs-offsite timer) copies each queued file to every `[[offsite]]` target
with rclone, the data first and the manifest last, so an interrupted upload
is never taken for a backup. The files are copied as stored: encrypted when
`[backup] encrypt` is on, so the remote never sees plaintext or the key.
An entry leaves the queue only when every target has it; an outage just
makes the queue longer, and the next push catches up in order.

Remote layout, per target (the same as the local backup folder):

    ROOT/CLUSTER/full/NAME.archive  + NAME.archive.manifest.json
    ROOT/CLUSTER/oplog/NAME.oplog.gz + NAME.oplog.gz.manifest.json

Deciding (which entries a target still needs, which remote backups
retention drops) is pure and tested on data; the rest is thin rclone calls.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from .. import locks, paths
from . import catalog, times
from .manifest import Manifest
from ..errors import DbrsError, InputError

ORPHAN_AGE = 86400          # a data object without manifest this old is a dead upload, not one in progress
_READ = 1 << 20


def spool_of(spec):
    """The queue lives next to the backups it lists: `[backup] dir`/.offsite (the units may write there)."""
    return Path(spec.backup.dir) / ".offsite"


def spool_dirs(spool):
    base = Path(spool)
    return {"base": base, "queue": base / "queue", "run": base / "run", "state": base / "state.json"}


# ------------------------------------------------------------------ seam 1

def enqueue(spec, data_path, manifest_path, *, spool=None, now=None):
    """Queue a finished backup or slice for every off-site target. Cheap; never raises.

    Call it after the manifest is written. Returns True when queued (False
    with no targets, or when the spool cannot be written: then one warning
    line goes to stderr and the next `dbrs offsite push --catch-up` finds the file).
    """
    spool = spool or spool_of(spec)
    if not spec.offsite:
        return False
    try:
        from ..fsutil import write_file

        now = time.time() if now is None else now
        name = os.path.basename(str(data_path))
        if any(q.name == name for q in read_queue(spool)):
            return True     # queued already (the backup run and a catch-up both hand it over)
        kind = catalog.FULL if name.endswith(catalog.SUFFIX[catalog.FULL]) else catalog.OPLOG
        entry = {"name": name, "kind": kind, "data": str(data_path), "manifest": str(manifest_path),
                 "queued": times.iso(now), "queued_t": now, "done": []}
        d = spool_dirs(spool)
        d["queue"].mkdir(mode=0o700, parents=True, exist_ok=True)
        write_file(None, str(d["queue"] / f"{times.stamp(now)}-{name}.json"),
                   (json.dumps(entry, indent=2, sort_keys=True) + "\n").encode(), 0o600, chown=False)
        return True
    except (OSError, ValueError, TypeError) as e:   # the seam must never fail the backup that calls it
        print(f"warning: {os.path.basename(str(data_path))} not queued for off-site copy ({e}); "
              "run `dbrs offsite push --catch-up`", file=sys.stderr)
        return False


# ------------------------------------------------------------------- queue

@dataclass
class Queued:
    file: str
    entry: dict

    @property
    def name(self):
        return self.entry["name"]

    @property
    def done(self):
        return set(self.entry.get("done", []))


def read_queue(spool):
    """Queue entries, oldest first (file names start with the time)."""
    q = spool_dirs(spool)["queue"]
    try:
        names = sorted(n for n in os.listdir(q) if n.endswith(".json"))
    except FileNotFoundError:
        return []
    out = []
    for n in names:
        try:
            with open(q / n, encoding="utf-8") as f:
                out.append(Queued(str(q / n), json.load(f)))
        except (OSError, ValueError):
            continue    # a half-written entry cannot exist (atomic writer); a foreign file is not ours
    return out


def pending(queue, targets):
    """{target name: [entries it still needs, oldest first]}. Pure."""
    return {t: [q for q in queue if t not in q.done] for t in targets}


def queued_names(spec, *, spool=None):
    """Names of backups and slices some target still lacks: local retention should keep these
    (deleting one loses its only copy-to-be; push reports it as LOST)."""
    spool = spool or spool_of(spec)
    targets = {t.name for t in spec.offsite}
    return {q.name for q in read_queue(spool) if not targets <= q.done}


def catch_up(spec, *, spool=None, now=None):
    """Queue every good local backup and slice that no entry holds (after a lost spool or a new target).

    rclone skips a file the target already has with the same size and
    modification time, so re-queueing what is there costs one listing.
    """
    spool = spool or spool_of(spec)
    queued = {q.name for q in read_queue(spool)}
    added = []
    for kind in (catalog.FULL, catalog.OPLOG):
        for e in catalog.scan(spec.backup.dir, kind)[0]:
            if e.name not in queued and enqueue(spec, e.path, e.path + catalog.MANIFEST, spool=spool, now=now):
                added.append(e.name)
    return added


def _save(q):
    from ..fsutil import write_file

    write_file(None, q.file, (json.dumps(q.entry, indent=2, sort_keys=True) + "\n").encode(), 0o600, chown=False)


# ------------------------------------------------------------------- state

def read_state(spool):
    try:
        with open(spool_dirs(spool)["state"], encoding="utf-8") as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return {}


def _record(spool, target, **info):
    from ..fsutil import write_file

    state = read_state(spool)
    state.setdefault(target, {}).update(info)
    path = spool_dirs(spool)["state"]
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_file(None, str(path), (json.dumps(state, indent=2, sort_keys=True) + "\n").encode(), 0o600, chown=False)


# -------------------------------------------------------------------- push

@dataclass
class PushReport:
    copied: list = field(default_factory=list)      # (target, name, bytes, seconds)
    failed: dict = field(default_factory=dict)      # target -> one line
    lost: list = field(default_factory=list)        # names whose local file vanished before the copy
    waiting: dict = field(default_factory=dict)     # target -> entries still queued
    busy: str = ""                                  # another push held the lock: nothing done

    @property
    def ok(self):
        return not self.failed and not self.lost


def _check_local(entry):
    """The manifest of a queued file, if the file is still the backup it names (else None)."""
    try:
        with open(entry["manifest"], encoding="utf-8") as f:
            m = json.load(f)
        size = os.stat(entry["data"]).st_size
    except (OSError, ValueError):
        return None
    if m.get("name") != entry["name"] or m.get("bytes") != size:
        return None
    return m


def remote_path(spec, target, kind, name):
    from .rclone import root_of

    return f"{root_of(target, spec.cluster.name)}/{kind}/{name}"


def push(spec, sec, *, spool=None, targets=None, progress=None, now=time.time):
    """Copy every queued file to every target that lacks it: data, then manifest. One push per host at a time.

    When another push holds the lock (a manual run during the timer's), this
    one returns at once with `busy` set: the other run copies the same queue.
    """
    spool = spool or spool_of(spec)
    d = spool_dirs(spool)
    d["base"].mkdir(mode=0o700, parents=True, exist_ok=True)
    entered = False
    try:
        with locks.held(d["base"] / ".push.lock", "dbrs offsite push", wait=5):
            entered = True
            return _push_locked(spec, sec, spool, targets, progress or (lambda line: None), now)
    except DbrsError as e:
        if entered:
            raise
        return PushReport(busy=str(e))


def _push_locked(spec, sec, spool, targets, say, now):
    from . import rclone

    d = spool_dirs(spool)
    chosen = [t for t in spec.offsite if targets is None or t.name in targets]
    report = PushReport()
    rclone.sweep(d["run"])
    queue = read_queue(spool)
    for q in queue:
        if _check_local(q.entry) is None:
            report.lost.append(q.name)
            say(f"LOST   {q.name}: the local file or its manifest is gone or changed before it was copied off-site")
            os.unlink(q.file)
    queue = [q for q in queue if q.name not in report.lost]
    todo = pending(queue, [t.name for t in chosen])
    for t in chosen:
        if not todo[t.name]:
            continue
        try:
            with rclone.Session(t, sec, d["run"]) as s:
                for q in todo[t.name]:
                    start = time.monotonic()
                    dst = remote_path(spec, t, q.entry["kind"], q.name)
                    s.copyto(q.entry["data"], dst)
                    s.copyto(q.entry["manifest"], dst + catalog.MANIFEST)
                    took = time.monotonic() - start
                    size = os.stat(q.entry["data"]).st_size
                    q.entry.setdefault("done", []).append(t.name)
                    if set(q.entry["done"]) >= {x.name for x in spec.offsite}:
                        os.unlink(q.file)
                    else:
                        _save(q)
                    report.copied.append((t.name, q.name, size, took))
                    _record(spool, t.name, last_ok=times.iso(now()), last_ok_t=now(), last_name=q.name)
                    say(f"copied {q.name} to {t.name}: {human(size)} in {took:.1f} s")
        except (DbrsError, OSError) as e:
            if isinstance(e, OSError):
                e = DbrsError(f"off-site {t.name}: {e.strerror or e} ({e.filename or ''})")
            report.failed[t.name] = str(e)
            _record(spool, t.name, last_error=str(e), last_error_t=now(), last_error_at=times.iso(now()))
            say(f"FAILED {e}")
    left = read_queue(spool)
    report.waiting = {t.name: len([q for q in left if t.name not in q.done]) for t in chosen}
    return report


# ------------------------------------------------------------------ remote

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
        m = self.manifest
        return bool(m) and m.get("name") == self.name and m.get("bytes") == self.size

    @property
    def entry(self):
        """As a catalog.Entry, so restore's planners work on remote backups too."""
        return catalog.Entry(self.kind, self.name, self.name, Manifest.from_dict(self.manifest))


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

    from .rclone import root_of

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


def _target(spec, name):
    if not spec.offsite:
        raise InputError("offsite", "no [[offsite]] target in the spec", "add one (see README: Off-site copies)")
    if name is None:
        return spec.offsite[0]
    for t in spec.offsite:
        if t.name == name:
            return t
    raise InputError("--target", f"no off-site target named {name!r}",
                     "known: " + ", ".join(t.name for t in spec.offsite))


def targets_of(spec, name=None):
    first = _target(spec, name)
    return [first] if name else list(spec.offsite)


# ---------------------------------------------------------------- retention

def decide_remote(files, keep_min, retention_days, now, orphan_age=ORPHAN_AGE):
    """Which remote files to delete. Pure.

    Full backups older than `retention_days` go, but the newest `keep_min`
    good ones always stay, and a file without a good manifest never counts
    toward them. Slices go when they end before the oplog start of the
    oldest full backup kept. Data without a good manifest goes once it is
    `orphan_age` old (a dead upload; a younger one may be in progress).
    """
    fulls = sorted((f for f in files if f.kind == catalog.FULL and f.good),
                   key=lambda f: times.parse_iso(f.manifest["finished"]))
    cutoff = now - retention_days * 86400
    keep = set(f.name for f in fulls[-keep_min:]) if keep_min else set()
    keep |= {f.name for f in fulls if times.parse_iso(f.manifest["finished"]) >= cutoff}
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
    spool = spool or spool_of(spec)
    from . import rclone

    say = progress or (lambda line: None)
    now = time.time() if now is None else now
    result = {}
    for t in targets_of(spec, target):
        keep_min = t.keep_min or spec.backup.keep_min
        days = t.retention_days or spec.backup.retention_days
        with rclone.Session(t, sec, spool_dirs(spool)["run"]) as s:
            # another cluster's files (same name, new replica set id) never count and are never deleted
            files = own_files(listing(spec, t, s), catalog.identity(spec.backup.dir, spec.cluster.name))
            drop = decide_remote(files, keep_min, days, now)
            for f in drop:
                why = "no good manifest" if not f.good else "past retention"
                say(f"{'would delete' if dry_run else 'deleted'} {t.name}: {f.name} ({why})")
                if dry_run:
                    continue
                path = remote_path(spec, t, f.kind, f.name)
                if f.manifest is not None:
                    s.deletefile(path + catalog.MANIFEST)
                s.deletefile(path)
            if t.type == "s3" and not dry_run:
                s.run("cleanup", rclone.root_of(t, spec.cluster.name))   # parts of interrupted multipart uploads
        result[t.name] = [f.name for f in drop]
    return result


# ------------------------------------------------------------------ verify

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
    from .rclone import RemoteError, one_line

    p = session.popen("cat", path)
    sha, n = hashlib.sha256(), 0
    for block in iter(lambda: p.stdout.read(_READ), b""):
        sha.update(block)
        n += len(block)
    err = p.stderr.read().decode(errors="replace")
    if p.wait() != 0:
        raise RemoteError(one_line(err, session.target.name))
    return sha.hexdigest(), n


def verify(spec, sec, *, target=None, names=None, download=False, key=None, spool=None):
    """Check remote files against their manifests: size, sha256 of the stored bytes, and
    with `download` every encrypted chunk (needs backup.key). Returns [Check]."""
    spool = spool or spool_of(spec)
    from . import archive, rclone

    out = []
    for t in targets_of(spec, target):
        with rclone.Session(t, sec, spool_dirs(spool)["run"]) as s:
            files = listing(spec, t, s)
            if names:
                files = [f for f in files if f.name in names]
                for missing in sorted(set(names) - {f.name for f in files}):
                    out.append(Check(t.name, missing, False, "not on the target"))
            for f in files:
                path = remote_path(spec, t, f.kind, f.name)
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
                if n != f.manifest["bytes"] or got != f.manifest["sha256"]:
                    out.append(Check(t.name, f.name, False, f"sha256 {got[:16]}… does not match the manifest's "
                                     f"{f.manifest['sha256'][:16]}…"))
                else:
                    out.append(Check(t.name, f.name, True, "checksum and size match"))
    return out


# ------------------------------------------------------------------ seam 2

def _local_intact(spec, name):
    """The local good backup NAME if its stored bytes still match its manifest, else None."""
    try:
        e = catalog.find(spec.backup.dir, name)
        got, n = _file_sha256(e.path)
    except (DbrsError, OSError):
        return None
    return e if (n, got) == (e.bytes, e.manifest.sha256) else None


def _file_sha256(path):
    sha, n = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_READ), b""):
            sha.update(block)
            n += len(block)
    return sha.hexdigest(), n


def own_files(files, ident):
    """The remote files of this cluster only. Pure.

    A target's folder is per cluster name, but a re-initiated cluster of the
    same name (a new replica set id) writes there too: with the id known, the
    other set's files are left out; unknown (a brand-new host), the id the
    remote manifests carry is taken when there is exactly one.
    """
    if ident.replset_id is None:
        ids = {f.manifest.get("replset_id") for f in files if f.good and f.manifest.get("replset_id")}
        if len(ids) > 1:
            raise InputError("--cluster-id", f"the off-site target holds backups of {len(ids)} clusters named "
                             f"{ident.cluster!r} (replica set ids {', '.join(sorted(ids))})",
                             "name the one to use with --cluster-id ID")
        ident = catalog.Identity(ident.cluster, ids.pop() if ids else None)
    return [f for f in files if not f.manifest or ident.owns(f.manifest.get("cluster"), f.manifest.get("replset_id"))]


def plan_fetch(spec, files, names=None, to=None, ident=None):
    """The remote files a restore needs: NAMES, or the full backup and slices for `--to` (TIME, INC). Pure."""
    from . import pitr

    good = [f for f in own_files(files, ident or catalog.Identity(spec.cluster.name)) if f.good]
    if names:
        by = {f.name: f for f in good}
        missing = [n for n in names if n not in by]
        if missing:
            raise DbrsError(f"{', '.join(missing)}: not on the off-site target (see `dbrs offsite list`)")
        return [by[n] for n in names]
    t, inc = to if isinstance(to, tuple) else (to, None)
    fulls = sorted((f.entry for f in good if f.kind == catalog.FULL), key=lambda e: e.oplog_start or 0)
    slices = sorted((f.entry for f in good if f.kind == catalog.OPLOG), key=lambda e: e.last or 0)
    plan = pitr.plan_pitr(fulls, slices, t, inc)
    wanted = [plan.base.name] + [s.name for s in plan.slices]
    by = {f.name: f for f in good}
    return [by[n] for n in wanted]


def fetch(spec, sec, into_dir, *, names=None, to=None, target=None, prefer_local=True, spool=None, progress=None):
    """Put the files a restore needs into `into_dir` (the backup-folder layout), verified.

    A file whose local copy is intact is linked or copied from the local
    backup folder; any other is downloaded and its sha256 and size checked
    against its manifest before it gets its final name. Returns
    [(name, source)] where source is "local" or the target's name; point
    the restore at `into_dir` as its backup folder.
    """
    spool = spool or spool_of(spec)
    from . import rclone

    say = progress or (lambda line: None)
    t = _target(spec, target)
    try:
        catalog.ensure_dirs(into_dir)
        _sweep_fetching(into_dir)
        with rclone.Session(t, sec, spool_dirs(spool)["run"]) as s:
            return _fetch(spec, t, s, into_dir, names, to, prefer_local, say)
    except OSError as e:
        raise DbrsError(f"fetch into {into_dir} failed: {e.strerror or e} ({getattr(e, 'filename', '') or ''}); "
                        "free space there or pass --into DIR") from None


def restore_spec(spec, into_dir):
    """The spec with `into_dir` as its backup folder: what `dbrs restore --from-offsite` hands the restore code."""
    from dataclasses import replace

    return replace(spec, backup=replace(spec.backup, dir=str(into_dir)))


FETCHING = ".fetching"


def _sweep_fetching(into_dir):
    """Downloads a killed fetch left (hidden `.NAME.fetching`: no backup scan or clean-up takes them)."""
    for kind in catalog.SUFFIX:
        d = catalog.kind_dir(into_dir, kind)
        for n in os.listdir(d):
            if n.startswith(".") and n.endswith(FETCHING):
                os.unlink(d / n)


def _fetch(spec, t, s, into_dir, names, to, prefer_local, say):
    """fetch() with the rclone session open."""
    from ..fsutil import write_file

    sources = []
    files = listing(spec, t, s)
    for f in plan_fetch(spec, files, names, to, catalog.identity(spec.backup.dir, spec.cluster.name)):
        dst = catalog.kind_dir(into_dir, f.kind) / f.name
        local = _local_intact(spec, f.name) if prefer_local else None
        if local is not None:
            _link_or_copy(local.path, dst)
            sources.append((f.name, "local"))
            say(f"local    {f.name} (intact in {spec.backup.dir})")
        else:
            part = dst.with_name(f".{f.name}{FETCHING}")
            s.run("copyto", remote_path(spec, t, f.kind, f.name), str(part))
            got, n = _file_sha256(part)
            if n != f.manifest["bytes"] or got != f.manifest["sha256"]:
                part.unlink()
                raise DbrsError(f"{f.name} on off-site {t.name}: sha256/size do not match its manifest; "
                                "this copy cannot be trusted (try another target or `dbrs offsite verify`)")
            os.chmod(part, 0o600)
            os.replace(part, dst)
            sources.append((f.name, t.name))
            say(f"off-site {f.name} (from {t.name}, {human(n)}, sha256 matches)")
        write_file(None, str(dst) + catalog.MANIFEST,
                   (json.dumps(f.manifest, indent=2, sort_keys=True) + "\n").encode(), 0o600, chown=False)
    return sources


def _link_or_copy(src, dst):
    if os.path.abspath(src) == os.path.abspath(dst):
        return
    if os.path.exists(dst):
        os.unlink(dst)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


# ------------------------------------------------------------------ status

def status_summary(spec, *, spool=None, now=None):
    """What `dbrs status` shows about off-site copies. Reads the spool only (no network)."""
    spool = spool or spool_of(spec)
    now = time.time() if now is None else now
    queue = read_queue(spool)
    state = read_state(spool)
    out = {"targets": []}
    for t in spec.offsite:
        waiting = [q for q in queue if t.name not in q.done]
        st = state.get(t.name, {})
        out["targets"].append({
            "name": t.name,
            "type": t.type,
            "waiting": len(waiting),
            "oldest_waiting_s": round(now - waiting[0].entry["queued_t"]) if waiting else None,
            "max_lag_s": t.max_lag_s,
            "last_ok": st.get("last_ok"),
            "last_ok_age_s": None if "last_ok_t" not in st else round(now - st["last_ok_t"]),
            "last_error": st.get("last_error") if st.get("last_error_t", 0) > st.get("last_ok_t", 0) else None,
            "last_error_at": st.get("last_error_at"),
        })
    return out


def problems(summary):
    """Lines for `dbrs status` WARN / `--check`: a failing target, a copy waiting past max_lag."""
    out = []
    for t in summary.get("targets", []):
        if t["last_error"]:
            out.append(f"off-site copy to {t['name']} failed at {t['last_error_at']}: {t['last_error']} "
                       f"({t['waiting']} file(s) waiting; fix the target, then `dbrs offsite push`)")
        if t["oldest_waiting_s"] is not None and t["oldest_waiting_s"] > t["max_lag_s"]:
            out.append(f"off-site {t['name']} is {_ago(t['oldest_waiting_s'])} behind (max_lag "
                       f"{_ago(t['max_lag_s'])}): {t['waiting']} file(s) waiting; run `dbrs offsite push`")
    return out


def render_summary(summary):
    lines = []
    for t in summary.get("targets", []):
        last = f"last copy {_ago(t['last_ok_age_s'])} ago" if t["last_ok_age_s"] is not None else "no copy yet"
        lines.append(f"off-site {t['name']} ({t['type']}): {last}; {t['waiting']} file(s) waiting")
    return lines + [f"WARN {p}" for p in problems(summary)]


def human(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _ago(s):
    s = int(s)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60} min"
    if s < 172800:
        return f"{s / 3600:.1f}h"
    return f"{s / 86400:.1f}d"


# ------------------------------------------------------------- credentials

def read_credentials(target, key_file=None, s3_keys_file=None):
    """A target's credentials from the files the operator names (never argv). InputError names the flag."""
    def read(flag, path):
        try:
            with open(path, encoding="utf-8") as f:
                return f.read()
        except OSError as e:
            raise InputError(flag, f"{path}: {e.strerror}", "check the path") from None
        except UnicodeDecodeError:
            raise InputError(flag, f"{path} is not text", "pass the key file itself") from None

    if target.type == "sftp":
        if not key_file:
            raise InputError("--key-file", f"is required for the sftp target {target.name}",
                             "pass the private key file (ssh-keygen -t ed25519 -N '' -f vault.key)")
        pem = read("--key-file", key_file).strip()
        if not pem.startswith("-----BEGIN ") or "PRIVATE KEY-----" not in pem.splitlines()[0]:
            raise InputError("--key-file", f"{key_file} is not a private key", "pass the file without .pub")
        if "ENCRYPTED" in pem or "Proc-Type: 4,ENCRYPTED" in pem:
            raise InputError("--key-file", f"{key_file} is protected by a passphrase",
                             "timers cannot type it: use a key without one, kept in secrets.toml (root 0600)")
        return {"key_pem": pem + "\n"}
    if target.type == "s3":
        if not s3_keys_file:
            raise InputError("--s3-keys-file", f"is required for the s3 target {target.name}",
                             "pass a file with the access key id on line 1 and the secret on line 2")
        lines = [ln.strip() for ln in read("--s3-keys-file", s3_keys_file).splitlines() if ln.strip()]
        if len(lines) != 2:
            raise InputError("--s3-keys-file", f"{s3_keys_file} has {len(lines)} non-empty lines",
                             "write the access key id on line 1 and the secret access key on line 2")
        return {"access_key_id": lines[0], "secret_access_key": lines[1]}
    raise InputError("TARGET", f"{target.name} is a path target", "a mounted folder needs no credentials")


def store_credentials(spec_path, target_name, *, key_file=None, s3_keys_file=None, passphrase_file=None):
    """Put a target's credentials into secrets.toml next to the spec and, given the passphrase, into the bundle.

    The bundle is re-sealed only after the passphrase opened the old one, so a
    typo cannot replace it with a bundle nobody can open. Returns paths written.
    """
    from dataclasses import replace

    from .. import secrets, spec as specmod
    from ..fsutil import write_file

    spec = specmod.load(spec_path)
    target = _target(spec, target_name)
    creds = read_credentials(target, key_file, s3_keys_file)
    sib = paths.siblings(spec_path)
    try:
        raw = Path(sib["secrets"]).read_bytes()
        key = Path(sib["backup_key"]).read_bytes()
    except FileNotFoundError as e:
        raise InputError(e.filename, "is missing next to the spec", "run `dbrs init` or `dbrs-install --bundle`") from None
    except PermissionError as e:
        raise InputError(e.filename, "cannot be read", "run as root (sudo)") from None
    sec = secrets.parse_secrets_toml(raw, b"", key, str(sib["secrets"]))
    sec = replace(sec, offsite={**sec.offsite, target.name: creds})
    written = []
    bundle = None
    if passphrase_file:
        passphrase = secrets.read_passphrase(passphrase_file)
        try:
            old = Path(sib["bundle"]).read_bytes()
        except OSError as e:
            raise InputError("--passphrase-file", f"{sib['bundle']}: {e.strerror}",
                             "run it on the host where `dbrs init` wrote the bundle") from None
        opened = secrets.open_bundle(old, passphrase)
        sec = replace(sec, keyfile=opened.secrets.keyfile)
        bundle = secrets.seal_bundle(Path(spec_path).read_bytes(), sec, passphrase)
    write_file(None, str(sib["secrets"]), secrets.secrets_toml(sec), 0o600, chown=False)
    written.append(str(sib["secrets"]))
    if bundle is not None:
        write_file(None, str(sib["bundle"]), bundle, 0o600, chown=False)
        written.append(str(sib["bundle"]))
    return written
