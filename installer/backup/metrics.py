"""Backup metrics for Prometheus (node_exporter's textfile collector), written after every backup and alert."""

from __future__ import annotations

from pathlib import Path

from ..fsutil import write_file
from ..render import render
from . import catalog, history, pitr, times

METRICS_FILE = "dbrs_backup.prom"


def metrics_text(spec, fulls, slices, state, window):
    failures = {}
    for f in state.get("failures", []):
        failures[f["unit"]] = f
    return render(
        "dbrs/backup.prom.j2",
        cluster=spec.cluster.name,
        full=fulls[-1] if fulls else None,
        slice=slices[-1] if slices else None,
        full_count=len(fulls),
        slice_count=len(slices),
        window_end=None if window is None else window[1] >> 32,
        failures=[(u, times.parse_iso(f["time"])) for u, f in sorted(failures.items())],
    )


def write_metrics(spec, state_file=None):
    """node_exporter textfile metrics, only where the collector's directory exists."""
    d = Path(spec.alerts.textfile_dir)
    if not d.is_dir():
        return None
    ident = catalog.identity(spec.backup.dir, spec.cluster.name, state_file=state_file)
    fulls = catalog.scan(spec.backup.dir, catalog.FULL, ident)[0]
    slices = catalog.scan(spec.backup.dir, catalog.OPLOG, ident)[0]
    text = metrics_text(spec, fulls, slices, history.read_state(state_file), pitr.pitr_window(fulls, slices))
    write_file(None, str(d / METRICS_FILE), text, 0o644, chown=False)
    return str(d / METRICS_FILE)
