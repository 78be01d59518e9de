"""`dbrs backup verify --drill`: restore a backup into a scratch mongod and compare collection counts."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile

from .. import tools
from ..machine import which
from . import history, mongorestore
from ..errors import DbrsError
from ..replset import connection


DRILL_CACHE_GB = "0.25"



# a gzip'd dump expands several times once restored into WiredTiger files
DRILL_SPACE_FACTOR = 6



def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]



def drill(entry, key, password, timeout=120):
    """Restore `entry` into a scratch mongod on a free loopback port; compare collection counts.

    Returns (status, detail): ("skipped", why) when no mongod is installed.
    """
    mongod = which("mongod")
    if not mongod:
        return "skipped", "mongod is not installed here; checksums only"
    tool = tools.find("mongorestore")
    scratch_parent = str(history.STATE_DIR) if os.path.isdir(history.STATE_DIR) else None  # as scratch_dir
    free = shutil.disk_usage(scratch_parent or tempfile.gettempdir()).free
    need = DRILL_SPACE_FACTOR * entry.bytes
    if free < need:
        return "skipped", (f"the drill needs about {need >> 20} MiB free next to {scratch_parent or 'the temp folder'}, "
                           f"{free >> 20} MiB are; checksums only")
    tmp = tempfile.mkdtemp(prefix="dbrs-drill-", dir=scratch_parent)
    port = free_port()
    # A small cache: the live member on this host keeps its memory (MongoDB's default
    # takes half the RAM, twice over with the member running).
    proc = subprocess.Popen([mongod, "--dbpath", tmp, "--port", str(port), "--bind_ip", "127.0.0.1",
                             "--nounixsocket", "--wiredTigerCacheSizeGB", DRILL_CACHE_GB,
                             "--logpath", os.path.join(tmp, "mongod.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=tools.child_env())
    try:
        c = connection.client("127.0.0.1", port, timeout_ms=timeout * 1000, tls_options={})  # its own plaintext mongod
        c.admin.command("ping")
        # no --oplogReplay: the counts mongodump printed are of the collections as copied
        mongorestore.run_restore(lambda cfg: (tool, f"--host=127.0.0.1:{port}",
                                  *[f"--nsExclude={p}" for p in mongorestore.NS_EXCLUDE], "--archive", "--gzip"),
                     password, entry.proven(key))
        wrong = []
        for ns, want in sorted((entry.manifest.collections or {}).items()):
            db, _, coll = ns.partition(".")
            if db in mongorestore.SYSTEM_DBS:
                continue
            got = c[db][coll].estimated_document_count()
            if got != want:
                wrong.append(f"{ns}: {got} documents, dump had {want}")
        c.close()
        if wrong:
            raise DbrsError(f"drill of {entry.name}: " + "; ".join(wrong))
        return "ok", f"restored into a scratch mongod on port {port}; {len(entry.manifest.collections or {})} collection counts match"
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
