"""The backup folder: names, manifests, what counts as a good backup, the locks, the state file.

Layout under `[backup] dir` (root, 0700):

    full/CLUSTER-20261128T020000Z.archive            mongodump --archive --gzip stream (maybe encrypted)
    full/CLUSTER-20261128T020000Z.archive.manifest.json
    oplog/CLUSTER-20261128T020500Z.oplog.gz          gzip'd oplog.bson slice (maybe encrypted)
    oplog/CLUSTER-20261128T020500Z.oplog.gz.manifest.json

Names sort by time and carry the cluster name. A file counts as a backup
only when its manifest exists and the sizes agree; the manifest is written
after the data file was renamed into place, so nothing half-written ever
qualifies. Oplog timestamps are kept as one int, (seconds << 32) | increment,
which orders like MongoDB's Timestamp.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from dataclasses import dataclass
from functools import cached_property
from datetime import datetime, timezone
from pathlib import Path

from . import locks, paths
from .errors import DbrsError

FULL = "full"
OPLOG = "oplog"
SUFFIX = {FULL: ".archive", OPLOG: ".oplog.gz"}
MANIFEST = ".manifest.json"
FORMAT = 1
STATE_DIR = paths.DATA / ".backup"
STATE_FILE = STATE_DIR / "state.json"
MAX_FAILURES = 50


def stamp(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def iso(t):
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_iso(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def file_name(cluster, kind, t):
    return f"{cluster}-{stamp(t)}{SUFFIX[kind]}"


def ts_int(t, i):
    return (int(t) << 32) | int(i)


def ts_json(v):
    return None if v is None else {"t": v >> 32, "i": v & 0xFFFFFFFF}


def ts_from_json(d):
    return None if d is None else ts_int(d["t"], d["i"])


def ts_text(v):
    """A Timestamp as mongorestore's --oplogLimit wants it: SECONDS:INCREMENT."""
    return f"{v >> 32}:{v & 0xFFFFFFFF}"


def ts_iso(v):
    return None if v is None else iso(v >> 32)


@dataclass(frozen=True)
class Entry:
    """A good backup or slice; timestamps are parsed once (planning walks thousands of slices)."""

    kind: str
    name: str
    path: str
    manifest: dict

    @cached_property
    def created(self):
        return parse_iso(self.manifest["finished"])

    @property
    def bytes(self):
        return self.manifest["bytes"]

    @property
    def cluster(self):
        return self.manifest["cluster"]

    @property
    def encrypted(self):
        return self.manifest["encrypted"]

    @cached_property
    def oplog_start(self):
        return ts_from_json(self.manifest.get("oplog_start"))

    @cached_property
    def oplog_end(self):
        return ts_from_json(self.manifest.get("oplog_end"))

    # slices
    @cached_property
    def after(self):
        return ts_from_json(self.manifest.get("after"))

    @cached_property
    def first(self):
        return ts_from_json(self.manifest.get("first"))

    @cached_property
    def last(self):
        return ts_from_json(self.manifest.get("last"))


@dataclass(frozen=True)
class Incomplete:
    """Something in the folder that is not a backup: a `.partial`, or data without a manifest."""

    kind: str
    name: str
    path: str
    reason: str


def kind_dir(backup_dir, kind):
    return Path(backup_dir) / kind


def scan(backup_dir, kind):
    """(good entries sorted by name = by time, incomplete things) of one kind."""
    d = kind_dir(backup_dir, kind)
    good, bad = [], []
    try:
        names = sorted(os.listdir(d))
    except FileNotFoundError:
        return [], []
    present = set(names)
    for n in names:
        p = str(d / n)
        if n.endswith(".partial"):
            bad.append(Incomplete(kind, n, p, "unfinished (.partial): a run was interrupted"))
            continue
        if not n.endswith(SUFFIX[kind]):
            continue
        if n + MANIFEST not in present:
            bad.append(Incomplete(kind, n, p, "no manifest: the run did not finish"))
            continue
        try:
            with open(p + MANIFEST, encoding="utf-8") as f:
                m = json.load(f)
            size = os.stat(p).st_size
        except (OSError, ValueError) as e:
            bad.append(Incomplete(kind, n, p, f"unreadable manifest: {e}"))
            continue
        if m.get("name") != n or m.get("kind") != kind:
            bad.append(Incomplete(kind, n, p, "manifest names another file"))
        elif size != m.get("bytes"):
            bad.append(Incomplete(kind, n, p, f"{size} bytes, manifest says {m.get('bytes')}"))
        else:
            good.append(Entry(kind, n, p, m))
    return good, bad


def find(backup_dir, name):
    """The good full backup or slice called NAME (a file name or a path to one)."""
    base = os.path.basename(str(name))
    for kind in (FULL, OPLOG):
        if base.endswith(SUFFIX[kind]):
            good, bad = scan(backup_dir, kind)
            for e in good:
                if e.name == base:
                    return e
            for b in bad:
                if b.name == base:
                    raise DbrsError(f"{base}: not a usable backup ({b.reason})")
    raise DbrsError(f"{base}: no such backup in {backup_dir} (see `dbrs backup list`)")


def write_manifest(path, manifest):
    from .apply import write_file

    data = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    write_file(None, str(path) + MANIFEST, data, 0o600, chown=False)


def remove(entry_path):
    """Delete a backup: the manifest first, so a crash in between leaves data nobody takes for good."""
    for p in (str(entry_path) + MANIFEST, str(entry_path)):
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


def ensure_dirs(backup_dir):
    for d in (Path(backup_dir), kind_dir(backup_dir, FULL), kind_dir(backup_dir, OPLOG)):
        d.mkdir(mode=0o700, parents=True, exist_ok=True)


@contextlib.contextmanager
def lock(backup_dir, kind, wait=0):
    """An flock per kind: full backups never overlap, a slice may run during a full backup.

    `wait` seconds are for prune, which may meet a slice that ends in a moment.
    """
    ensure_dirs(backup_dir)
    with locks.held(Path(backup_dir) / f".{kind}.lock", f"dbrs {kind} run", wait):
        yield


def clear_partials(backup_dir, kind):
    """Remove leftovers of killed runs; call only while holding the kind's lock."""
    removed = []
    for b in scan(backup_dir, kind)[1]:
        if b.name.endswith(".partial") or "no manifest" in b.reason:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(b.path)
            removed.append(b.name)
    return removed


# --------------------------------------------------------------------- state

def read_state(state_file=None):
    try:
        with open(state_file or STATE_FILE, encoding="utf-8") as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return {}


def update_state(change, state_file=None):
    """Read-modify-write the state file under an flock, atomically replaced."""
    from .apply import write_file

    path = Path(state_file or STATE_FILE)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path.parent / ".state.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        state = read_state(path)
        change(state)
        state["failures"] = state.get("failures", [])[-MAX_FAILURES:]
        write_file(None, str(path), (json.dumps(state, indent=2, sort_keys=True) + "\n").encode(), 0o600,
                   chown=False)
        return state
    finally:
        os.close(fd)


def record_success(kind, info, state_file=None):
    def change(state):
        state.setdefault("last_success", {})[kind] = dict(info, time=iso(time.time()))
    return update_state(change, state_file)
