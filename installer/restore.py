"""`dbrs restore` and `dbrs backup verify`: check first, plan, then mongorestore.

Nothing touches the cluster before every file the restore needs has been
read end to end and matched its manifest (sha256, size, every encrypted
chunk). The plan is pure and shown by `--dry-run`:

- NAME: restore that full backup, replaying the oplog the dump captured.
- --to TIME: the newest full backup whose oplog ends before TIME, then the
  oplog slices from that backup's oplog start on, replayed by `mongorestore
  --oplogReplay --oplogLimit` with the limit at the first second after TIME
  (oplog timestamps count seconds, so TIME is honoured to the second).

admin, config and local are never restored over: users, sessions and the
replica set's own state stay as the running cluster has them.
"""

from __future__ import annotations

import bisect
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import zlib
from dataclasses import dataclass, field

from . import archive, catalog, tools
from .errors import DbrsError, InputError

USER = "restore"
SYSTEM_DBS = ("admin", "config", "local")
NS_EXCLUDE = tuple(f"{db}.*" for db in SYSTEM_DBS)


# ----------------------------------------------------------------- planning

def slice_lo(s):
    """A slice holds every entry in (lo, last]; after a gap, only from its first entry on."""
    if s.manifest.get("gap"):
        return s.first - 1
    return s.after


def limit_for(t):
    """--oplogLimit for "as of TIME": entries before the next whole second (the limit is exclusive)."""
    return catalog.ts_int(int(t) + 1, 0)


@dataclass(frozen=True)
class Plan:
    base: object
    slices: tuple = ()
    limit: int = None           # ts int, exclusive; None = no point in time
    target_time: float = None

    def lines(self):
        out = [f"base   {self.base.name}  (oplog {catalog.ts_iso(self.base.oplog_start)} .. "
               f"{catalog.ts_iso(self.base.oplog_end)}, {self.base.manifest.get('member')} on "
               f"{self.base.manifest.get('host')})"]
        for s in self.slices:
            out.append(f"slice  {s.name}  ({catalog.ts_iso(s.first)} .. {catalog.ts_iso(s.last)}, "
                       f"{s.manifest.get('count')} entries)")
        if self.limit is not None:
            out.append(f"replay oplog entries after {catalog.ts_text(self.base.oplog_start)} up to "
                       f"--oplogLimit={catalog.ts_text(self.limit)} ({catalog.iso(self.target_time)})")
        return out


def plan_name(entry):
    return Plan(entry)


def plan_pitr(fulls, slices, t):
    """Which full backup, which slices and which --oplogLimit restore the cluster as of `t`. Pure.

    `slices` must be ordered by their last timestamp (names sort by time,
    so catalog order is). Raises DbrsError naming what is missing.
    """
    limit = limit_for(t)
    bases = [f for f in fulls if f.oplog_end is not None and f.oplog_end < limit]
    if not bases:
        first = min((f.oplog_end for f in fulls if f.oplog_end is not None), default=None)
        hint = f"the oldest full backup ends at {catalog.ts_iso(first)}" if first else "there is no full backup"
        raise DbrsError(f"--to {catalog.iso(t)}: no full backup ends before it ({hint})")
    base = max(bases, key=lambda f: f.oplog_end)
    lasts = [s.last for s in slices]
    i = bisect.bisect_right(lasts, base.oplog_start)
    chain = []
    reach = base.oplog_start
    while reach < limit:
        if i >= len(slices):
            raise DbrsError(f"--to {catalog.iso(t)}: the saved oplog ends at {catalog.ts_iso(reach)}; pick an "
                            "earlier time or save a newer slice first (`dbrs oplog`)")
        s = slices[i]
        if slice_lo(s) > reach:
            raise DbrsError(f"--to {catalog.iso(t)}: oplog gap after {catalog.ts_iso(reach)} (slice {s.name} "
                            f"starts at {catalog.ts_iso(s.first)}); restore to a time before the gap or after "
                            "the next full backup")
        chain.append(s)
        reach = max(reach, s.last)
        i += 1
    return Plan(base, tuple(chain), limit, t)


def pitr_window(fulls, slices):
    """(from, to) ts ints within which `--to` works for the newest unbroken chain, or None."""
    if not slices or not fulls:
        return None
    j = len(slices) - 1
    lo = slice_lo(slices[j])
    while j > 0 and slice_lo(slices[j]) <= slices[j - 1].last:
        j -= 1
        lo = min(lo, slice_lo(slices[j]))
    end = slices[-1].last
    starts = [f.oplog_end for f in fulls if f.oplog_start is not None and f.oplog_start >= lo
              and f.oplog_end is not None and f.oplog_end <= end]
    if not starts:
        return None
    return min(starts), end


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
        db = p.split(".", 1)[0]
        if db in SYSTEM_DBS or db in ("*",):
            raise InputError("--ns-include", f"{p!r} reaches into {db}",
                             "admin, config and local are never restored; name a user database, e.g. app.*")


# ------------------------------------------------------------------ verifying

def verify_entry(entry, key):
    """Read one backup or slice end to end against its manifest; ArchiveError if it does not match."""
    m = entry.manifest
    if m.get("encrypted") and key is None:
        raise archive.ArchiveError(f"{entry.name}: encrypted, and backup.key is not available")
    chunks = archive.read_plain(entry.path, key, m["sha256"], m["bytes"])
    if entry.kind == catalog.OPLOG:
        n = 0
        for raw in oplog_docs(chunks, entry.name):
            n += 1
        if n != m.get("count"):
            raise archive.ArchiveError(f"{entry.name}: {n} oplog entries, the manifest says {m.get('count')}")
        return n
    n = 0
    for data in chunks:
        n += len(data)
    if m.get("plain_bytes") is not None and n != m["plain_bytes"]:
        raise archive.ArchiveError(f"{entry.name}: {n} dump bytes, the manifest says {m['plain_bytes']}")
    return n


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


def replay_filter(docs, after, limit):
    """Entries to replay: after < ts < limit, none for config/local or admin's collections.

    admin.$cmd stays: transactions commit as applyOps commands there.
    """
    from bson.raw_bson import RawBSONDocument

    for raw in docs:
        d = RawBSONDocument(raw)
        ts = d["ts"]
        v = catalog.ts_int(ts.time, ts.inc)
        if v <= after:
            continue
        if v >= limit:
            return
        ns = d.get("ns", "")
        db = ns.split(".", 1)[0]
        if db in ("config", "local") or (db == "admin" and ns != "admin.$cmd"):
            continue
        yield raw


# ------------------------------------------------------------------- running

@dataclass
class Report:
    plan: Plan
    steps: list = field(default_factory=list)
    seconds: float = 0.0


def _run_restore(argv_for, password, feed=None):
    """Run mongorestore; `feed` yields bytes for its stdin. Returns its stderr tail."""
    with tools.PasswordPipe(password) as pipe:
        argv = argv_for(pipe.path)
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE if feed else subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=pipe.fds,
                                    env=tools.child_env())
        except OSError as e:
            raise DbrsError(f"cannot run {argv[0]}: {e.strerror}") from None
        pipe.close()
        err = tools.Stderr(proc.stderr)
        try:
            if feed:
                try:
                    for data in feed:
                        proc.stdin.write(data)
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        rc = proc.wait()
        err.join(5)
        if rc != 0:
            raise DbrsError(f"mongorestore exited {rc}: {err.last() or 'no message'}")
        return err.last()


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


def execute(spec, plan, password, key, *, drop=False, ns_include=(), progress=None, server_version=None):
    """Carry out a verified plan. The caller verified every file and got the operator's yes."""
    mongorestore = tools.find("mongorestore")
    check_versions(plan, tools.version(mongorestore), server_version or plan.base.manifest.get("mongod_version", ""))
    started = time.monotonic()
    report = Report(plan)
    hosts = hosts_of(spec)
    base = plan.base
    replay = not ns_include
    tail = _run_restore(
        lambda cfg: restore_argv(mongorestore, hosts, cfg, set_name=spec.cluster.name, drop=drop,
                                 ns_include=ns_include, oplog_replay=replay),
        password, archive.read_plain(base.path, key, base.manifest["sha256"], base.manifest["bytes"]))
    report.steps.append((f"restored {base.name}", tail))
    if plan.slices:
        tmp = tempfile.mkdtemp(prefix="dbrs-oplog-")
        try:
            n = _write_oplog_bson(os.path.join(tmp, "oplog.bson"), plan, key)
            tail = _run_restore(
                lambda cfg: restore_argv(mongorestore, hosts, cfg, set_name=spec.cluster.name, archive_stdin=False,
                                         oplog_dir=tmp, oplog_replay=True, oplog_limit=plan.limit),
                password)
            report.steps.append((f"replayed {n} oplog entries from {len(plan.slices)} slice(s) up to "
                                 f"{catalog.ts_text(plan.limit)}", tail))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    report.seconds = time.monotonic() - started
    return report


def _write_oplog_bson(path, plan, key):
    n = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        for s in plan.slices:
            docs = oplog_docs(archive.read_plain(s.path, key, s.manifest["sha256"], s.manifest["bytes"]), s.name)
            for raw in replay_filter(docs, plan.base.oplog_start, plan.limit):
                f.write(raw)
                n += 1
    return n


def entries(spec):
    return catalog.scan(spec.backup.dir, catalog.FULL)[0], catalog.scan(spec.backup.dir, catalog.OPLOG)[0]


def refuse_other_cluster(spec, plan, force):
    other = {e.manifest.get("cluster") for e in (plan.base, *plan.slices)} - {spec.cluster.name}
    if other and not force:
        raise InputError("--force-other-cluster", f"the backup is of cluster {sorted(other)[0]!r}, this is "
                         f"{spec.cluster.name!r}", "pass --force-other-cluster if you mean it")


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
    from .facts import which

    mongod = which("mongod")
    if not mongod:
        return "skipped", "mongod is not installed here; checksums only"
    mongorestore = tools.find("mongorestore")
    scratch_parent = str(catalog.STATE_DIR) if os.path.isdir(catalog.STATE_DIR) else None
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
                     password, archive.read_plain(entry.path, key, entry.manifest["sha256"], entry.manifest["bytes"]))
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
