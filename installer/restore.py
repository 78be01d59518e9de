"""`dbrs restore` and `dbrs backup verify`: prove, plan, then mongorestore, saying what happened at each step.

Nothing reaches mongorestore unproven, and the big file is read once:

- slices are read end to end first, their entries checked against their
  manifests (first, last, count, hash, order) and written, each entry once
  and in timestamp order, into the oplog.bson the replay will use;
- the base is fed in one read, each chunk proven before its bytes go out
  (AES-GCM tags, or the manifest's per-chunk sha256 for plain files); a
  chunk that fails stops mongorestore before it sees the end of the stream.

The plan is pure (installer.pitr) and shown by `--dry-run`. `--to` bases
must pass `base_problem` (today: a full verify); a damaged newer base is
passed over and named. A failure after the cluster was touched says what
it now holds and the command that finishes or redoes the restore.

admin, config and local are never restored over: users, sessions and the
replica set's own state stay as the running cluster has them.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass, field, replace

from . import archive, catalog, tools
from .errors import DbrsError, InputError
from . import pitr
from .pitr import Plan, plan_pitr, through

# the planning lives in pitr (pure); these names stay reachable here for the callers that had them
chain_problems, limit_for, pitr_window, slice_lo = pitr.chain_problems, pitr.limit_for, pitr.pitr_window, pitr.slice_lo

USER = "restore"
SYSTEM_DBS = ("admin", "config", "local")
NS_EXCLUDE = tuple(f"{db}.*" for db in SYSTEM_DBS)


# ----------------------------------------------------------------- planning

def plan_name(entry):
    return Plan(entry)


def base_problem(entry, key):
    """Why `entry` cannot be a base, or None. The one hook for "is this backup verified good".

    Today it proves the file (prove_base); a verification record kept by
    `backup verify` can answer here instead without changing the callers.
    """
    try:
        prove_base(entry, key)
    except archive.ArchiveError as e:
        return str(e).removeprefix(f"{entry.name}: ")
    return None


def prove_base(entry, key):
    """Every chunk of a base authenticated (or hash-checked) before the cluster is touched; returns dump bytes.

    The cheapest full proof: AES-GCM checks a chunk far faster than sha256
    reads it, and the salt ties the file to its manifest. The feed proves
    each chunk again as it goes, so a change in between is caught too.
    """
    m = entry.manifest
    if m.get("encrypted") and key is None:
        raise archive.ArchiveError(f"{entry.name}: encrypted, and backup.key is not available")
    n = archive.prove(entry.path, m, key)
    if m.get("plain_bytes") is not None and n != m["plain_bytes"]:
        raise archive.ArchiveError(f"{entry.name}: {n} dump bytes, the manifest says {m['plain_bytes']}")
    return n


def plan_verified(fulls, slices, t, key, inc=None, base_name=None, check=None):
    """plan_pitr over bases that pass `check`: a damaged newer base is passed over and named; a pinned one fails."""
    check = check or base_problem
    bad = {}
    while True:
        plan = plan_pitr(fulls, slices, t, inc, exclude=bad, base_name=base_name)
        why = check(plan.base, key)
        if why is None:
            return replace(plan, base_proven=True)
        if base_name:
            raise DbrsError(f"--base {base_name}: {why}; pick another base (`dbrs backup list`) or leave --base out")
        bad[plan.base.name] = f"damaged ({why})"


# ---------------------------------------------------------------- mongorestore

def restore_argv(mongorestore, hosts, config_path, *, set_name=None, archive_stdin=True, oplog_dir=None,
                 oplog_replay=True, oplog_limit=None, drop=False, ns_include=(), user=USER):
    """mongorestore's argv. Pure.

    admin/config/local are always excluded; --nsInclude narrows further but
    cannot be combined with an oplog replay (entries are not filtered by it).
    """
    if ns_include and (oplog_replay or oplog_limit):
        raise InputError("--ns-include", "cannot be combined with an oplog replay",
                         "restore one backup by NAME with --ns-include, or restore everything with --to")
    host = ",".join(hosts)
    if set_name:
        host = f"{set_name}/{host}"
    argv = [
        mongorestore,
        f"--host={host}",
        f"--username={user}",
        "--authenticationDatabase=admin",
        f"--config={config_path}",
    ]
    argv += [f"--nsExclude={p}" for p in NS_EXCLUDE]
    argv += [f"--nsInclude={p}" for p in ns_include]
    if drop:
        argv.append("--drop")
    if oplog_replay:
        argv.append("--oplogReplay")
    if oplog_limit is not None:
        argv.append(f"--oplogLimit={catalog.ts_text(oplog_limit)}")
    if archive_stdin:
        argv += ["--archive", "--gzip"]
    else:
        argv.append(f"--dir={oplog_dir}")
    return tuple(argv)


def check_ns_include(patterns):
    for p in patterns:
        db, dot, coll = p.partition(".")
        if not dot or not db or not coll:
            raise InputError("--ns-include", f"{p[:80]!r} is not a namespace pattern", "write db.coll or db.*")
        if db in SYSTEM_DBS or db in ("*",):
            raise InputError("--ns-include", f"{p!r} reaches into {db}",
                             "admin, config and local are never restored; name a user database, e.g. app.*")


def _ns_regex(pattern):
    """mongorestore's namespace pattern: `*` matches any run of characters, `\\` escapes."""
    import re

    out, i = "", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out += re.escape(pattern[i + 1])
            i += 2
            continue
        out += ".*" if ch == "*" else re.escape(ch)
        i += 1
    return re.compile(out + r"\Z")


def check_ns_matches(entry, patterns):
    """Each --ns-include pattern must match a collection the backup holds (its manifest lists them)."""
    held = sorted((entry.manifest.get("collections") or {}))
    if not held:
        return      # a manifest without counts (rebuilt): nothing to check against
    for p in patterns:
        if not any(_ns_regex(p).match(ns) for ns in held):
            raise InputError("--ns-include", f"{p[:80]!r} matches no collection of {entry.name}",
                             f"it holds {', '.join(held[:8])}{' …' if len(held) > 8 else ''}")


# ------------------------------------------------------------------ verifying

def verify_entry(entry, key):
    """Read one backup or slice end to end against its manifest; ArchiveError if it does not match.

    Slices are also checked entry by entry: first, last, count, the entries'
    hash and their order, so a manifest that claims more than its data holds
    is caught, not trusted.
    """
    m = entry.manifest
    if m.get("encrypted") and key is None:
        raise archive.ArchiveError(f"{entry.name}: encrypted, and backup.key is not available")
    if entry.kind == catalog.FULL:
        _check_full_manifest(entry)
    chunks = archive.read_plain(entry.path, key, m["sha256"], m["bytes"])
    if entry.kind == catalog.OPLOG:
        n = 0
        for _ in slice_entries(entry, chunks):
            n += 1
        return n
    n = 0
    for data in chunks:
        n += len(data)
    if m.get("plain_bytes") is not None and n != m["plain_bytes"]:
        raise archive.ArchiveError(f"{entry.name}: {n} dump bytes, the manifest says {m['plain_bytes']}")
    return n


CLOCK_SLACK_S = 300     # the member's oplog clock and this host's may differ a little, never by more


def _check_full_manifest(entry):
    """The oplog times a full backup's manifest claims must fit the run that wrote it: PITR plans with them."""
    start, end = entry.oplog_start, entry.oplog_end
    if start is None or end is None:
        return      # a rebuilt manifest has none (restore it by NAME)
    if start > end:
        raise archive.ArchiveError(f"{entry.name}: the manifest contradicts itself (oplog start "
                                   f"{catalog.ts_exact(start)} after its end {catalog.ts_exact(end)})")
    finished = catalog.parse_iso(entry.manifest["finished"])
    if (end >> 32) > finished + CLOCK_SLACK_S:
        raise archive.ArchiveError(f"{entry.name}: the manifest says the dump's oplog ends at {catalog.ts_exact(end)}, "
                                   f"after the backup finished ({entry.manifest['finished']}); it was altered")


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
    return catalog.ts_int(ts.time, ts.inc)


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
            raise archive.ArchiveError(f"{name}: entry {catalog.ts_exact(v)} after {catalog.ts_exact(last)}: "
                                       "out of order or repeated")
        first = v if first is None else first
        last = v
        n += 1
        sha.update(raw)
        yield v, raw
    want = (entry.first, entry.last, m.get("count"))
    if (first, last, n) != want:
        raise archive.ArchiveError(
            f"{name}: holds {n} entries {catalog.ts_exact(first)} .. {catalog.ts_exact(last)}, the manifest says "
            f"{m.get('count')} entries {catalog.ts_exact(entry.first)} .. {catalog.ts_exact(entry.last)}; "
            "this slice cannot be trusted")
    if m.get("entries_sha256") and sha.hexdigest() != m["entries_sha256"]:
        raise archive.ArchiveError(f"{name}: its entries do not match the manifest's hash; this slice cannot be trusted")
    if first is not None and not m.get("gap") and entry.after is not None and first <= entry.after:
        raise archive.ArchiveError(f"{name}: first entry {catalog.ts_exact(first)} is not after the slice's start "
                                   f"{catalog.ts_exact(entry.after)}")


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
            for v, raw in slice_entries(s, archive.proven_stream(s.path, s.manifest, key)):
                if covered < v < plan.limit and wanted(raw):
                    keep.append(raw)
            # the slice proved itself whole (slice_entries raises at its end) before any of it is used
            for raw in keep:
                f.write(raw)
            n += len(keep)
            covered = max(covered, min(s.last, plan.limit - 1))
    return n


# ------------------------------------------------------------------- running

_STARTED = re.compile(r"restoring (?:to existing collection )?(\S+?)(?: without dropping)? from ")
_FINISHED = re.compile(r"finished restoring (\S+) \((\d+) documents?, (\d+) failures?\)")
_APPLIED = re.compile(r"applied (\d+) oplog entries")


class RestoreLog(tools.Stderr):
    """mongorestore's stderr, read as it comes: which collections finished, which one is under way."""

    def __init__(self, stream, say=None):
        self.say = say
        self.finished = []
        self.current = None
        self.applied = None
        super().__init__(stream)

    def run(self):
        for raw in iter(self.stream.readline, b""):
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            m = _FINISHED.search(line)
            if m:
                self.finished.append((m.group(1), int(m.group(2)), int(m.group(3))))
                self.current = None
                continue
            m = _STARTED.search(line)
            if m:
                self.current = m.group(1)
                continue
            m = _APPLIED.search(line)
            if m:
                self.applied = int(m.group(1))


class RestoreFailed(DbrsError):
    """mongorestore (or a chunk feeding it) failed; `log` tells how far it got."""

    def __init__(self, message, log, damaged=False):
        self.log = log
        self.damaged = damaged      # the backup itself failed its proof while being fed
        super().__init__(message)


def _prefetch(chunks, depth=4):
    """Read and prove the next chunks in a thread while the last ones are written to mongorestore."""
    import queue

    q = queue.Queue(maxsize=depth)
    stop = threading.Event()
    END = object()

    def work():
        try:
            for c in chunks:
                if stop.is_set():
                    return
                q.put(c)
            q.put(END)
        except BaseException as e:  # handed to the consumer, raised there
            q.put(e)

    t = threading.Thread(target=work, daemon=True, name="dbrs-restore-reader")
    t.start()
    try:
        while True:
            c = q.get()
            if c is END:
                return
            if isinstance(c, BaseException):
                raise c
            yield c
    finally:
        stop.set()
        while t.is_alive():
            try:
                q.get_nowait()
            except Exception:
                t.join(0.01)


def _run_restore(argv_for, password, feed=None):
    """Run mongorestore; `feed` yields proven bytes for its stdin. Returns its RestoreLog.

    If the feed fails, mongorestore is killed before it sees the stream end,
    so a cut-off archive is never taken for a whole one.
    """
    with tools.PasswordPipe(password) as pipe:
        argv = argv_for(pipe.path)
        # its own process group: killed whole on failure or SIGTERM, never left running on its own
        proc = tools.spawn(argv, pipe.fds, stdin=subprocess.PIPE if feed else subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL)
        pipe.close()
        log = RestoreLog(proc.stderr)
        try:
            if feed:
                tools.widen_pipe(proc.stdin.fileno())
                fd = proc.stdin.fileno()
                try:
                    for data in _prefetch(feed):
                        view = memoryview(data)
                        while view:
                            view = view[os.write(fd, view):]
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
        except BaseException as e:
            tools.kill_group(proc)
            log.join(5)
            if isinstance(e, DbrsError):
                raise RestoreFailed(str(e), log, isinstance(e, archive.ArchiveError)) from None
            raise
        rc = proc.wait()
        log.join(5)
        if rc != 0:
            raise RestoreFailed(f"mongorestore exited {rc}: {log.last() or 'no message'}", log)
        return log


def check_versions(plan, mongorestore_version, server_version):
    m = plan.base.manifest
    dumped = m.get("mongodump_version", "")
    if dumped and not tools.same_release(dumped, mongorestore_version):
        raise InputError("mongorestore", f"is {mongorestore_version}, the dump was made by mongodump {dumped}",
                         f"install mongodb-database-tools {'.'.join(dumped.split('.')[:2])} (same release)")
    made = m.get("mongod_version", "")
    if made and made.split(".")[:2] != server_version.split(".")[:2]:
        raise InputError("cluster", f"runs MongoDB {server_version}, the backup is of {made}",
                         "restore into the same major version, then upgrade")


def hosts_of(spec):
    return [m.address for m in spec.members if m.data_bearing]


def scratch_dir(prefix):
    """A private folder for restore temporaries: next to dbrs's state when it exists (/tmp may be small)."""
    parent = str(catalog.STATE_DIR) if os.path.isdir(catalog.STATE_DIR) else None
    return tempfile.mkdtemp(prefix=prefix, dir=parent)


@dataclass
class Prepared:
    """What a restore proved before touching the cluster: the plan and, for --to, the replay's oplog.bson."""

    plan: Plan
    folder: str = None
    entries: int = 0

    def close(self):
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def prepare(plan, key):
    """Prove the base and the slices and build the replay file. Nothing is sent anywhere."""
    if not plan.base_proven:
        prove_base(plan.base, key)
    p = Prepared(plan)
    if plan.slices:
        p.folder = scratch_dir("dbrs-oplog-")
        try:
            p.entries = prepare_oplog(plan, key, p.folder)
        except BaseException:
            p.close()
            raise
    return p


class Preflight:
    """mongorestore's and the cluster's versions, asked in the background while the files are proven.

    Both are reads (a `--version`, a buildInfo); `result()` checks them and
    returns mongorestore's path, or raises what went wrong.
    """

    def __init__(self, spec, plan, password):
        self.got = {}
        self.threads = [threading.Thread(target=self._run, args=(k, f), daemon=True) for k, f in (
            ("tool", lambda: tools.version(tools.find("mongorestore"))),
            ("server", lambda: cluster_version(spec, password)))]
        self.plan = plan
        for t in self.threads:
            t.start()

    def _run(self, key, fn):
        try:
            self.got[key] = fn()
        except DbrsError as e:
            self.got.setdefault("error", e)

    def result(self):
        for t in self.threads:
            t.join()
        if "error" in self.got:
            raise self.got["error"]
        check_versions(self.plan, self.got["tool"], self.got["server"])
        return tools.find("mongorestore")


@dataclass
class Report:
    plan: Plan
    steps: list = field(default_factory=list)
    seconds: float = 0.0


def _restored(log):
    return ", ".join(f"{ns} ({n} documents)" for ns, n, _ in log.finished) or "no collection"


def execute(spec, prepared, password, key, *, drop=False, ns_include=(), say=None, redo=None, mongorestore=None):
    """Carry out a prepared plan, saying each step as it completes.

    On failure, one line: what failed, what the cluster now holds, and
    `redo`, the command that finishes the restore (the same one again: with
    --drop it is idempotent, and oplog entries apply idempotently).
    """
    say = say or (lambda line: None)
    plan = prepared.plan
    mongorestore = mongorestore or tools.find("mongorestore")
    started = time.monotonic()
    report = Report(plan)
    hosts = hosts_of(spec)
    base = plan.base
    replay = not ns_include
    redo = redo or "the same `dbrs restore` command"
    try:
        log = _run_restore(
            lambda cfg: restore_argv(mongorestore, hosts, cfg, set_name=spec.cluster.name, drop=drop,
                                     ns_include=ns_include, oplog_replay=replay),
            password, archive.proven_stream(base.path, base.manifest, key))
    except RestoreFailed as e:
        log = e.log
        doing = f"{log.current} partly restored; " if log.current else ""
        dropped = " (each dropped just before it was restored)" if drop else ""
        raise DbrsError(
            f"restore of {base.name} failed: {e}. The cluster now holds: {_restored(log)} from the backup"
            f"{dropped}; {doing}every other collection as it was. "
            + ("Do not redo it from this backup: restore another one (`dbrs backup list`; `dbrs backup verify "
               "--all` moves this one to quarantine)" if e.damaged else f"Run {redo} to redo it"
               + ("" if drop else " (add --drop to replace rather than add to what is there)"))) from None
    line = f"base restored from {base.name}: {_restored(log)}"
    report.steps.append((line, ""))
    say(line)
    if plan.slices:
        try:
            log = _run_restore(
                lambda cfg: restore_argv(mongorestore, hosts, cfg, set_name=spec.cluster.name, archive_stdin=False,
                                         oplog_dir=prepared.folder, oplog_replay=True, oplog_limit=plan.limit),
                password)
        except RestoreFailed as e:
            raise DbrsError(
                f"oplog replay failed ({e}) after the base was restored: the cluster now holds backup {base.name} "
                f"(as of {catalog.ts_exact(base.oplog_end)}) with at most part of the {prepared.entries} oplog "
                f"entries replayed, not the time asked for. Run {redo} to finish (it restores the base again and "
                "replays; oplog entries apply idempotently)") from None
        line = (f"oplog replayed: {prepared.entries} entries from {len(plan.slices)} slice(s), up to and including "
                f"{through(plan.limit)}")
        report.steps.append((line, ""))
        say(line)
    report.seconds = time.monotonic() - started
    return report


def identity(spec, cluster_id=None, state_file=None):
    return catalog.identity(spec.backup.dir, spec.cluster.name, cluster_id, state_file=state_file)


def entries(spec, ident=None):
    ident = ident or identity(spec)
    return (catalog.scan(spec.backup.dir, catalog.FULL, ident)[0],
            catalog.scan(spec.backup.dir, catalog.OPLOG, ident)[0])


def refuse_other_cluster(spec, plan, force, ident=None):
    ident = ident or catalog.Identity(spec.cluster.name)
    other = [e.manifest for e in (plan.base, *plan.slices) if not ident.owns_manifest(e.manifest)]
    if other and not force:
        m = other[0]
        theirs = f" (replica set id {m['replset_id']})" if m.get("replset_id") else ""
        ours = f" (replica set id {ident.replset_id})" if ident.replset_id else ""
        raise InputError("--force-other-cluster", f"the backup is of cluster {m.get('cluster')!r}{theirs}, this is "
                         f"{spec.cluster.name!r}{ours}", "pass --force-other-cluster if you mean it")


# -------------------------------------------------------------------- drill

DRILL_CACHE_GB = "0.25"
# a gzip'd dump expands several times once restored into WiredTiger files
DRILL_SPACE_FACTOR = 6


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def drill(entry, key, password, timeout=120):
    """Restore `entry` into a scratch mongod on a free loopback port; compare collection counts.

    Returns (status, detail): ("skipped", why) when no mongod is installed.
    """
    from .host.facts import which

    mongod = which("mongod")
    if not mongod:
        return "skipped", "mongod is not installed here; checksums only"
    mongorestore = tools.find("mongorestore")
    scratch_parent = str(catalog.STATE_DIR) if os.path.isdir(catalog.STATE_DIR) else None  # as scratch_dir
    free = shutil.disk_usage(scratch_parent or tempfile.gettempdir()).free
    need = DRILL_SPACE_FACTOR * entry.bytes
    if free < need:
        return "skipped", (f"the drill needs about {need >> 20} MiB free next to {scratch_parent or 'the temp folder'}, "
                           f"{free >> 20} MiB are; checksums only")
    tmp = tempfile.mkdtemp(prefix="dbrs-drill-", dir=scratch_parent)
    port = free_port()
    # A small cache: the live member on this host keeps its memory (MongoDB's default
    # takes half the RAM, twice over with the member running).
    proc = subprocess.Popen([mongod, "--dbpath", tmp, "--port", str(port), "--bind_ip", "127.0.0.1",
                             "--nounixsocket", "--wiredTigerCacheSizeGB", DRILL_CACHE_GB,
                             "--logpath", os.path.join(tmp, "mongod.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=tools.child_env())
    try:
        from .mongo import client

        c = client("127.0.0.1", port, timeout_ms=timeout * 1000)
        c.admin.command("ping")
        # no --oplogReplay: the counts mongodump printed are of the collections as copied
        _run_restore(lambda cfg: (mongorestore, f"--host=127.0.0.1:{port}",
                                  *[f"--nsExclude={p}" for p in NS_EXCLUDE], "--archive", "--gzip"),
                     password, archive.proven_stream(entry.path, entry.manifest, key))
        wrong = []
        for ns, want in sorted(entry.manifest.get("collections", {}).items()):
            db, _, coll = ns.partition(".")
            if db in SYSTEM_DBS:
                continue
            got = c[db][coll].estimated_document_count()
            if got != want:
                wrong.append(f"{ns}: {got} documents, dump had {want}")
        c.close()
        if wrong:
            raise DbrsError(f"drill of {entry.name}: " + "; ".join(wrong))
        return "ok", f"restored into a scratch mongod on port {port}; {len(entry.manifest.get('collections', {}))} collection counts match"
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def cluster_version(spec, password):
    """The running cluster's MongoDB version, asked of the primary as the restore user."""
    from .mongo import client

    c = client(hosts_of(spec), None, user=USER, password=password, replica_set=spec.cluster.name)
    try:
        return c.admin.command("buildInfo").get("version", "unknown")
    except Exception as e:  # pymongo's errors: reported as one line, the restore not started
        raise DbrsError(f"cannot reach the primary of {spec.cluster.name} as {USER}: {e}") from None
    finally:
        c.close()
