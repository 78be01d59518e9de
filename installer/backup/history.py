"""The state file of backups on this host: last successes, failures for `dbrs status`, the cluster id a run
read, the last verification. Read-modify-write under an flock, atomically replaced."""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

from .. import paths
from . import times
from ..fsutil import write_file


STATE_DIR = paths.STATE_DIR


STATE_FILE = STATE_DIR / "state.json"


MAX_FAILURES = 50


def state_path(spec_path):
    """The state file for the spec at `spec_path`: under the same root (ROOT/etc/dbrs/x.toml ->
    ROOT/var/lib/dbrs/.backup/state.json), else in a `.dbrs-state` folder next to the spec, so a run
    pointed at a staging tree never writes into this machine's /var/lib."""
    p = Path(os.path.abspath(spec_path))
    if p.parent.name == "dbrs" and p.parent.parent.name == "etc":
        root = p.parent.parent.parent
        return root / str(STATE_DIR).lstrip("/") / "state.json"
    return p.parent / ".dbrs-state" / "state.json"


def read_state(state_file=None):
    try:
        with open(state_file or STATE_FILE, encoding="utf-8") as f:
            state = json.load(f)
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def update_state(change, state_file=None):
    """Read-modify-write the state file under an flock, atomically replaced."""
    path = Path(state_file or STATE_FILE)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path.parent / ".state.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        state = read_state(path)
        change(state)
        state["failures"] = state.get("failures", [])[-MAX_FAILURES:]
        write_file(None, str(path), (json.dumps(state, indent=2, sort_keys=True) + "\n").encode(), 0o600,
                   chown=False)
        return state
    finally:
        os.close(fd)


def record_success(kind, info, state_file=None):
    def change(state):
        state.setdefault("last_success", {})[kind] = dict(info, time=times.iso(time.time()))
        state.pop("waiting_for_bootstrap_since", None)
    return update_state(change, state_file)
