#!/usr/bin/env python3
"""What a restore costs against feeding mongorestore the plain dump, and how long commands linger at exit.

Targets (issue 15):
  1. `dbrs restore NAME --yes` of a 512 MiB encrypted backup <= 1.5x (goal 1.10x) the raw feed
     `cat PLAIN | mongorestore --archive --gzip` on the same mongorestore stand-in;
  2. a 1 MiB restore and `dbrs status` each exit within 0.2 s of their last output line
     (the last useful work; pymongo clients closed, nothing waiting at interpreter exit).
`dbrs restore` proves the whole base before touching the cluster (a second read, AES-GCM only), then
feeds it proving each chunk again; "one_read" is the same command without that pass, as it would run
once a verification record vouches for the base.

The cluster is the protocol tier's stand-in set (MockupDB, in this process), so the commands run
as the operator runs them: a subprocess with its own pymongo client, the stand-ins first on PATH.
Run from the repository with its venv:  .venv/bin/python benchmarks/restore_speed.py
Env: MIB (default 512), RUNS (default 3), BENCH_DIR (default /var/tmp). Prints a JSON summary last.
"""

import base64
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from installer.backup import archive, catalog, times  # noqa: E402
from installer.backup.manifest import Manifest  # noqa: E402
from tests.conftest import BACKUP_KEY, write_cluster  # noqa: E402
from tests.protocol.conftest import PSA_ROLES, spec_text  # noqa: E402
from tests.protocol.standin import StandInMember, StandInSet  # noqa: E402

STANDINS = REPO / "tests" / "standins"
DBRS = Path(sys.executable).parent / "dbrs"
MAGIC = b"STANDIN-MONGODUMP-ARCHIVE v1\n"
RESTORE_PW = "restore-pw-00000000000000000000"


def dump_bytes(n):
    block = random.Random("dbrs").randbytes(1 << 20)
    left = n - len(MAGIC)
    yield MAGIC
    while left > 0:
        piece = block[:min(left, len(block))]
        yield piece
        left -= len(piece)


def make_backup(folder, rsid, nbytes, key):
    """A backup file and manifest as `dbrs backup` writes them, and the plain dump beside it."""
    name = catalog.file_name("dbrs", catalog.FULL, time.time(), rsid)
    full = Path(folder) / "full"
    full.mkdir(parents=True, exist_ok=True)
    with archive.Sink(full / name, key) as s:
        for piece in dump_bytes(nbytes):
            s.write(piece)
        w = s.commit()
    ts = times.ts_int(int(time.time()) - 100, 1)
    manifest = {"format": 1, "kind": "full", "name": name, "cluster": "dbrs", "replset_id": rsid,
                "member": "mongod2", "host": "bench", "started": times.iso(time.time()),
                "finished": times.iso(time.time()), "bytes": w.bytes, "plain_bytes": w.plain_bytes,
                "sha256": w.sha256, "encrypted": w.encrypted, "key_id": archive.key_id(key).hex() if key else None,
                **archive.proofs(w), "oplog_start": times.ts_json(ts), "oplog_end": times.ts_json(ts),
                "mongod_version": "8.0.4", "mongodump_version": "100.10.0", "collections": {}}
    catalog.write_manifest(full / name, Manifest.from_dict(manifest))
    plain = Path(folder) / "plain.archive"
    with open(plain, "wb") as f:
        for piece in dump_bytes(nbytes):
            f.write(piece)
    return name, plain


def config_file(d):
    p = Path(d) / "mongorestore.yaml"
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, f'password: "{RESTORE_PW}"\n'.encode())
    os.close(fd)
    return str(p)


def raw_feed(plain, cfg, e):
    """`cat PLAIN | mongorestore --archive`: the floor a restore through a pipe can reach."""
    t = time.perf_counter()
    cat = subprocess.Popen(["cat", str(plain)], stdout=subprocess.PIPE)
    subprocess.run(["mongorestore", f"--config={cfg}", "--username=restore", "--nsExclude=admin.*",
                    "--archive", "--gzip"], stdin=cat.stdout, stderr=subprocess.DEVNULL, env=e, check=True)
    cat.stdout.close()
    cat.wait()
    return time.perf_counter() - t


def timed_lines(argv, e):
    """(wall seconds, seconds from the last output line to exit, exit code)."""
    t = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=e)
    last = t
    for _ in iter(p.stdout.readline, b""):
        last = time.perf_counter()
    rc = p.wait()
    end = time.perf_counter()
    return end - t, end - last, rc


def main():
    mib = int(os.environ.get("MIB", "512"))
    runs = int(os.environ.get("RUNS", "3"))
    work = Path(tempfile.mkdtemp(prefix="dbrs-restore-bench-", dir=os.environ.get("BENCH_DIR", "/var/tmp")))
    StandInMember.cmd_buildinfo = lambda self, request, doc: request.reply({"version": "8.0.4", "ok": 1})
    allowed = StandInMember.allowed
    StandInMember.allowed = lambda self, user, low, doc: low == "buildinfo" or allowed(self, user, low, doc)
    rs = StandInSet(PSA_ROLES).initiated().start()
    try:
        rsid = str(rs.config["settings"]["replicaSetId"])
        bdir = work / "backups"
        config = str(write_cluster(work / "etc", spec_text(rs) + f'\n[backup]\ndir = "{bdir}"\n'))
        bin_dir = work / "bin"
        bin_dir.mkdir()
        (bin_dir / "mongorestore").symlink_to(STANDINS / "mongorestore")
        e = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", DBRS_STANDIN_DUMP_BYTES="0")
        e.pop("DBRS_STANDIN_RECORD", None)
        key = base64.b64decode(BACKUP_KEY.strip())
        name, plain = make_backup(bdir, rsid, mib << 20, key)
        cfg = config_file(work)
        raw, ours, stall_big, single = [], [], [], []
        # the same command with the proving pass skipped: the one read a verification record that vouches
        # for the base would leave (every chunk is still proven as it is fed)
        one_read = [sys.executable, "-c", "import sys; from installer import restore; "
                    "restore.prove_base = lambda e, k: None; from installer.cli import main; "
                    "sys.argv[0] = 'dbrs'; main()", "restore", name, "--yes", "--config", config]
        for _ in range(runs):
            raw.append(raw_feed(plain, cfg, e))
            wall, stall, rc = timed_lines([str(DBRS), "restore", name, "--yes", "--config", config], e)
            assert rc == 0, "dbrs restore failed"
            ours.append(wall)
            stall_big.append(stall)
            single.append(timed_lines(one_read, e)[0])
        shutil.rmtree(bdir)
        small, _ = make_backup(bdir, rsid, 1 << 20, key)
        small_runs = [timed_lines([str(DBRS), "restore", small, "--yes", "--config", config], e) for _ in range(runs)]
        status_runs = [timed_lines([str(DBRS), "status", "--config", config], e) for _ in range(runs)]
    finally:
        rs.stop()
        shutil.rmtree(work, ignore_errors=True)
    med = statistics.median
    result = {
        "mib": mib, "runs": runs,
        "raw_feed_s": round(med(raw), 3), "dbrs_restore_s": round(med(ours), 3),
        "ratio": round(med(ours) / med(raw), 3), "target_ratio": 1.5, "goal_ratio": 1.10,
        "one_read_restore_s": round(med(single), 3), "one_read_ratio": round(med(single) / med(raw), 3),
        "restore_512_exit_after_last_line_s": round(med(stall_big), 3),
        "restore_1mib_s": round(med(r[0] for r in small_runs), 3),
        "restore_1mib_exit_after_last_line_s": round(med(r[1] for r in small_runs), 3),
        "status_s": round(med(r[0] for r in status_runs), 3),
        "status_exit_after_last_line_s": round(med(r[1] for r in status_runs), 3),
        "target_exit_stall_s": 0.2,
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
