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

from . import systemd
from .backup import history, metrics, times
from .errors import DbrsError

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
        metrics.write_metrics(spec, state_file=state_file)
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


def raise_problems(problems):
    if problems:
        raise DbrsError("alert recorded, but " + "; ".join(problems))
