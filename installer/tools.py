"""MongoDB Database Tools (mongodump, mongorestore): finding them, handing them a password, their output.

The tools come from PATH (MongoDB's packages put them in /usr/bin), so an
operator can use a newer tools release and the tests can put stand-ins first.
The password reaches them as a `--config` YAML file that is a pipe
(`/dev/fd/N`, mode 0600 by the kernel): it never touches argv, a child's
environment or the disk, and nothing is left behind if dbrs is killed.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import threading
from collections import deque

from .machine import which
from .render import render
from .errors import DbrsError, InputError, Terminated  # noqa: F401 - Terminated is raised here

_SECRETISH = re.compile(r"PASS|SECRET|TOKEN|KEY|CREDENTIAL", re.I)
_VERSION = re.compile(r"version:?\s*r?(\d+\.\d+\.\d+\S*)")
_DONE = re.compile(r"done dumping (\S+) \((\d+) documents?\)")


def find(tool):
    path = which(tool)
    if not path:
        raise InputError("PATH", f"{tool} not found",
                         "install mongodb-database-tools (MongoDB's apt repository) or put it on PATH")
    return path


def version(path):
    """`mongodump --version` -> "100.10.0"; the first line names the tools release."""
    try:
        r = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, env=child_env())
    except (OSError, subprocess.TimeoutExpired) as e:
        raise DbrsError(f"{path} --version failed: {e}") from None
    m = _VERSION.search(r.stdout + r.stderr)
    if r.returncode != 0 or not m:
        raise DbrsError(f"{path} --version did not print a version; is it MongoDB's {os.path.basename(path)}?")
    return m.group(1)


def same_release(a, b):
    """Tools versions agree on major.minor (100.10.x vs 100.10.y)."""
    return a.split(".")[:2] == b.split(".")[:2]


@contextlib.contextmanager
def signals_as_errors(what, outcome="the tool was killed and nothing was kept"):
    """Turn SIGTERM/SIGHUP into Terminated while `what` runs.

    Python's default for SIGTERM ends the process on the spot: no finally
    block runs, the tool (in its own process group) would live on and the
    `.partial` would stay. Outside the main thread signals cannot be
    handled, so there it changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(f"{what} stopped by {signal.Signals(signum).name}; {outcome}", signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def spawn(argv, pass_fds=(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE):
    """Start a tool in its own process group (session), so killing the group leaves no orphan behind."""
    try:
        return subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, pass_fds=pass_fds,
                                env=child_env(), start_new_session=True)
    except OSError as e:
        raise DbrsError(f"cannot run {argv[0]}: {e.strerror}") from None


def kill_group(proc):
    """SIGKILL the tool's whole process group and reap it. A stalled or abandoned tool gets no second chance."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait()


def read_watched(fd, block, stall, what):
    """Yield what a tool writes to `fd` until EOF; DbrsError when no byte arrives for `stall` seconds.

    select() measures on the monotonic clock, so a wall-clock jump neither
    trips nor hides a stall.
    """
    while True:
        ready, _, _ = select.select([fd], [], [], stall)
        if not ready:
            raise DbrsError(f"{what}: no output for {stall:g} s; killed it (stalled: is the member answering? "
                            "see its log)")
        data = os.read(fd, block)
        if not data:
            return
        yield data


def child_env():
    """Our environment minus anything that looks like a secret: the tools need PATH and locale only."""
    return {k: v for k, v in os.environ.items() if not _SECRETISH.search(k)}


def config_text(password):
    return render("mongotools/config.yaml.j2", password=password)


def widen_pipe(fd, size=1 << 20):
    """A 1 MiB pipe (Linux F_SETPIPE_SZ) lets the dump hand over bigger blocks per wake-up; best effort."""
    import fcntl

    try:
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), size)
    except OSError:
        pass


class PasswordPipe:
    """`with PasswordPipe(pw) as p: Popen([... f"--config={p.path}"], pass_fds=p.fds)`."""

    def __init__(self, password):
        data = config_text(password)
        r, w = os.pipe()
        try:
            if len(data) > 60000:  # a pipe holds 64 KiB; a password never comes near
                raise DbrsError("password config larger than a pipe buffer")
            os.write(w, data)
        finally:
            os.close(w)
        self.fd = r
        self.path = f"/dev/fd/{r}"
        self.fds = (r,)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class Stderr(threading.Thread):
    """Drains a child's stderr so it never blocks; keeps the tail for the error message."""

    def __init__(self, stream, keep=50):
        super().__init__(daemon=True)
        self.stream = stream
        self.lines = deque(maxlen=keep)
        self.counts = {}
        self.start()

    def run(self):
        for raw in iter(self.stream.readline, b""):
            line = raw.decode(errors="replace").rstrip()
            m = _DONE.search(line)
            if m:
                self.counts[m.group(1)] = int(m.group(2))
            self.lines.append(line)

    def last(self):
        for line in reversed(self.lines):
            if line.strip():
                return line.split("\t")[-1].strip()
        return ""


class ToolFailed(DbrsError):
    """A tool run failed (its exit code, a stall, or what fed it); `log` is its stderr reader, `cause` what we raised."""

    def __init__(self, message, log, cause=None):
        self.log = log
        self.cause = cause
        super().__init__(message)


def run_tool(make_argv, password, name, *, log=Stderr, feed=None, pour=None, block=1 << 20, stall=None):
    """Run one MongoDB tool; returns its stderr reader (`log`), ToolFailed when it or what fed it failed.

    `make_argv(config_path)` builds the argv around the password pipe
    (PasswordPipe: never argv, never the environment). `feed` yields the
    bytes for its stdin; `pour(data)` takes its stdout, which must not stall
    for `stall` seconds. The tool runs in its own process group: on any
    failure, or an exception of ours (disk full, SIGTERM turned into an
    error), the whole group is killed before it sees its input end, so a
    cut-off stream is never taken for a whole one.
    """
    with PasswordPipe(password) as pipe:
        proc = spawn(make_argv(pipe.path), pipe.fds, stdin=subprocess.PIPE if feed is not None else subprocess.DEVNULL,
                     stdout=subprocess.PIPE if pour is not None else subprocess.DEVNULL)
        pipe.close()
        err = log(proc.stderr)
        try:
            if pour is not None:
                fd = proc.stdout.fileno()
                widen_pipe(fd)
                for data in read_watched(fd, block, stall, name):
                    pour(data)
            if feed is not None:
                fd = proc.stdin.fileno()
                widen_pipe(fd)
                try:
                    for data in feed:
                        view = memoryview(data)
                        while view:
                            view = view[os.write(fd, view):]
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
            rc = proc.wait(stall)
        except BaseException as e:
            kill_group(proc)
            err.join(5)
            if isinstance(e, subprocess.TimeoutExpired):
                raise ToolFailed(f"{name}: closed its output but did not exit for {stall:g} s; killed it", err) \
                    from None
            if isinstance(e, Terminated):
                e.log = err     # a stop, not a failure: the caller sees the signal (and may still read the log)
                raise
            if isinstance(e, DbrsError):
                raise ToolFailed(str(e), err, e) from None
            raise
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
        err.join(5)
        if rc != 0:
            raise ToolFailed(f"{name} exited {rc}: {err.last() or 'no message'}", err)
        return err
