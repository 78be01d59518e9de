"""`dbrs restore`: prove, plan, then mongorestore, saying what happened at each step.

Nothing reaches mongorestore unproven, and the big file is read once:

- slices are read end to end first (replay), their entries checked against their
  manifests (first, last, count, hash, order) and written, each entry once
  and in timestamp order, into the oplog.bson the replay will use;
- the base is fed in one read, each chunk proven before its bytes go out
  (AES-GCM tags, or the manifest's per-chunk sha256 for plain files); a
  chunk that fails stops mongorestore before it sees the end of the stream.

The plan is pure (backup.pitr) and shown by `--dry-run`. `--to` bases
must pass `base_problem` (today: a full verify); a damaged newer base is
passed over and named. A failure after the cluster was touched says what
it now holds and the command that finishes or redoes the restore.

admin, config and local are never restored over: users, sessions and the
replica set's own state stay as the running cluster has them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from dataclasses import dataclass, field, replace

from .. import tls, tools
from . import archive, catalog, history, mongorestore, proof, replay, times
from ..errors import DbrsError, InputError
from ..replset import connection
from ..replset.connection import talking
from .pitr import Plan, plan_pitr, through


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
    if m.encrypted and key is None:
        raise archive.ArchiveError(f"{entry.name}: encrypted, and backup.key is not available")
    n = proof.prove(entry.path, m, key)
    if m.plain_bytes is not None and n != m.plain_bytes:
        raise archive.ArchiveError(f"{entry.name}: {n} dump bytes, the manifest says {m.plain_bytes}")
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


def check_ns_include(patterns):
    for p in patterns:
        db, dot, coll = p.partition(".")
        if not dot or not db or not coll:
            raise InputError("--ns-include", f"{p[:80]!r} is not a namespace pattern", "write db.coll or db.*")
        if db in mongorestore.SYSTEM_DBS or db in ("*",):
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
    held = sorted(entry.manifest.collections or {})
    if not held:
        return      # a manifest without counts (rebuilt): nothing to check against
    for p in patterns:
        if not any(_ns_regex(p).match(ns) for ns in held):
            raise InputError("--ns-include", f"{p[:80]!r} matches no collection of {entry.name}",
                             f"it holds {', '.join(held[:8])}{' …' if len(held) > 8 else ''}")


# ------------------------------------------------------------------ verifying


# ------------------------------------------------------------------- running


def check_versions(plan, mongorestore_version, server_version):
    m = plan.base.manifest
    dumped = m.mongodump_version or ""
    if dumped and not tools.same_release(dumped, mongorestore_version):
        raise InputError("mongorestore", f"is {mongorestore_version}, the dump was made by mongodump {dumped}",
                         f"install mongodb-database-tools {'.'.join(dumped.split('.')[:2])} (same release)")
    made = m.mongod_version or ""
    if made and made.split(".")[:2] != server_version.split(".")[:2]:
        raise InputError("cluster", f"runs MongoDB {server_version}, the backup is of {made}",
                         "restore into the same major version, then upgrade")


def hosts_of(spec):
    return [m.address for m in spec.members if m.data_bearing]


def scratch_dir(prefix):
    """A private folder for restore temporaries: next to dbrs's state when it exists (/tmp may be small)."""
    parent = str(history.STATE_DIR) if os.path.isdir(history.STATE_DIR) else None
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
            p.entries = replay.prepare_oplog(plan, key, p.folder)
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


def execute(spec, prepared, password, key, *, spec_path, drop=False, ns_include=(), say=None, redo=None, tool=None):
    """Carry out a prepared plan, saying each step as it completes.

    On failure, one line: what failed, what the cluster now holds, and
    `redo`, the command that finishes the restore (the same one again: with
    --drop it is idempotent, and oplog entries apply idempotently).
    """
    say = say or (lambda line: None)
    plan = prepared.plan
    tool = tool or tools.find("mongorestore")
    started = time.monotonic()
    report = Report(plan)
    hosts = hosts_of(spec)
    tls_args = tls.tool_args(tls.client_mode(spec), tls.ca_path(Path(spec_path).parent))
    base = plan.base
    replaying = not ns_include
    redo = redo or "the same `dbrs restore` command"
    try:
        log = mongorestore.run_restore(
            lambda cfg: mongorestore.restore_argv(tool, hosts, cfg, set_name=spec.cluster.name, drop=drop,
                                                  ns_include=ns_include, oplog_replay=replaying, tls_args=tls_args),
            password, base.proven(key))
    except mongorestore.RestoreFailed as e:
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
            log = mongorestore.run_restore(
                lambda cfg: mongorestore.restore_argv(tool, hosts, cfg, set_name=spec.cluster.name, archive_stdin=False,
                                                      oplog_dir=prepared.folder, oplog_replay=True,
                                                      oplog_limit=plan.limit, tls_args=tls_args),
                password)
        except mongorestore.RestoreFailed as e:
            raise DbrsError(
                f"oplog replay failed ({e}) after the base was restored: the cluster now holds backup {base.name} "
                f"(as of {times.ts_exact(base.oplog_end)}) with at most part of the {prepared.entries} oplog "
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
        theirs = f" (replica set id {m.replset_id})" if m.replset_id else ""
        ours = f" (replica set id {ident.replset_id})" if ident.replset_id else ""
        raise InputError("--force-other-cluster", f"the backup is of cluster {m.cluster!r}{theirs}, this is "
                         f"{spec.cluster.name!r}{ours}", "pass --force-other-cluster if you mean it")


# -------------------------------------------------------------------- drill


def cluster_version(spec, password):
    """The running cluster's MongoDB version, asked of the primary as the restore user."""
    c = connection.client(hosts_of(spec), None, user=mongorestore.USER, password=password, replica_set=spec.cluster.name)
    try:
        with talking(f"the primary of {spec.cluster.name} as {mongorestore.USER}", "buildInfo"):
            return c.admin.command("buildInfo").get("version", "unknown")
    finally:
        c.close()


def drops(to, drop):
    """A point-in-time restore always drops: mongorestore only inserts, so today's documents would stay and
    the replayed oplog would land on top of them, giving neither today nor TIME."""
    return True if to else drop


def choose(spec, spec_path, key, *, name=None, to=None, when=None, ns_include=(), drop=False, base_name=None,
           cluster_id=None, force_other_cluster=False, where=""):
    """The plan for `dbrs restore NAME` or `--to TIME` (its base proven), and the command that redoes it."""
    ident = identity(spec, cluster_id, state_file=history.state_path(spec_path))
    if to:
        fulls, slices = entries(spec, ident)
        plan = plan_verified(fulls, slices, when[0], key, inc=when[1], base_name=base_name)
        redo = f"`dbrs restore --to '{to}' --base {plan.base.name}{where} --yes`"
    else:
        try:
            entry = catalog.find(spec.backup.dir, name, ident)
        except InputError as not_ours:
            try:    # another cluster's backup named on purpose: refuse_other_cluster below says what to pass
                entry = catalog.find(spec.backup.dir, name)
            except InputError:
                raise not_ours from None
        if entry.kind != catalog.FULL:
            raise InputError("NAME", f"{entry.name} is an oplog slice", "name a full backup, or use --to TIME")
        check_ns_matches(entry, ns_include)
        plan = plan_name(entry)
        redo = f"`dbrs restore {entry.name}{' --drop' if drop else ''}{where} --yes`"
    refuse_other_cluster(spec, plan, force_other_cluster, ident)
    return plan, redo
