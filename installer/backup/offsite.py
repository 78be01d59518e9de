"""Off-site copies: the queue of files to copy and pushing them (the remote side: remotes and retrieve).

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

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import generation, locks, paths, secrets, spec as specmod
from . import catalog, rclone, times
from .manifest import Manifest
from ..fsutil import write_file
from .rclone import root_of
from ..errors import DbrsError, InputError

READ_BLOCK = 1 << 20


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
    write_file(None, q.file, (json.dumps(q.entry, indent=2, sort_keys=True) + "\n").encode(), 0o600, chown=False)


# ------------------------------------------------------------------- state

def read_state(spool):
    try:
        with open(spool_dirs(spool)["state"], encoding="utf-8") as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return {}


def _record(spool, target, **info):
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
        m = Manifest.load(entry["manifest"])
        size = os.stat(entry["data"]).st_size
    except (OSError, ValueError):
        return None
    if m.name != entry["name"] or m.bytes != size:
        return None
    return m


def remote_path(spec, target, kind, name):
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


# ---------------------------------------------------------------- retention


# ------------------------------------------------------------------ verify


# ------------------------------------------------------------------ seam 2


FETCHING = ".fetching"


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

    spec = specmod.load(spec_path)
    target = target_named(spec, target_name)
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
    passphrase = None
    if passphrase_file:
        passphrase = secrets.read_passphrase(passphrase_file)
        try:
            old = Path(sib["bundle"]).read_bytes()
        except OSError as e:
            raise InputError("--passphrase-file", f"{sib['bundle']}: {e.strerror}",
                             "run it on the host where `dbrs init` wrote the bundle") from None
        opened = secrets.open_bundle(old, passphrase)
        sec = replace(sec, keyfile=opened.secrets.keyfile)
    write_file(None, str(sib["secrets"]), secrets.secrets_toml(sec), 0o600, chown=False)
    written.append(str(sib["secrets"]))
    if passphrase is not None and generation.reseal(spec_path, passphrase, sec):
        written.append(str(sib["bundle"]))
    return written


def target_named(spec, name):
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
    first = target_named(spec, name)
    return [first] if name else list(spec.offsite)
