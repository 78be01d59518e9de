"""SIGINT and SIGTERM during a long wait: one line saying what was done, exit 130/143, no traceback.

Runs `dbrs` as a real process (pymongo's atexit executor join is what used
to print a KeyboardInterrupt traceback after "interrupted").
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_bootstrap_ends_in_one_line(standin, spec_for, signum):
    """It ends by the signal itself: a shell reports 130/143, and systemd counts a stop as clean."""
    for name in ("mongod1", "mongod3"):
        standin.member(name).start()
    path = spec_for(standin)
    proc = subprocess.Popen([sys.executable, "-c", "from installer.cli import main; main()", "bootstrap",
                             "--config", path, "--wait", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    line = ""
    while "waiting for: mongod2" not in line and time.monotonic() < deadline:
        line = proc.stderr.readline()   # the wait streams: its first line arrives before any result
    assert "waiting for: mongod2" in line
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == -signum, err   # ended by the signal: a shell shows 128 + signum
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    lines = [x for x in err.splitlines() if not x.startswith("  ... ")]
    assert lines == [f"interrupted by {signal.Signals(signum).name}: nothing was changed yet; run the command "
                     "again to finish (it picks up where it stopped)"]
