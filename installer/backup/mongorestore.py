"""mongorestore: its argv (pure), its stderr read as it comes, one run fed with proven bytes.

admin, config and local are never restored over: users, sessions and the
replica set's own state stay as the running cluster has them.
"""

from __future__ import annotations

import re
import threading

from .. import tools
from . import archive, times
from ..errors import DbrsError, InputError, Terminated


USER = "restore"



SYSTEM_DBS = ("admin", "config", "local")



NS_EXCLUDE = tuple(f"{db}.*" for db in SYSTEM_DBS)



def restore_argv(mongorestore, hosts, config_path, *, set_name=None, archive_stdin=True, oplog_dir=None,
                 oplog_replay=True, oplog_limit=None, drop=False, ns_include=(), user=USER, tls_args=()):
    """mongorestore's argv. Pure.

    admin/config/local are always excluded; --nsInclude narrows further but
    cannot be combined with an oplog replay (entries are not filtered by it).
    """
    if ns_include and (oplog_replay or oplog_limit):
        raise InputError("--ns-include", "cannot be combined with an oplog replay",
                         "restore one backup by NAME with --ns-include, or restore everything with --to")
    host = ",".join(hosts)
    if set_name:
        host = f"{set_name}/{host}"
    argv = [
        mongorestore,
        f"--host={host}",
        f"--username={user}",
        "--authenticationDatabase=admin",
        f"--config={config_path}",
        *tls_args,
    ]
    argv += [f"--nsExclude={p}" for p in NS_EXCLUDE]
    argv += [f"--nsInclude={p}" for p in ns_include]
    if drop:
        argv.append("--drop")
    if oplog_replay:
        argv.append("--oplogReplay")
    if oplog_limit is not None:
        argv.append(f"--oplogLimit={times.ts_text(oplog_limit)}")
    if archive_stdin:
        argv += ["--archive", "--gzip"]
    else:
        argv.append(f"--dir={oplog_dir}")
    return tuple(argv)



_STARTED = re.compile(r"restoring (?:to existing collection )?(\S+?)(?: without dropping)? from ")



_FINISHED = re.compile(r"finished restoring (\S+) \((\d+) documents?, (\d+) failures?\)")



_APPLIED = re.compile(r"applied (\d+) oplog entries")



class RestoreLog(tools.Stderr):
    """mongorestore's stderr, read as it comes: which collections finished, which one is under way."""

    def __init__(self, stream, say=None):
        self.say = say
        self.finished = []
        self.current = None
        self.applied = None
        super().__init__(stream)

    def run(self):
        for raw in iter(self.stream.readline, b""):
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            m = _FINISHED.search(line)
            if m:
                self.finished.append((m.group(1), int(m.group(2)), int(m.group(3))))
                self.current = None
                continue
            m = _STARTED.search(line)
            if m:
                self.current = m.group(1)
                continue
            m = _APPLIED.search(line)
            if m:
                self.applied = int(m.group(1))



class RestoreFailed(DbrsError):
    """mongorestore (or a chunk feeding it) failed; `log` tells how far it got."""

    def __init__(self, message, log, damaged=False):
        self.log = log
        self.damaged = damaged      # the backup itself failed its proof while being fed
        super().__init__(message)



def _prefetch(chunks, depth=4):
    """Read and prove the next chunks in a thread while the last ones are written to mongorestore."""
    import queue

    q = queue.Queue(maxsize=depth)
    stop = threading.Event()
    END = object()

    def work():
        try:
            for c in chunks:
                if stop.is_set():
                    return
                q.put(c)
            q.put(END)
        except BaseException as e:  # handed to the consumer, raised there
            q.put(e)

    t = threading.Thread(target=work, daemon=True, name="dbrs-restore-reader")
    t.start()
    try:
        while True:
            c = q.get()
            if c is END:
                return
            if isinstance(c, BaseException):
                raise c
            yield c
    finally:
        stop.set()
        while t.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.01)



def run_restore(argv_for, password, feed=None):
    """Run mongorestore; `feed` yields proven bytes for its stdin. Returns its RestoreLog.

    If the feed fails, mongorestore is killed before it sees the stream end
    (tools.run_tool), so a cut-off archive is never taken for a whole one.
    """
    try:
        return tools.run_tool(argv_for, password, "mongorestore", log=RestoreLog,
                              feed=None if feed is None else _prefetch(feed))
    except tools.ToolFailed as e:
        raise RestoreFailed(str(e), e.log, isinstance(e.cause, archive.ArchiveError)) from None
    except Terminated as e:     # once mongorestore ran: said as the restore's failure (what the cluster holds now)
        if getattr(e, "log", None) is None:
            raise
        raise RestoreFailed(str(e), e.log) from None
