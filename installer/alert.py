"""`dbrs alert UNIT`, run by dbrs-alert@UNIT.service when a dbrs unit fails (OnFailure=).

A backup that fails silently is worse than none: the operator believes in
it. So a failure is (1) recorded in the state file `dbrs status` reads,
(2) handed to the operator's command (argv, no shell; the event as JSON on
stdin and DBRS_ALERT_* variables) and/or POSTed as JSON to the webhook,
and (3) visible to Prometheus through node_exporter's textfile collector
when its directory exists. Every step is tried even if an earlier one
failed; the unit fails at the end if any did, so the journal shows it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

from . import systemd
from .backup import catalog, history, pitr, times
from .errors import DbrsError

METRICS_FILE = "dbrs_backup.prom"


def unit_result(unit):
    blocks = systemd.show([unit], ["Result", "ExecMainStatus"])
    return blocks[0] if blocks else {}


def event(spec, unit, info, now, host):
    result = info.get("Result", "unknown")
    status = info.get("ExecMainStatus")
    msg = f"{unit} failed on {host} (result {result}" + (f", exit status {status})" if status else ")")
    return {"cluster": spec.cluster.name, "host": host, "unit": unit, "time": times.iso(now),
            "result": result, "exit_status": status, "message": msg + "; see journalctl -u " + unit}


def handle(spec, unit, *, state_file=None, now=None, host=None, info=None, urlopen=None, run=subprocess.run):
    """Record, notify and export one failure; returns (event, [problems])."""
    now = time.time() if now is None else now
    host = host or socket.gethostname()
    info = unit_result(unit) if info is None else info
    ev = event(spec, unit, info, now, host)
    problems = []

    history.update_state(lambda s: s.setdefault("failures", []).append(ev), state_file)

    if spec.alerts.command:
        env = dict(os.environ, DBRS_ALERT_UNIT=unit, DBRS_ALERT_HOST=host, DBRS_ALERT_CLUSTER=spec.cluster.name,
                   DBRS_ALERT_MESSAGE=ev["message"])
        env.pop("CREDENTIALS_DIRECTORY", None)
        try:
            r = run(list(spec.alerts.command), input=json.dumps(ev).encode(), env=env, timeout=60,
                    capture_output=True)
            if r.returncode != 0:
                problems.append(f"alerts.command exited {r.returncode}")
        except (OSError, subprocess.TimeoutExpired) as e:
            problems.append(f"alerts.command: {e}")

    if spec.alerts.webhook:
        problems += post(spec.alerts.webhook, ev, urlopen)

    try:
        write_metrics(spec, state_file=state_file)
    except OSError as e:
        problems.append(f"metrics: {e.strerror or e}")
    return ev, problems


def post(url, ev, urlopen=None):
    import urllib.error
    import urllib.request

    urlopen = urlopen or urllib.request.urlopen
    req = urllib.request.Request(url, data=json.dumps(ev).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "User-Agent": "dbrs-alert"})
    try:
        with urlopen(req, timeout=10) as r:
            code = getattr(r, "status", 200)
            if code >= 300:
                return [f"alerts.webhook answered HTTP {code}"]
    except urllib.error.HTTPError as e:
        return [f"alerts.webhook answered HTTP {e.code}"]
    except (urllib.error.URLError, OSError) as e:
        return [f"alerts.webhook unreachable: {getattr(e, 'reason', e)}"]
    return []


def metrics_text(spec, fulls, slices, state, window):
    from .render import render

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
    from .fsutil import write_file

    d = Path(spec.alerts.textfile_dir)
    if not d.is_dir():
        return None
    ident = catalog.identity(spec.backup.dir, spec.cluster.name, state_file=state_file)
    fulls = catalog.scan(spec.backup.dir, catalog.FULL, ident)[0]
    slices = catalog.scan(spec.backup.dir, catalog.OPLOG, ident)[0]
    text = metrics_text(spec, fulls, slices, history.read_state(state_file), pitr.pitr_window(fulls, slices))
    write_file(None, str(d / METRICS_FILE), text, 0o644, chown=False)
    return str(d / METRICS_FILE)


def raise_problems(problems):
    if problems:
        raise DbrsError("alert recorded, but " + "; ".join(problems))
