"""The point-in-time chain: which base and slices restore a time, the window that works, what is broken. Pure.

Entries are one cluster's catalog entries (catalog.scan with its
Identity): fulls with oplog_start/oplog_end, slices ordered by their last
timestamp, each holding every oplog entry in (after, last]. Timestamps are
ints, (seconds << 32) | increment, so a time is exact to the increment:
what the window prints is restorable as printed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import times
from ..errors import DbrsError, InputError


def slice_lo(s):
    """A slice holds every entry in (lo, last]; after a gap, only from its first entry on."""
    if s.manifest.gap:
        return s.first - 1
    return s.after


def limit_for(t, inc=None):
    """--oplogLimit (exclusive) for "as of TIME": the whole second TIME, or up to (TIME, inc) included."""
    if inc is None:
        return times.ts_int(int(t) + 1, 0)
    return times.ts_int(int(t), inc + 1)


def exact(v):
    return times.ts_exact(v)


def through(limit):
    """The last timestamp an exclusive --oplogLimit lets in, as an operator reads it."""
    if limit & 0xFFFFFFFF == 0:
        return f"the end of {times.iso((limit >> 32) - 1)}"
    return exact(limit - 1)


@dataclass(frozen=True)
class Plan:
    base: object
    slices: tuple = ()
    limit: int = None           # ts int, exclusive; None = no point in time
    target_time: float = None
    capped: bool = False        # TIME's second is only saved up to limit-1: replayed to there, and said so
    passed_over: tuple = field(default=())   # (name, why) of newer bases not used
    base_proven: bool = False   # the base was proven while planning (restore.plan_verified)

    def lines(self):
        out = []
        for name, why in self.passed_over:
            out.append(f"skip   {name}: {why}")
        out.append(f"base   {self.base.name}  (oplog {exact(self.base.oplog_start)} .. "
                   f"{exact(self.base.oplog_end)}, {self.base.manifest.member} on "
                   f"{self.base.manifest.host})")
        for s in self.slices:
            out.append(f"slice  {s.name}  ({exact(s.first)} .. {exact(s.last)}, {s.manifest.count} entries)")
        if self.limit is not None:
            out.append(f"replay oplog entries after {exact(self.base.oplog_start)} up to and including "
                       f"{through(self.limit)} (--oplogLimit={times.ts_text(self.limit)})")
            if self.capped:
                out.append(f"note   the saved oplog ends at {exact(self.limit - 1)}, inside the second asked for; "
                           "entries of that second after it, if any, were not saved")
        return out


def _chain(base, slices, limit):
    """(slices replaying base.oplog_start .. limit-1, None) or (None, (reach, blocking slice or None)).

    Greedy interval cover: from what is covered so far, take the slice that
    starts within it and reaches furthest. Overlapping or out-of-order
    slices are handled; the replay trims repeated entries by timestamp.
    """
    reach = base.oplog_start
    cands = sorted((s for s in slices if s.last > reach), key=lambda s: (slice_lo(s), s.last))
    chain = []
    i = 0
    while reach < limit - 1:
        best = None
        while i < len(cands) and slice_lo(cands[i]) <= reach:
            if cands[i].last > reach and (best is None or cands[i].last > best.last):
                best = cands[i]
            i += 1
        if best is None:
            return None, (reach, cands[i] if i < len(cands) else None)
        chain.append(best)
        reach = best.last
    return tuple(chain), None


def plan_pitr(fulls, slices, t, inc=None, exclude=None, base_name=None):
    """Which full backup, which slices and which --oplogLimit restore the cluster as of `t` (`inc`). Pure.

    Bases are tried newest first; one counts when its dump ends before the
    limit and the slices reach from its oplog start. `exclude` maps names of
    bases known to be damaged to why (they are passed over and named);
    `base_name` pins the base. When the saved oplog ends inside TIME's second
    (no increment given), the replay stops at its last entry (Plan.capped).
    """
    exclude = exclude or {}
    limit = limit_for(t, inc)
    when = times.iso(t) + (f"+{inc}" if inc is not None else "")
    pool = [f for f in fulls if f.oplog_end is not None and f.oplog_start is not None]
    if base_name:
        pool = [f for f in pool if f.name == base_name]
        if not pool:
            raise InputError("--base", f"{base_name} is not a full backup of this cluster",
                             "see `dbrs backup list` for the names")
        if pool[0].oplog_end >= limit:
            raise InputError("--base", f"{base_name} ends at {exact(pool[0].oplog_end)}, after --to {when}",
                             "pick an older base or a later time")
    ending = sorted((f for f in pool if f.oplog_end < limit), key=lambda f: f.oplog_end, reverse=True)
    if not ending:
        first = min((f.oplog_end for f in pool), default=None)
        hint = f"the oldest full backup ends at {exact(first)}" if first else "there is no full backup"
        raise DbrsError(f"--to {when}: no full backup ends before it ({hint})")
    passed = [(n, why) for n, why in exclude.items()]
    trouble = None
    for base in ending:
        if base.name in exclude:
            continue
        chain, stop = _chain(base, slices, limit)
        if chain is not None:
            return Plan(base, chain, limit, t, False, tuple(passed))
        reach, blocker = stop
        if inc is None and reach >> 32 == int(t) and reach >= base.oplog_end:
            capped, _ = _chain(base, slices, reach + 1)
            return Plan(base, capped, reach + 1, t, True, tuple(passed))
        trouble = trouble or (base, reach, blocker)
        passed.append((base.name, f"the saved oplog does not reach {when} from it"))
    if trouble is None:
        names = ", ".join(exclude)
        raise DbrsError(f"--to {when}: every full backup that ends before it failed verification ({names}); "
                        "see `dbrs backup verify --all`")
    base, reach, blocker = trouble
    if blocker is None:
        raise DbrsError(f"--to {when}: the saved oplog ends at {exact(reach)}; pick that time or earlier, or save a "
                        "newer slice first (`dbrs oplog`)")
    what = "gap" if blocker.manifest.gap else "hole"
    raise DbrsError(f"--to {when}: oplog {what} after {exact(reach)} (slice {blocker.name} starts after "
                    f"{exact(slice_lo(blocker))}); restore to {exact(reach)} or earlier, or to a time after the "
                    "next full backup")


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


def chain_problems(fulls, slices):
    """What breaks or muddles the chain, read from the manifests: one line each, naming the slices and the fix.

    A hole no gap mark or full backup explains (a slice is missing), slices
    that overlap (two writers on one chain), a manifest that contradicts
    itself, and a gap no later full backup has re-anchored. Whether each
    slice's data matches its manifest is `backup verify`'s part.
    """
    out = []
    starts = sorted(f.oplog_start for f in fulls if f.oplog_start is not None)
    reach = starts[0] if starts else None
    prev = None
    for s in slices:
        m = s.manifest
        if m.rebuilt:
            # brought back from quarantine (`verify --rebuild-manifest`): where it chained is unknown, and the
            # next slice read its entries again, so it neither opens a hole nor counts as a second writer
            continue
        if s.first is None or s.last is None or s.after is None or not m.count:
            out.append(f"slice {s.name}: its manifest lacks first/last/after/count; it cannot be replayed")
            continue
        if s.first > s.last or (not m.gap and s.first <= s.after):
            out.append(f"slice {s.name}: its manifest contradicts itself (after {exact(s.after)}, first "
                       f"{exact(s.first)}, last {exact(s.last)}); check it with `dbrs backup verify {s.name}`")
            continue
        if prev is not None and s.after < prev.last:
            out.append(f"oplog overlap: slices {prev.name} and {s.name} both hold entries after {exact(s.after)} "
                       f"up to {exact(min(prev.last, s.last))} (a restore replays them once; two hosts may be "
                       "saving slices into this folder)")
        if reach is not None and s.last > reach:
            if slice_lo(s) > reach:
                if m.gap:
                    if not any(st >= s.after for st in starts):
                        out.append(f"oplog gap before slice {s.name}: entries after {exact(s.after)} up to "
                                   f"{exact(s.first)} were overwritten unsaved; point-in-time restore across it is "
                                   "impossible until the next full backup (`dbrs backup`)")
                elif not (s.after in starts or m.reanchored):
                    out.append(f"oplog hole: no slice holds the entries after {exact(reach)} up to "
                               f"{exact(s.after)} (slice {s.name} starts there); a slice is missing, so "
                               f"`restore --to` cannot cross it; run `dbrs backup` to start a new chain")
            reach = s.last
        if prev is None or s.last > prev.last:
            prev = s
    return out
