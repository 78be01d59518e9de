"""`dbrs prune`: retention.decide, with every backup it relies on read back before anything older goes.

The decision is pure (retention.py); this is the doing. Under the full
backups' lock: decide over the trusted backups, read back the ones the
decision relies on (the newest keep_min), quarantine any that fail and
decide again, until what it relies on was verified in this very run. Only
then, holding the slices' lock as well (briefly: a slice every few minutes
must not fail while prune reads gigabytes), decide once more and delete.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from . import catalog, offsite, retention, verification, history


@dataclass
class Pruned:
    decision: retention.Decision
    verified: list = field(default_factory=list)        # names read back and found good
    quarantined: list = field(default_factory=list)     # (name, detail)
    held: tuple = ()                                    # names kept for their off-site copy


def prune(spec, spec_path, key_fn, *, dry_run=False, waiting=None):
    """`dbrs prune` on this host's folder. `waiting()` is called when a backup holds the lock prune needs.

    Another cluster's files are never counted or deleted; backups still
    waiting for their off-site copy stay whatever their age.
    """
    b = spec.backup
    ident = catalog.identity(b.dir, spec.cluster.name, state_file=history.state_path(spec_path))
    hold = offsite.queued_names(spec) if spec.offsite else ()
    if waiting and catalog.busy(b.dir, catalog.FULL):
        waiting()
    out = run(b.dir, b.retention_days, b.keep_min, key_fn, dry_run=dry_run, ident=ident, hold=hold)
    out.held = hold
    return out


def run(backup_dir, retention_days, keep_min, key_fn, *, dry_run=False, now=None, ident=None, hold=()):
    """Prune `backup_dir`. `key_fn()` gives backup.key, asked only when something must be read back.

    Only `ident`'s files are seen (another cluster's are never counted or deleted); names in `hold`
    (backups still waiting for their off-site copy) are kept whatever their age.
    """
    now = time.time() if now is None else now
    out = Pruned(None)
    failed, done = set(), set()

    def decide():
        fulls = catalog.scan(backup_dir, catalog.FULL, ident)[0]
        slices = catalog.scan(backup_dir, catalog.OPLOG, ident)[0]
        d = retention.decide(fulls, slices, now, retention_days, keep_min,
                             trusted=lambda e: e.name not in failed and verification.trusted(e))
        held = {e.name for e in d.drop_full + d.drop_slices if e.name in hold}
        if not held:
            return d
        return replace(d, keep_full=d.keep_full + tuple(e for e in d.drop_full if e.name in held),
                       drop_full=tuple(e for e in d.drop_full if e.name not in held),
                       keep_slices=d.keep_slices + tuple(e for e in d.drop_slices if e.name in held),
                       drop_slices=tuple(e for e in d.drop_slices if e.name not in held))

    with catalog.lock(backup_dir, catalog.FULL, wait=300):
        while True:
            d = decide()
            todo = [e for e in d.relied if e.name not in done] if d.drop_full or d.drop_slices else []
            if not todo:
                break
            key = key_fn()
            for e in todo:
                done.add(e.name)
                ok, detail = verification.check(e, key, "prune", quarantine=not dry_run, now=now)
                if ok is None:
                    failed.add(e.name)      # gone meanwhile: nothing to rely on
                elif ok:
                    out.verified.append(e.name)
                else:
                    failed.add(e.name)
                    out.quarantined.append((e.name, detail))
        with catalog.lock(backup_dir, catalog.OPLOG, wait=300):
            # Full backups cannot change while we hold their lock, so what this relies on was read back
            # above (or nothing full is dropped, and slices older than the oldest full help no one).
            out.decision = d = decide()
            if not dry_run:
                for e in d.drop_full + d.drop_slices:
                    catalog.remove(e.path)
    return out
