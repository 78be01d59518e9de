"""The backup folder: names, manifests, what counts as a good backup, the locks, the state file.

Layout under `[backup] dir` (root, 0700):

    full/CLUSTER-RSID-20261128T020000.123456Z.archive     mongodump --archive --gzip stream (maybe encrypted)
    full/CLUSTER-RSID-20261128T020000.123456Z.archive.manifest.json
    oplog/CLUSTER-RSID-20261128T020500.000042Z.oplog.gz   gzip'd oplog.bson slice (maybe encrypted)
    oplog/CLUSTER-RSID-20261128T020500.000042Z.oplog.gz.manifest.json
    */NAME.verified.json                              the last verification of NAME (verification.py)
    quarantine/NAME, NAME.manifest.json, NAME.quarantine.json   what failed verification, with the reason

Every file belongs to one cluster: its name starts with the cluster's name
and its replica set id (replSetGetConfig.settings.replicaSetId, which a
re-initiated set with the same name does not share), and its manifest
holds both. A shared folder (NFS, a bucket) may hold several clusters'
files; each cluster only ever lists, verifies, prunes, chains and plans
over its own, and reports the others as foreign without touching them.
Files written before the id existed (CLUSTER-STAMP, no "replset_id") count
as their named cluster's. Names are unique to the microsecond.

A file counts as a backup only when its manifest exists and the sizes
agree; the manifest is written after the data file was renamed into place,
so nothing half-written ever qualifies. Oplog timestamps are kept as one
int, (seconds << 32) | increment, which orders like MongoDB's Timestamp.

Nothing that may hold data is ever deleted for being odd: a data file
without a manifest, a cut-off file, a manifest naming another file go to
the quarantine folder with the reason, for `dbrs backup list` and `dbrs
status` to show. Only `.partial` files (never a backup) are removed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from .. import locks
from . import history, times
from .entry import Entry, Incomplete
from .manifest import Manifest
from ..errors import DbrsError, InputError
from ..fsutil import fsync_dir, write_file

FULL = "full"
OPLOG = "oplog"
SUFFIX = {FULL: ".archive", OPLOG: ".oplog.gz"}
MANIFEST = ".manifest.json"
RECORD = ".verified.json"
QUARANTINE = "quarantine"
WHY = ".quarantine.json"
NAME_SHOWN = 80


def file_name(cluster, kind, t, replset_id=None):
    return f"{Identity(cluster, replset_id).prefix}{times.stamp(t)}{SUFFIX[kind]}"


def free_name(folder, cluster, kind, t, replset_id=None):
    """A name nothing in `folder` has yet (a clock stepped back must not make a run fail on "exists")."""
    for n in range(1000):
        name = file_name(cluster, kind, t + n * 1e-6, replset_id)
        if not any(os.path.lexists(os.path.join(folder, name + x)) for x in ("", ".partial", MANIFEST)):
            return name
    raise DbrsError(f"{folder}: no free backup name near {times.iso(t)}; is the clock stuck?")


_STAMP = r"\d{8}T\d{6}(?:\.\d{6})?Z"


@dataclass(frozen=True)
class Identity:
    """Which cluster a file belongs to: the set's name and its replica set id (hex; None = not known)."""

    cluster: str
    replset_id: str = None

    @property
    def prefix(self):
        return f"{self.cluster}-{self.replset_id}-" if self.replset_id else f"{self.cluster}-"

    def owns(self, cluster, replset_id):
        return cluster == self.cluster and replset_id in (None, self.replset_id)

    def owns_manifest(self, m):
        return self.owns(m.cluster, m.replset_id)

    def owns_name(self, name):
        """For files without a readable manifest: by the name alone."""
        m = re.match(re.escape(self.cluster) + r"-(?:([0-9a-f]{24})-)?" + _STAMP, name)
        return bool(m) and m.group(1) in (None, self.replset_id)

    def label(self):
        return f"{self.cluster} (replica set id {self.replset_id or 'unknown'})"


def identity(backup_dir, cluster, replset_id=None, state_file=None):
    """This cluster's Identity: the live id when the caller asked the set, else the one this host recorded,
    else the only id the folder's manifests of `cluster` carry. Several and no record: an error naming them.
    """
    if replset_id:
        return Identity(cluster, replset_id)
    known = history.read_state(state_file).get("identity") or {}
    if known.get("cluster") == cluster and known.get("replset_id"):
        return Identity(cluster, known["replset_id"])
    ids = set()
    for kind in (FULL, OPLOG):
        for e in scan(backup_dir, kind)[0]:
            if e.manifest.cluster == cluster and e.manifest.replset_id:
                ids.add(e.manifest.replset_id)
    if len(ids) > 1:
        raise InputError("--cluster-id", f"{backup_dir} holds backups of {len(ids)} clusters named {cluster!r} "
                         f"(replica set ids {', '.join(sorted(ids))})",
                         "run `dbrs backup` on this cluster once to record its id, or pass --cluster-id ID")
    return Identity(cluster, ids.pop() if ids else None)


def remember_identity(ident, state_file=None):
    """Record the id a run read from the set, so offline commands (list, verify, prune) know it."""
    if not ident.replset_id:
        return
    if history.read_state(state_file).get("identity") == {"cluster": ident.cluster, "replset_id": ident.replset_id}:
        return
    history.update_state(lambda s: s.__setitem__("identity", {"cluster": ident.cluster, "replset_id": ident.replset_id}),
                 state_file)


def kind_dir(backup_dir, kind):
    return Path(backup_dir) / kind


def shown(name):
    """A name as error messages show it: never more than NAME_SHOWN characters of whatever was typed."""
    name = str(name)
    return name if len(name) <= NAME_SHOWN else name[:NAME_SHOWN] + f"… ({len(name)} characters)"


@contextlib.contextmanager
def folder_errors(backup_dir):
    """The backup folder's OSErrors as one line: a file where the folder should be is bad input (exit 2)."""
    try:
        yield
    except (NotADirectoryError, FileExistsError) as e:
        if os.path.exists(backup_dir) and not os.path.isdir(backup_dir):
            raise InputError("backup.dir", f"{backup_dir} is a file, not a folder",
                             "point [backup] dir at a folder, or move the file away") from None
        raise DbrsError(f"{e.filename or backup_dir}: {e.strerror}") from None
    except OSError as e:
        if e.errno == errno.EROFS:
            raise DbrsError(f"{backup_dir} is on a read-only filesystem ({e.filename}); remount it read-write "
                            "or point [backup] dir elsewhere") from None
        if e.errno in (errno.EACCES, errno.EPERM):
            raise DbrsError(f"{e.filename or backup_dir}: permission denied (run as root)") from None
        raise


def _listdir(d):
    try:
        return sorted(os.listdir(d))
    except FileNotFoundError:
        return []


def _order(e):
    if e.kind == FULL:
        return (e.oplog_start or 0, e.manifest.started or "", e.name)
    return (e.last or 0, e.name)


def scan(backup_dir, kind, ident=None):
    """(good entries oldest first, incomplete things) of one kind; with `ident`, only that cluster's.

    Incomplete: a `.partial`, data without a manifest, a manifest without
    its data, a size that disagrees, a manifest naming another file, and
    any file dbrs did not write.

    Fulls are ordered by oplog start, slices by their last entry: names of
    different clusters (or from before the id was in them) do not sort by time.
    """
    good, bad, _ = _scan(backup_dir, kind, ident)
    return good, bad


def foreign(backup_dir, ident):
    """Files in the folder that belong to another cluster: [(Identity, kind, name)]. Read, never touched."""
    out = []
    for kind in (FULL, OPLOG):
        out += _scan(backup_dir, kind, ident)[2]
    return out


def foreign_lines(backup_dir, ident):
    """One line per other cluster whose files share the folder."""
    groups = {}
    for owner, _kind, _name in foreign(backup_dir, ident):
        groups[owner] = groups.get(owner, 0) + 1
    return [f"foreign: {n} file(s) of cluster {o.label()} in {backup_dir}: not this cluster's, left alone"
            for o, n in sorted(groups.items(), key=lambda kv: kv[0].label())]


def _owner_of_name(name):
    m = re.match(r"(.+?)-(?:([0-9a-f]{24})-)?" + _STAMP, name)
    return Identity(m.group(1), m.group(2)) if m else Identity("?", None)


def _scan(backup_dir, kind, ident):
    d = kind_dir(backup_dir, kind)
    good, bad = [], []
    others = []
    with folder_errors(backup_dir):
        if os.path.exists(backup_dir) and not os.path.isdir(backup_dir):
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(backup_dir))
        names = _listdir(d)
    present = set(names)
    for n in names:
        p = str(d / n)
        if n.startswith("."):
            continue      # the atomic writer's temporaries
        if n.endswith(MANIFEST):
            data = n[:-len(MANIFEST)]
            if ident is not None and not ident.owns_name(data):
                m = _peek_manifest(p)
                if m is None or not ident.owns_manifest(m):
                    continue      # another cluster's: reported (if at all) with its data file
            if data not in present and data.endswith(SUFFIX[kind]):
                bad.append(Incomplete(kind, data, p, "data file is missing (only its manifest is left)"))
            elif not data.endswith(SUFFIX[kind]):
                bad.append(Incomplete(kind, n, p, "not a dbrs file"))
            continue
        if n.endswith(RECORD) and n[:-len(RECORD)].endswith(SUFFIX[kind]):
            continue
        if ident is not None and not ident.owns_name(n) and (n.endswith(SUFFIX[kind]) or n.endswith(".partial")):
            m = _peek_manifest(p + MANIFEST) if n + MANIFEST in present else None
            if m is None or not ident.owns_manifest(m):
                owner = Identity(m.cluster, m.replset_id) if m and m.cluster else _owner_of_name(n)
                if n.endswith(SUFFIX[kind]) or n.endswith(".partial"):
                    others.append((owner, kind, n))
                continue
        if n.endswith(".partial"):
            bad.append(Incomplete(kind, n, p, "unfinished (.partial): a run was interrupted"))
            continue
        if not n.endswith(SUFFIX[kind]):
            bad.append(Incomplete(kind, n, p, "not a dbrs file"))
            continue
        if n + MANIFEST not in present:
            bad.append(Incomplete(kind, n, p, "no manifest: the run did not finish, or the manifest was lost"))
            continue
        try:
            with open(p + MANIFEST, encoding="utf-8") as f:
                raw = json.load(f)
            size = os.stat(p).st_size
            m = Manifest.from_dict(raw) if isinstance(raw, dict) else None
        except (OSError, ValueError) as e:
            bad.append(Incomplete(kind, n, p, f"unreadable manifest: {e}"))
            continue
        if m is not None and ident is not None and not ident.owns_manifest(m):
            if _owner_of_name(n) == ident and ident.replset_id:
                bad.append(Incomplete(kind, n, p, "the manifest names another cluster than the file name does"))
            else:
                others.append((Identity(m.cluster or "?", m.replset_id), kind, n))
        elif m is None or m.name != n or m.kind != kind:
            bad.append(Incomplete(kind, n, p, "manifest names another file"))
        elif size != m.bytes:
            bad.append(Incomplete(kind, n, p, f"{size} bytes, manifest says {m.bytes}"))
        else:
            good.append(Entry(kind, n, p, m))
    good.sort(key=_order)
    return good, bad, others


def _peek_manifest(path):
    try:
        return Manifest.load(path)
    except (OSError, ValueError):
        return None


def find(backup_dir, name, ident=None):
    """The good full backup or slice called NAME, as `dbrs backup list` shows it. Bad input otherwise (exit 2)."""
    name = str(name)
    if "/" in name or "\0" in name or name in (".", ".."):
        raise InputError("NAME", f"{shown(name)!r} is a path",
                         "give the backup's file name as `dbrs backup list` shows it")
    for kind in (FULL, OPLOG):
        if name.endswith(SUFFIX[kind]):
            good, bad = scan(backup_dir, kind, ident)
            for e in good:
                if e.name == name:
                    return e
            for b in bad:
                if b.name == name:
                    raise InputError("NAME", f"{name} is not a usable backup ({b.reason})",
                                     "see `dbrs backup list`; pick another backup")
            if any(q["name"] == name for q in quarantined(backup_dir)):
                raise InputError("NAME", f"{name} is in quarantine (it failed verification)",
                                 "see `dbrs backup list`; pick another backup")
    raise InputError("NAME", f"{shown(name)!r} names no backup in {backup_dir}",
                     "see `dbrs backup list` for the names")


def write_manifest(path, manifest):
    """The manifest goes last: once it is there, the data file beside it is a backup."""
    write_file(None, str(path) + MANIFEST, manifest.dumps().encode(), 0o600, chown=False)


def remove(entry_path):
    """Delete a backup: the manifest first, so a crash in between leaves data nobody takes for good."""
    for p in (str(entry_path) + MANIFEST, str(entry_path), str(entry_path) + RECORD):
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


def ensure_dirs(backup_dir):
    with folder_errors(backup_dir):
        for d in (Path(backup_dir), kind_dir(backup_dir, FULL), kind_dir(backup_dir, OPLOG)):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)


@contextlib.contextmanager
def lock(backup_dir, kind, wait=0):
    """An flock per kind: full backups never overlap, a slice may run during a full backup.

    `wait` seconds are for prune, which may meet a slice that ends in a moment.
    """
    ensure_dirs(backup_dir)
    with folder_errors(backup_dir), locks.held(Path(backup_dir) / f".{kind}.lock", f"dbrs {kind} run", wait):
        yield


def busy(backup_dir, kind):
    """Whether a run of `kind` holds its lock right now (its `.partial` is work in progress, not a leftover)."""
    try:
        fd = os.open(Path(backup_dir) / f".{kind}.lock", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def clear_partials(backup_dir, kind, ident=None):
    """Remove `.partial` leftovers of killed runs, quarantine data without a manifest; only under the kind's lock.

    With `ident`, only this cluster's: another cluster's `.partial` in a shared folder may be its run in progress.
    """
    removed = []
    for b in scan(backup_dir, kind, ident)[1]:
        if b.name.endswith(".partial"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(b.path)
            removed.append(b.name)
        elif b.reason.startswith("no manifest"):
            quarantine(backup_dir, b.path, b.reason)
    return removed


def quarantine(backup_dir, path, reason, now=None):
    """Move a backup (data, manifest, record, whichever exist) out of the catalog, with the reason beside it.

    Never deletes: a file that failed once may be all that is left. Returns the quarantined name,
    or None when nothing was left to move (another run got there first).
    """
    path = str(path)
    name = os.path.basename(path[:-len(MANIFEST)] if path.endswith(MANIFEST) and not os.path.exists(path[:-len(MANIFEST)])
                            else path)
    src_dir = os.path.dirname(path)
    qdir = Path(backup_dir) / QUARANTINE
    with folder_errors(backup_dir):
        qdir.mkdir(mode=0o700, exist_ok=True)
        target = name
        if any(os.path.lexists(qdir / (target + s)) for s in ("", MANIFEST, WHY)):
            target = f"{name}.{int(time.time())}"
        why = {"name": name, "kind": FULL if name.endswith(SUFFIX[FULL]) else OPLOG, "reason": reason,
               "time": times.iso(time.time() if now is None else now), "stored_as": target}
        write_manifest_like(qdir / (target + WHY), why)
        moved = 0
        for suffix in ("", MANIFEST, RECORD):
            with contextlib.suppress(FileNotFoundError):     # another run moved or pruned it meanwhile
                os.rename(os.path.join(src_dir, name + suffix), qdir / (target + suffix))
                moved += 1
        if not moved:
            os.unlink(qdir / (target + WHY))
            return None
        fsync_dir(str(qdir))
        fsync_dir(src_dir)
    return name


def quarantined(backup_dir):
    """What sits in the quarantine folder: [{name, kind, reason, time, stored_as}], oldest first."""
    qdir = Path(backup_dir) / QUARANTINE
    out = []
    with folder_errors(backup_dir):
        names = _listdir(qdir) if os.path.isdir(backup_dir) else []
    for n in names:
        if not n.endswith(WHY):
            continue
        try:
            with open(qdir / n, encoding="utf-8") as f:
                out.append(json.load(f))
        except (OSError, ValueError):
            out.append({"name": n[:-len(WHY)], "kind": "?", "reason": "reason file unreadable", "time": "",
                        "stored_as": n[:-len(WHY)]})
    return sorted(out, key=lambda q: (q.get("time", ""), q["name"]))


def write_manifest_like(path, data):
    write_file(None, str(path), (json.dumps(data, indent=2, sort_keys=True) + "\n").encode(), 0o600, chown=False)
