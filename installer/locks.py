"""flock-based locks: a timer run and a manual run of the same thing never overlap.

The lock file holds the holder's pid for the error message; the kernel
drops the lock when the process dies, even by SIGKILL, so a crash never
leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager

from .errors import DbrsError


@contextmanager
def held(path, what, wait=0):
    """Hold an exclusive flock on `path`; DbrsError naming the holder if `wait` seconds pass."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                raise DbrsError(f"another {what} holds {path} (pid {holder}); wait for it to finish") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
