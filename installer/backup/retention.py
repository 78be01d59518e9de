"""What `dbrs prune` deletes. Pure: decisions over catalog entries, no file access.

Full backups older than `retention_days` go, except that the newest
`keep_min` good ones always stay (a cluster whose backups stopped a month
ago must not end up with none). Good means trusted (verification.trusted):
a backup whose last verification failed is never counted and never
deleted here (it belongs in quarantine); `relied` names the backups the
decision leans on, which the caller reads back before deleting anything. Slices are kept while they can still be
replayed on top of a kept full backup: a slice goes only when it ends
before the oldest kept full backup's oplog start.
"""

from __future__ import annotations

from dataclasses import dataclass

DAY = 86400


@dataclass(frozen=True)
class Decision:
    keep_full: tuple
    drop_full: tuple
    keep_slices: tuple
    drop_slices: tuple
    relied: tuple = ()


def decide(fulls, slices, now, retention_days, keep_min, trusted=lambda e: True):
    """Split `fulls` and `slices` (anything with .created, .oplog_start / .last) into keep and drop."""
    cutoff = now - retention_days * DAY
    newest = sorted((e for e in fulls if trusted(e)), key=lambda e: e.created, reverse=True)
    relied = newest[:keep_min]
    protected = {id(e) for e in relied}
    keep, drop = [], []
    for e in fulls:
        (keep if e.created >= cutoff or id(e) in protected or not trusted(e) else drop).append(e)
    if keep:
        floor = min((e.oplog_start for e in keep if e.oplog_start is not None), default=None)
    else:
        floor = None
    keep_s, drop_s = [], []
    for s in slices:
        # no kept full backup (none at all yet): a slice has no base to judge by, keep it
        (drop_s if floor is not None and s.last is not None and s.last <= floor else keep_s).append(s)
    return Decision(tuple(keep), tuple(drop), tuple(keep_s), tuple(drop_s), tuple(relied))
