"""flock-based locks: a timer run and a manual run of the same thing never overlap.

The lock file holds the holder's pid for the error message; the kernel
drops the lock when the process dies, even by SIGKILL, so a crash never
leaves a stale lock behind.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from contextlib import contextmanager

from .errors import DbrsError


def _open(path):
    """Open (or create) the lock file, refusing one planted by someone else.

    Lock directories like /run/lock are world-writable: a symlink there
    would make root truncate and write whatever it points at, and a file
    another user owns would let them hold our lock or fake its pid.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NOCTTY | os.O_NONBLOCK, 0o600)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise DbrsError(f"lock {path} is a symbolic link, which dbrs never makes; remove it (rm {path}) "
                            "and find out who planted it") from None
        if e.errno == errno.EROFS:
            raise DbrsError(f"lock {path}: its folder is on a read-only filesystem; remount it read-write "
                            "(or point [backup] dir elsewhere)") from None
        raise DbrsError(f"lock {path}: {e.strerror}; check that its folder exists and is writable") from None
    st = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(st.st_mode):
        problem = "is not a regular file"
    elif st.st_uid != os.geteuid():
        problem = f"belongs to uid {st.st_uid}, not to this user (uid {os.geteuid()})"
    elif st.st_mode & 0o022:
        problem = f"is writable by others (mode {stat.S_IMODE(st.st_mode):04o})"
    elif st.st_nlink != 1:
        problem = f"has {st.st_nlink} hard links"
    if problem:
        os.close(fd)
        raise DbrsError(f"lock {path} {problem}, so it is not dbrs' own; remove it (rm {path}) and run again")
    return fd


@contextmanager
def held(path, what, wait=0):
    """Hold an exclusive flock on `path`; DbrsError naming the holder if `wait` seconds pass."""
    fd = _open(path)
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
