"""mongodump, run once per full backup: its argv (pure), its stream poured into a Sink, progress on a terminal."""

from __future__ import annotations

import sys
import time

from .. import tools
from .source import LOOPBACK, USER


_BLOCK = 4 << 20



# No byte from mongodump for this long: it is hung (a member that stopped answering), not slow.
STALL_S = 600



def dump_argv(mongodump, port, config_path, user=USER, host=LOOPBACK, tls_args=()):
    """mongodump's argv. Pure: tests assert on the tuple.

    No --password: it is in the --config file. --oplog makes the dump
    consistent to one point in time (it needs the whole instance, so no
    --db); --archive writes one stream to stdout for us to hash and seal.
    """
    return (
        mongodump,
        f"--host={host}",
        f"--port={port}",
        f"--username={user}",
        "--authenticationDatabase=admin",
        f"--config={config_path}",
        "--oplog",
        "--archive",
        "--gzip",
        *tls_args,
    )



class Progress:
    """Bytes and rate on a terminal, about once a second; silent in a unit."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start = self.last = time.monotonic()

    def __call__(self, n):
        if not self.tty:
            return
        now = time.monotonic()
        if now - self.last >= 1:
            self.last = now
            rate = n / max(now - self.start, 1e-9)
            self.stream.write(f"\r{human(n)} written, {human(rate)}/s   ")
            self.stream.flush()

    def done(self):
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()



def human(n):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024



def stream_dump(make_argv, password, sink, progress=None, stall=STALL_S):
    """Run mongodump and pour its stdout into `sink`; returns the per-collection counts.

    mongodump fails, stalls (no byte for `stall` seconds), or we fail (disk
    full, SIGTERM turned into an error): tools.run_tool kills it and raises,
    and the caller's Sink removes the `.partial`.
    """
    total = 0

    def pour(data):
        nonlocal total
        sink.write(data)
        total += len(data)
        if progress:
            progress(total)

    return tools.run_tool(make_argv, password, "mongodump", pour=pour, block=_BLOCK, stall=stall).counts
