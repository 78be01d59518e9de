"""`dbrs backup`: one full dump of the replica set, taken on one host, streamed into a checked file.

Every data-bearing host runs the timer; exactly one of them dumps: the one
holding the first healthy SECONDARY (spec order), or the primary's host
when no secondary is healthy. The others skip with a reason and exit 0.
The dump is `mongodump --oplog --archive --gzip` against the local member
over loopback, as the backup user, its password through a pipe
(tools.PasswordPipe). The stream goes through archive.Sink (sha256,
optional encryption, `.partial` -> rename); the manifest comes last.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import archive, catalog, systemd, tools
from .errors import DbrsError

USER = "backup"
LOOPBACK = "127.0.0.1"
_BLOCK = 4 << 20
# No byte from mongodump for this long: it is hung (a member that stopped answering), not slow.
STALL_S = 600
# Timers fire before `dbrs-install --role primary` has initiated the set and created the backup user;
# the first runs within this long wait quietly, later ones fail (a wrong password must not stay silent).
BOOTSTRAP_GRACE_S = 3600
NOT_BOOTSTRAPPED = (18, 94, 93)     # AuthenticationFailed, NotYetInitialized, InvalidReplicaSetConfig


class Skip(Exception):
    """This host is not the one to back up now (not an error: exit 0 with the reason)."""


# ------------------------------------------------------------------ secrets

def load_secrets(spec_path):
    """Passwords and backup key: from systemd credentials when a unit passed them, else next to the spec.

    Under the units, LoadCredential= hands secrets.toml and backup.key over
    as $CREDENTIALS_DIRECTORY files, so the sandbox need not see /etc/dbrs.
    """
    from . import paths, secrets

    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds and Path(creds, "secrets.toml").exists():
        base = {"secrets": Path(creds, "secrets.toml"), "backup_key": Path(creds, "backup.key")}
    else:
        sib = paths.siblings(spec_path)
        base = {"secrets": Path(sib["secrets"]), "backup_key": Path(sib["backup_key"])}
    data = {}
    for k, p in base.items():
        try:
            data[k] = p.read_bytes()
        except FileNotFoundError:
            from .errors import InputError

            raise InputError(str(p), "is missing next to the spec",
                             "copy the cluster over with `dbrs-install --bundle FILE`") from None
        except PermissionError:
            from .errors import InputError

            raise InputError(str(p), "cannot be read", "run as root (sudo)") from None
    return secrets.parse_secrets_toml(data["secrets"], b"", data["backup_key"], str(base["secrets"]))


def backup_key(sec):
    from .errors import InputError
    from .secrets import backup_key_bytes

    try:
        return backup_key_bytes(sec.backup_key)
    except ValueError:
        raise InputError("backup.key", "is not base64", "restore it from the bundle (`dbrs-install --bundle FILE`)") \
            from None


# ------------------------------------------------------------- the source

def local_members(spec):
    """Data-bearing spec members whose host is this machine."""
    from .host import facts

    here = facts.this_host()
    return [m for m in spec.members if m.data_bearing and facts.is_local(m.host, here)]


def member_states(spec, status):
    """{member name: (state, healthy)} from a replSetGetStatus reply (read by replset.interpret_status)."""
    from .replset import interpret_status

    seen = {m.name: (m.state, bool(m.health)) for m in interpret_status(status, spec).members}
    return {m.name: seen.get(m.name, ("UNKNOWN", False)) for m in spec.members}


def choose_source(spec, local, states):
    """The member to dump on this host, or Skip(reason). Pure.

    One host dumps per run: the first healthy SECONDARY in spec order;
    when none is healthy, the PRIMARY (a dump there competes with the
    application, so it is the fallback, not the rule).
    """
    secondaries = [m for m in spec.members if states.get(m.name) == ("SECONDARY", True)]
    if secondaries:
        chosen, why = secondaries[0], "healthy secondary"
    else:
        primaries = [m for m in spec.members if states.get(m.name) == ("PRIMARY", True)]
        if not primaries:
            raise DbrsError("no healthy PRIMARY or SECONDARY in the replica set; nothing to back up from "
                            "(check `dbrs status`)")
        chosen, why = primaries[0], "primary, because no secondary is healthy"
    if chosen.name in {m.name for m in local}:
        return chosen, why
    here = ", ".join(m.name for m in local) or "no data-bearing member"
    raise Skip(f"{chosen.name} ({chosen.address}, {why}) takes the backup; this host has {here}")


@contextlib.contextmanager
def talking_to(what):
    """pymongo's errors as one line naming the member and the user, with the likely fix."""
    from pymongo.errors import OperationFailure, PyMongoError

    try:
        yield
    except OperationFailure as e:
        msg = (e.details or {}).get("errmsg") or str(e).split(", full error")[0]
        fix = ""
        if e.code == 18:
            fix = " (the password in secrets.toml does not match the cluster's; `dbrs bootstrap` creates the users)"
        elif e.code == 13:
            fix = " (the user lacks a role; `dbrs bootstrap` grants backup, clusterMonitor and read on local)"
        raise DbrsError(f"{what}: {msg}{fix}") from None
    except PyMongoError as e:
        raise DbrsError(f"{what}: {str(e).splitlines()[0][:300]}") from None


def first_status(client, member, state_file, now=None):
    """replSetGetStatus as the backup user, or Skip("not bootstrapped yet") while the set is young.

    Before bootstrap the backup user does not exist (AuthenticationFailed)
    or the set is not initiated (NotYetInitialized). That is expected for
    the first runs after an install; it is a failure once it lasts longer
    than BOOTSTRAP_GRACE_S, counted from the first such run, and at once
    on a set that has been backed up before.
    """
    from pymongo.errors import OperationFailure

    now = time.time() if now is None else now
    with talking_to(who(member)):
        try:
            return read_status(client)
        except OperationFailure as e:
            if e.code not in NOT_BOOTSTRAPPED:
                raise
            state = catalog.update_state(
                lambda s: None if s.get("last_success") else s.setdefault("waiting_for_bootstrap_since", now),
                state_file)
            since = state.get("waiting_for_bootstrap_since", now - BOOTSTRAP_GRACE_S)
            if now - since < BOOTSTRAP_GRACE_S:
                raise Skip(f"not bootstrapped yet: {member.name} has no replica set or no backup user "
                           f"({(e.details or {}).get('errmsg') or e}); waiting for `dbrs-install --role primary`") \
                    from None
            raise DbrsError(f"{who(member)}: {(e.details or {}).get('errmsg') or e} (the replica set or its backup "
                            "user is missing, or the password in secrets.toml does not match; run `dbrs bootstrap` "
                            "on the primary's host)") from None


def who(member):
    return f"{member.name} ({LOOPBACK}:{member.port}) as {USER}"


def connect(member, password, **kw):
    from .mongo import client

    return client(LOOPBACK, member.port, user=USER, password=password, **kw)


def read_status(client):
    return client.admin.command("replSetGetStatus")


def cluster_identity(client, spec):
    """This set's catalog.Identity: its name and replSetGetConfig.settings.replicaSetId (clusterMonitor may ask)."""
    cfg = client.admin.command("replSetGetConfig").get("config", {})
    rsid = (cfg.get("settings") or {}).get("replicaSetId")
    return catalog.Identity(spec.cluster.name, str(rsid) if rsid is not None else None)


def server_version(client):
    return client.admin.command("buildInfo").get("version", "unknown")


def _oplog_edge(client, direction):
    from bson.codec_options import CodecOptions
    from bson.raw_bson import RawBSONDocument

    coll = client.get_database("local", codec_options=CodecOptions(document_class=RawBSONDocument))["oplog.rs"]
    docs = list(coll.find({}, {"ts": 1}).sort("$natural", direction).limit(1))
    if not docs:
        raise DbrsError("local.oplog.rs is empty; is this member part of an initiated replica set?")
    ts = docs[0]["ts"]
    return catalog.ts_int(ts.time, ts.inc)


def newest_ts(client):
    """The newest oplog entry's timestamp: the dump's bounds are read just before and just after it."""
    return _oplog_edge(client, -1)


def oplog_bounds(client):
    """(oldest, newest) oplog entry timestamps as ints, read as raw BSON."""
    return _oplog_edge(client, 1), _oplog_edge(client, -1)


# ----------------------------------------------------------------- the dump

def dump_argv(mongodump, port, config_path, user=USER, host=LOOPBACK):
    """mongodump's argv. Pure: tests assert on the tuple.

    No --password: it is in the --config file. --oplog makes the dump
    consistent to one point in time (it needs the whole instance, so no
    --db); --archive writes one stream to stdout for us to hash and seal.
    """
    return (
        mongodump,
        f"--host={host}",
        f"--port={port}",
        f"--username={user}",
        "--authenticationDatabase=admin",
        f"--config={config_path}",
        "--oplog",
        "--archive",
        "--gzip",
    )


class Progress:
    """Bytes and rate on a terminal, about once a second; silent in a unit."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start = self.last = time.monotonic()

    def __call__(self, n):
        if not self.tty:
            return
        now = time.monotonic()
        if now - self.last >= 1:
            self.last = now
            rate = n / max(now - self.start, 1e-9)
            self.stream.write(f"\r{human(n)} written, {human(rate)}/s   ")
            self.stream.flush()

    def done(self):
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()


def human(n):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def stream_dump(make_argv, password, sink, progress=None, stall=STALL_S):
    """Run mongodump and pour its stdout into `sink`; returns the per-collection counts.

    mongodump runs in its own process group. If it fails, stalls (no byte
    for `stall` seconds), or we fail (disk full, SIGTERM turned into an
    error), the whole group is killed and the error raised: the caller's
    Sink then removes the `.partial`.
    """
    with tools.PasswordPipe(password) as pipe:
        argv = make_argv(pipe.path)
        proc = tools.spawn(argv, pipe.fds)
        pipe.close()
        err = tools.Stderr(proc.stderr)
        total = 0
        fd = proc.stdout.fileno()
        tools.widen_pipe(fd)
        try:
            for data in tools.read_watched(fd, _BLOCK, stall, "mongodump"):
                sink.write(data)
                total += len(data)
                if progress:
                    progress(total)
            rc = proc.wait(stall)
        except BaseException as e:
            tools.kill_group(proc)
            if isinstance(e, subprocess.TimeoutExpired):
                raise DbrsError(f"mongodump: closed its output but did not exit for {stall:g} s; killed it") from None
            raise
        finally:
            proc.stdout.close()
        err.join(5)
        if rc != 0:
            raise DbrsError(f"mongodump exited {rc}: {err.last() or 'no message'}")
        return err.counts


@dataclass
class Result:
    status: str                     # "done" | "skipped"
    reason: str = ""
    name: str = ""
    path: str = ""
    manifest: dict = field(default_factory=dict)

    def line(self):
        if self.status == "skipped":
            return f"backup skipped: {self.reason}"
        m = self.manifest
        return (f"backup {self.name}: {human(m['bytes'])} from {m['member']} in {m['duration_s']:.1f} s, "
                f"sha256 {m['sha256'][:16]}…, {'encrypted' if m['encrypted'] else 'not encrypted'}")


def run(spec, spec_path, *, progress=None, connect_fn=None, now=time.time, hostname=None, local=None, stall=STALL_S):
    """Take one full backup if this host is the one to; see the module docstring."""
    connect_fn = connect_fn or connect
    state_file = catalog.state_path(spec_path)
    sec = load_secrets(spec_path)
    password = sec.password(USER)
    key = backup_key(sec) if spec.backup.encrypt else None
    local = local_members(spec) if local is None else local
    if not local:
        return Result("skipped", "this host has no data-bearing member of the spec")
    mongodump = tools.find("mongodump")
    bdir = spec.backup.dir
    with tools.signals_as_errors("the backup"), catalog.lock(bdir, catalog.FULL):
        client = connect_fn(local[0], password)
        try:
            try:
                states = member_states(spec, first_status(client, local[0], state_file))
            except Skip as s:
                return Result("skipped", str(s))
            with talking_to(who(local[0])):
                ident = cluster_identity(client, spec)
            catalog.remember_identity(ident, state_file)
            catalog.clear_partials(bdir, catalog.FULL, ident)
            try:
                member, why = choose_source(spec, local, states)
            except Skip as s:
                return Result("skipped", str(s))
            if member != local[0]:
                client.close()
                client = connect_fn(member, password)
                try:    # users reach the other members a moment after the bootstrap created them
                    first_status(client, member, state_file)
                except Skip as s:
                    return Result("skipped", str(s))
            with talking_to(who(member)):
                mongod_version = server_version(client)
                oplog_start = newest_ts(client)
            started = now()
            name = catalog.free_name(catalog.kind_dir(bdir, catalog.FULL), ident.cluster, catalog.FULL, started,
                                     ident.replset_id)
            path = catalog.kind_dir(bdir, catalog.FULL) / name
            try:
                with catalog.folder_errors(bdir), archive.Sink(path, key) as sink:
                    counts = stream_dump(lambda cfg: dump_argv(mongodump, member.port, cfg), password, sink,
                                         progress, stall)
                    with talking_to(who(member)):
                        oplog_end = newest_ts(client)
                    written = sink.commit()
            except OSError as e:
                raise DbrsError(f"writing {path}: {e.strerror or e}; nothing was kept (is {bdir} full?)") from None
        finally:
            client.close()
        finished = now()
        manifest = {
            "format": catalog.FORMAT,
            "kind": catalog.FULL,
            "name": name,
            "cluster": spec.cluster.name,
            "replset_id": ident.replset_id,
            "member": member.name,
            "member_state": why,
            "host": hostname or socket.gethostname(),
            "started": catalog.iso(started),
            "finished": catalog.iso(finished),
            "duration_s": round(finished - started, 3),
            "bytes": written.bytes,
            "plain_bytes": written.plain_bytes,
            "sha256": written.sha256,
            "encrypted": written.encrypted,
            "key_id": archive.key_id(key).hex() if key else None,
            **archive.proofs(written),
            "oplog_start": catalog.ts_json(oplog_start),
            "oplog_end": catalog.ts_json(oplog_end),
            "mongod_version": mongod_version,
            "mongodump_version": tools.version(mongodump),
            "collections": counts,
        }
        write_manifest_or_remove(path, manifest)
        record_written(path)
        queue_offsite(spec, path)
    catalog.record_success(catalog.FULL, {"name": name, "bytes": written.bytes, "host": manifest["host"]}, state_file)
    _metrics(spec, state_file)
    return Result("done", why, name, str(path), manifest)


def queue_offsite(spec, path):
    """Hand a finished backup or slice to the off-site queue (cheap, no network, never fails the run)."""
    if spec.offsite:
        from . import offsite

        offsite.enqueue(spec, str(path), str(path) + catalog.MANIFEST)


def record_written(path):
    """The verification record at creation: the bytes were hashed as they were written.

    Without it (disk full at this very moment) the backup stays, merely
    unverified: prune reads it back before relying on it.
    """
    from . import verification

    try:
        verification.write(path, True, "written", "hashed as written")
    except OSError as e:
        print(f"warning: {os.path.basename(str(path))}: its verification record could not be written "
              f"({e.strerror or e}); it counts as unverified until `dbrs backup verify` reads it back",
              file=sys.stderr)


def write_manifest_or_remove(path, manifest):
    """The manifest makes a file a backup; if it cannot be written, the data file goes too."""
    try:
        catalog.write_manifest(path, manifest)
    except OSError as e:
        catalog.remove(path)
        raise DbrsError(f"writing the manifest of {path}: {e.strerror or e}; the backup was removed") from None


def _metrics(spec, state_file=None):
    from . import alert

    try:
        alert.write_metrics(spec, state_file=state_file)
    except OSError:
        pass  # metrics are a convenience; the backup itself succeeded


# ------------------------------------------------------------------ status

def status_summary(spec, config_dir=None, *, state_file=None, now=None):
    """What `dbrs status` shows about backups. Reads the backup folder and the alert state only.

    The state file is the one of the spec in `config_dir` (catalog.state_path).
    """
    from . import restore

    now = time.time() if now is None else now
    from .errors import InputError

    if state_file is None and config_dir is not None:
        state_file = catalog.state_path(Path(config_dir) / "cluster.toml")
    try:
        ident, unsure = catalog.identity(spec.backup.dir, spec.cluster.name, state_file=state_file), []
    except InputError as e:
        ident, unsure = catalog.Identity(spec.cluster.name), [str(e)]
    fulls, bad_full = catalog.scan(spec.backup.dir, catalog.FULL, ident)
    slices, bad_slices = catalog.scan(spec.backup.dir, catalog.OPLOG, ident)
    state = catalog.read_state(state_file)
    last = fulls[-1] if fulls else None
    window = restore.pitr_window(fulls, slices)
    failures = state.get("failures", [])
    return {
        "backup_dir": spec.backup.dir,
        "last_full": None if last is None else {
            "name": last.name,
            "finished": last.manifest["finished"],
            "age_s": round(now - last.created),
            "bytes": last.bytes,
            "host": last.manifest.get("host"),
            "member": last.manifest.get("member"),
            "encrypted": last.encrypted,
        },
        "full_count": len(fulls),
        "last_slice": None if not slices else {
            "name": slices[-1].name,
            "finished": slices[-1].manifest["finished"],
            "age_s": round(now - slices[-1].created),
            "last_ts": catalog.ts_iso(slices[-1].last),
            "gap": bool(slices[-1].manifest.get("gap")),
        },
        "slice_count": len(slices),
        "pitr_window": None if window is None else {"from": catalog.ts_exact(window[0]),
                                                    "to": catalog.ts_exact(window[1])},
        "chain_problems": unsure + restore.chain_problems(fulls, slices),
        "foreign": catalog.foreign_lines(spec.backup.dir, ident),
        # a `.partial` whose run still holds the lock is work in progress, not a problem
        "incomplete": [b.name for b in bad_full + bad_slices
                       if not (b.name.endswith(archive.PARTIAL) and catalog.busy(spec.backup.dir, b.kind))],
        "quarantined": [q["name"] for q in catalog.quarantined(spec.backup.dir)],
        "recent_failures": failures[-5:],
        "last_verify": state.get("last_verify"),
        "next_runs": next_runs(),
    }


def next_runs(units=("dbrs-backup.timer", "dbrs-oplog.timer", "dbrs-verify.timer")):
    """{timer: next elapse as systemd prints it}, from systemctl; {} where there is no systemd."""
    return _next_runs(systemd.show(units, ["Id", "NextElapseUSecRealtime"], timeout=5) or [])


def parse_next_runs(text):
    return _next_runs(systemd.parse_show(text))


def _next_runs(blocks):
    """{Id: NextElapseUSecRealtime}, paired within each unit's block (systemd orders the properties)."""
    return {b["Id"]: b["NextElapseUSecRealtime"] for b in blocks if b.get("Id") and b.get("NextElapseUSecRealtime")}


def summary_problems(summary):
    """What in the backup summary needs a person: failures since the last good backup, an oplog gap."""
    problems = []
    last = summary.get("last_full")
    since = catalog.parse_iso(last["finished"]) if last else 0
    for f in summary.get("recent_failures", []):
        if catalog.parse_iso(f["time"]) > since:
            problems.append(f"{f['unit']} failed at {f['time']} on {f.get('host', '?')}: {f.get('message') or f.get('result', '')}"
                            .rstrip(": "))
    bad = summary.get("incomplete") or []
    if bad:
        problems.append(f"{len(bad)} file(s) in the backup folder are not usable backups ({catalog.shown(bad[0])}"
                        f"{' …' if len(bad) > 1 else ''}): see `dbrs backup list`; `dbrs backup verify --all` "
                        "moves what may hold data to quarantine")
    q = summary.get("quarantined") or []
    if q:
        problems.append(f"{len(q)} backup file(s) failed verification and sit in quarantine ({catalog.shown(q[-1])}"
                        f"{' …' if len(q) > 1 else ''}): never counted as good; see `dbrs backup list`")
    gap = bool(summary.get("last_slice") and summary["last_slice"].get("gap"))
    if gap:
        problems.append("the oplog rolled over before a slice saved it: point-in-time restore is broken until the "
                        "next full backup (`dbrs backup`)")
    problems += [p for p in summary.get("chain_problems", []) if not (gap and p.startswith("oplog gap"))]
    return problems


def render_summary(summary):
    """The backup lines of `dbrs status`."""
    from .replset import _ago as ago

    lines = []
    last = summary.get("last_full")
    if last:
        lines.append(f"last full backup: {last['name']}, {ago(last['age_s'])} ago, {last['bytes'] / 2**20:.1f} MiB, "
                     f"from {last.get('member')} on {last.get('host')}")
    else:
        lines.append(f"last full backup: none in {summary['backup_dir']} on this host "
                     "(backups are kept on the host that took them)")
    s = summary.get("last_slice")
    lines.append(f"last oplog slice: {s['name']}, {ago(s['age_s'])} ago, up to {s['last_ts']}" if s
                 else "last oplog slice: none")
    w = summary.get("pitr_window")
    lines.append(f"restore --to window: {w['from']} .. {w['to']}" if w else "restore --to window: none yet")
    for timer, when in sorted(summary.get("next_runs", {}).items()):
        lines.append(f"next {timer}: {when}")
    lines += summary.get("foreign", [])
    for p in summary_problems(summary):
        lines.append(f"WARN {p}")
    return lines
