"""Verification records: "good" means a backup was read back and matched, and we remember when.

Every backup and slice gets `NAME.verified.json` next to it: at creation
(the bytes were hashed as they were written) and after each read-back by
`dbrs backup verify` or `dbrs prune`. Prune counts only backups whose last
record passed, and reads again the ones it is about to rely on before it
deletes anything older; a backup that fails is moved to the quarantine
folder (catalog.quarantine), never deleted and never counted.

A wrong or missing backup.key is not the backup's fault: it fails the run
but quarantines nothing.
"""

from __future__ import annotations

import json
import os
import time

from . import archive, catalog, drill as drills, pitr, replay, times, history
from ..errors import DbrsError

REQUIRED = {
    catalog.FULL: ("name", "kind", "cluster", "finished", "bytes", "sha256", "encrypted", "plain_bytes"),
    catalog.OPLOG: ("name", "kind", "cluster", "finished", "bytes", "sha256", "encrypted", "first", "last", "count"),
}


class WrongKey(archive.ArchiveError):
    """backup.key does not open this backup; the backup itself may be fine."""


def record_path(path):
    return str(path) + catalog.RECORD


def last(path):
    """The last verification of the backup at `path`, or None (never verified, or the record is unreadable)."""
    try:
        with open(record_path(path), encoding="utf-8") as f:
            rec = json.load(f)
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and isinstance(rec.get("ok"), bool) else None


def write(path, ok, how, detail="", now=None):
    catalog.write_manifest_like(record_path(path), {
        "ok": ok, "how": how, "detail": detail, "time": times.iso(time.time() if now is None else now)})


def trusted(entry):
    """Counts as good unless its last record failed; a backup without a record is verified before it is relied on."""
    rec = last(entry.path)
    return rec is None or rec["ok"]


def _key_problem(entry, key):
    """WrongKey when backup.key is not the key the file's header and manifest both name;
    ArchiveError when header and manifest disagree (one of them is damaged)."""
    m = entry.manifest
    if not m.encrypted:
        return
    if key is None:
        raise WrongKey(f"{entry.name}: encrypted, and backup.key is not available")
    ours = archive.key_id(key).hex()
    try:
        with open(entry.path, "rb") as f:
            head = f.read(archive.HEADER_SIZE)
    except OSError:
        return
    header_kid = head[-8:].hex() if len(head) == archive.HEADER_SIZE and head.startswith(archive.MAGIC) else None
    if header_kid != m.key_id:
        raise archive.ArchiveError(f"{entry.name}: the header names key id {header_kid}, the manifest "
                                   f"{m.key_id} (one of them is damaged)")
    if header_kid != ours:
        raise WrongKey(f"{entry.name}: encrypted with another backup key (key id {header_kid}, ours {ours}); "
                       "use that cluster's backup.key")


def check(entry, key, how="verify", quarantine=True, now=None):
    """Read `entry` end to end against its manifest; record the result; quarantine it when it fails.

    Returns (ok, detail); ok is None when the backup was deleted (by a
    prune) while it was being read: nothing to judge, nothing to move.
    Raises WrongKey (nothing recorded or moved) when the key, not the
    backup, is the problem.
    """
    try:
        _key_problem(entry, key)
        missing = entry.manifest.lacks(REQUIRED[entry.kind])
        if missing:
            raise archive.ArchiveError(f"{entry.name}: the manifest lacks {', '.join(missing)}")
        verify_entry(entry, key)
    except WrongKey:
        raise
    except archive.ArchiveError as e:
        if not os.path.lexists(entry.path + catalog.MANIFEST) and not os.path.lexists(entry.path):
            return None, "removed while it was being read (pruned meanwhile)"
        detail = str(e).removeprefix(f"{entry.name}: ")
        if quarantine:
            catalog.quarantine(backup_dir_of(entry.path), entry.path, f"failed verification: {detail}", now)
        return False, detail
    detail = "checksum and size match" + (", every chunk authenticates" if entry.encrypted else "")
    write(entry.path, True, how, detail, now)
    return True, detail


def backup_dir_of(path):
    return os.path.dirname(os.path.dirname(os.path.abspath(path)))


def check_folder(backup_dir, key, *, name=None, every=False, now=None, ident=None):
    """What `dbrs backup verify` does: results [{name, kind, ok, detail}] for NAME, --all, or the newest backup.

    Besides the backups read, every problem `list` knows fails the run:
    cut-off files, data without manifest or manifest without data,
    files nobody wrote (a `.partial` only while no run holds the lock).
    Damaged files go to quarantine; with --all, what sits there keeps
    failing the run (and so alerting) until someone deals with it.
    """
    with catalog.folder_errors(backup_dir):
        return _check_folder(backup_dir, key, name, every, now, ident)


def _check_folder(backup_dir, key, name, every, now, ident):
    earlier = catalog.quarantined(backup_dir) if every else []
    fulls, bad = catalog.scan(backup_dir, catalog.FULL, ident)
    slices, bad_s = catalog.scan(backup_dir, catalog.OPLOG, ident)
    results = []
    if name:
        hit = [b for b in bad + bad_s if b.name == name and not b.name.endswith(archive.PARTIAL)]
        if hit:     # named, and not what its manifest says: a failed verification, not bad input
            catalog.quarantine(backup_dir, hit[0].path, hit[0].reason, now)
            return [{"name": name, "kind": hit[0].kind, "ok": False, "detail": hit[0].reason + "; quarantined"}]
        chosen = [catalog.find(backup_dir, name, ident)]
    elif every:
        chosen = fulls + slices
    else:
        chosen = fulls[-1:]
    if not name:
        for b in bad + bad_s:
            if b.name.endswith(archive.PARTIAL):
                if catalog.busy(backup_dir, b.kind):
                    results.append({"name": b.name, "kind": b.kind, "ok": True, "skipped": True,
                                    "detail": "in progress (a run holds the lock)"})
                    continue
                results.append({"name": b.name, "kind": b.kind, "ok": False,
                                "detail": b.reason + "; the next run removes it"})
                continue
            if b.reason == "not a dbrs file":
                results.append({"name": b.name, "kind": b.kind, "ok": False,
                                "detail": "not a dbrs file; move it out of the backup folder"})
                continue
            catalog.quarantine(backup_dir, b.path, b.reason, now)
            results.append({"name": b.name, "kind": b.kind, "ok": False, "detail": b.reason + "; quarantined"})
    for q in earlier:
        lost = str(q.get("reason", "")).startswith("no manifest")
        fix = ("`dbrs backup verify --rebuild-manifest NAME` brings it back" if lost
               else "look at it, then delete it by hand")
        results.append({"name": q["name"], "kind": q.get("kind"), "ok": False,
                        "detail": f"in quarantine since {q.get('time')}: {q.get('reason')} ({fix})"})
    for e in chosen:
        try:
            ok, detail = check(e, key, "verify", now=now)
        except WrongKey as err:
            ok, detail = False, str(err).removeprefix(f"{e.name}: ")
        else:
            if ok is None:
                results.append({"name": e.name, "kind": e.kind, "ok": True, "skipped": True, "detail": detail})
                continue
            if not ok:
                detail += "; quarantined"
        results.append({"name": e.name, "kind": e.kind, "ok": ok, "detail": detail})
    return results


def verify_entry(entry, key):
    """Read one backup or slice end to end against its manifest; ArchiveError if it does not match.

    Slices are also checked entry by entry: first, last, count, the entries'
    hash and their order, so a manifest that claims more than its data holds
    is caught, not trusted.
    """
    if entry.kind == catalog.FULL:
        _check_full_manifest(entry)
    chunks = entry.open(key)
    if entry.kind == catalog.OPLOG:
        n = 0
        for _ in replay.slice_entries(entry, chunks):
            n += 1
        return n
    n = 0
    for data in chunks:
        n += len(data)
    if entry.manifest.plain_bytes is not None and n != entry.manifest.plain_bytes:
        raise archive.ArchiveError(f"{entry.name}: {n} dump bytes, the manifest says {entry.manifest.plain_bytes}")
    return n



CLOCK_SLACK_S = 300     # the member's oplog clock and this host's may differ a little, never by more



def _check_full_manifest(entry):
    """The oplog times a full backup's manifest claims must fit the run that wrote it: PITR plans with them."""
    start, end = entry.oplog_start, entry.oplog_end
    if start is None or end is None:
        return      # a rebuilt manifest has none (restore it by NAME)
    if start > end:
        raise archive.ArchiveError(f"{entry.name}: the manifest contradicts itself (oplog start "
                                   f"{times.ts_exact(start)} after its end {times.ts_exact(end)})")
    finished = times.parse_iso(entry.manifest.finished)
    if (end >> 32) > finished + CLOCK_SLACK_S:
        raise archive.ArchiveError(f"{entry.name}: the manifest says the dump's oplog ends at {times.ts_exact(end)}, "
                                   f"after the backup finished ({entry.manifest.finished}); it was altered")


def verify(spec, spec_path, key, restore_password, *, name=None, every=False, drill=False):
    """`dbrs backup verify`: (results, failed count, chain problems), the run recorded for `dbrs status`.

    With `every`, the oplog chain is checked too; with `drill`, the full
    backups read back are also restored into a scratch mongod (when nothing failed).
    """
    state_file = history.state_path(spec_path)
    ident = catalog.identity(spec.backup.dir, spec.cluster.name, state_file=state_file)
    results = check_folder(spec.backup.dir, key, name=name, every=every, ident=ident)
    if not every and not name and not any(r["kind"] == catalog.FULL and r["ok"] for r in results) and \
            not any(not r["ok"] for r in results):
        raise DbrsError(f"no full backup in {spec.backup.dir} to verify (run `dbrs backup`)")
    failed = sum(1 for r in results if not r["ok"])
    chain = []
    if every:
        chain = pitr.chain_problems(catalog.scan(spec.backup.dir, catalog.FULL, ident)[0],
                                    catalog.scan(spec.backup.dir, catalog.OPLOG, ident)[0])
    if drill and not failed:
        fulls = catalog.scan(spec.backup.dir, catalog.FULL)[0]
        target = [catalog.find(spec.backup.dir, name)] if name else fulls[-1:]
        for e in target:
            if e.kind == catalog.FULL:
                status, detail = drills.drill(e, key, restore_password())
                results.append({"name": e.name, "ok": True, "drill": status, "detail": detail})
    history.update_state(lambda s: s.__setitem__("last_verify", {
        "time": times.iso(time.time()), "checked": len(results), "failed": failed,
        "failures": [r["name"] for r in results if not r["ok"]]}), state_file)
    return results, failed, chain
