"""What `dbrs status` shows about backups: read from the backup folder and the state file only."""

from __future__ import annotations

import time
from pathlib import Path

from . import archive, catalog, history, pitr, times
from .. import systemd
from ..errors import InputError
from ..replset.health import ago


def status_summary(spec, config_dir=None, *, state_file=None, now=None):
    """What `dbrs status` shows about backups. Reads the backup folder and the alert state only.

    The state file is the one of the spec in `config_dir` (history.state_path).
    """
    now = time.time() if now is None else now
    if state_file is None and config_dir is not None:
        state_file = history.state_path(Path(config_dir) / "cluster.toml")
    try:
        ident, unsure = catalog.identity(spec.backup.dir, spec.cluster.name, state_file=state_file), []
    except InputError as e:
        ident, unsure = catalog.Identity(spec.cluster.name), [str(e)]
    fulls, bad_full = catalog.scan(spec.backup.dir, catalog.FULL, ident)
    slices, bad_slices = catalog.scan(spec.backup.dir, catalog.OPLOG, ident)
    state = history.read_state(state_file)
    last = fulls[-1] if fulls else None
    window = pitr.pitr_window(fulls, slices)
    failures = state.get("failures", [])
    return {
        "backup_dir": spec.backup.dir,
        "last_full": None if last is None else {
            "name": last.name,
            "finished": last.manifest.finished,
            "age_s": round(now - last.created),
            "bytes": last.bytes,
            "host": last.manifest.host,
            "member": last.manifest.member,
            "encrypted": last.encrypted,
        },
        "full_count": len(fulls),
        "last_slice": None if not slices else {
            "name": slices[-1].name,
            "finished": slices[-1].manifest.finished,
            "age_s": round(now - slices[-1].created),
            "last_ts": times.ts_iso(slices[-1].last),
            "gap": bool(slices[-1].manifest.gap),
        },
        "slice_count": len(slices),
        "pitr_window": None if window is None else {"from": times.ts_exact(window[0]),
                                                    "to": times.ts_exact(window[1])},
        "chain_problems": unsure + pitr.chain_problems(fulls, slices),
        "foreign": catalog.foreign_lines(spec.backup.dir, ident),
        # a `.partial` whose run still holds the lock is work in progress, not a problem
        "incomplete": [b.name for b in bad_full + bad_slices
                       if not (b.name.endswith(archive.PARTIAL) and catalog.busy(spec.backup.dir, b.kind))],
        "quarantined": [q["name"] for q in catalog.quarantined(spec.backup.dir)],
        "recent_failures": failures[-5:],
        "last_verify": state.get("last_verify"),
        "next_runs": next_runs(),
    }


def listing(spec, spec_path):
    """What `dbrs backup list` shows: (good fulls, incomplete fulls, good slices, incomplete slices, quarantined,
    point-in-time window, chain problems, foreign lines), this cluster's files only."""
    ident = catalog.identity(spec.backup.dir, spec.cluster.name, state_file=history.state_path(spec_path))
    fulls, bad_f = catalog.scan(spec.backup.dir, catalog.FULL, ident)
    slices, bad_s = catalog.scan(spec.backup.dir, catalog.OPLOG, ident)
    return (fulls, bad_f, slices, bad_s, catalog.quarantined(spec.backup.dir), pitr.pitr_window(fulls, slices),
            pitr.chain_problems(fulls, slices), catalog.foreign_lines(spec.backup.dir, ident))


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
    since = times.parse_iso(last["finished"]) if last else 0
    for f in summary.get("recent_failures", []):
        if times.parse_iso(f["time"]) > since:
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
