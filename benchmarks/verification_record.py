#!/usr/bin/env python3
"""What the verification record (issue 9) adds to a backup's time: target <= 5 %.

A backup's own work is the stream: mongodump (stand-in) -> sha256 + AES-256-GCM -> `.partial`, fsync,
rename. The record adds one step: `NAME.verified.json` written atomically (temp file, fsync, rename,
fsync of the folder). Both are timed on the same disk; also what prune's read-back of one backup costs.

Run from the repository with its venv:  .venv/bin/python benchmarks/verification_record.py
Env: MIB (stream size, default 256), RUNS (default 5), BENCH_DIR (default /var/tmp). Prints JSON last.
"""

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from installer.backup import archive, catalog, dump, entry, finish, times, verification  # noqa: E402
from installer.backup.manifest import Manifest  # noqa: E402

STANDINS = REPO / "tests" / "standins"
KEY = bytes(range(32))


def main():
    size = int(os.environ.get("MIB", 256)) << 20
    runs = int(os.environ.get("RUNS", 5))
    work = Path(tempfile.mkdtemp(prefix="dbrs-bench-rec-", dir=os.environ.get("BENCH_DIR", "/var/tmp")))
    bin_dir = work / "bin"
    bin_dir.mkdir()
    (bin_dir / "mongodump").symlink_to(STANDINS / "mongodump")
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    os.environ["DBRS_STANDIN_DUMP_BYTES"] = str(size)
    os.environ.pop("DBRS_STANDIN_RECORD", None)
    (work / "full").mkdir()
    stream, record, readback = [], [], []
    try:
        for i in range(runs):
            path = work / "full" / f"dbrs-{i}.archive"
            os.sync()
            t = time.perf_counter()
            with archive.Sink(path, KEY) as sink:
                dump.stream_dump(lambda cfg: dump.dump_argv("mongodump", 27018, cfg), "pw", sink)
                w = sink.commit()
            stream.append(time.perf_counter() - t)
            t = time.perf_counter()
            finish.record_written(path)
            record.append(time.perf_counter() - t)
            m = {"name": path.name, "kind": "full", "cluster": "dbrs", "finished": times.iso(time.time()),
                 "bytes": w.bytes, "sha256": w.sha256, "encrypted": True, "plain_bytes": w.plain_bytes,
                 "key_id": archive.key_id(KEY).hex()}
            m = Manifest.from_dict(m)
            catalog.write_manifest(path, m)
            t = time.perf_counter()
            ok, _ = verification.check(entry.Entry("full", path.name, str(path), m), KEY, "prune")
            readback.append(time.perf_counter() - t)
            assert ok
            catalog.remove(path)
        s, r, b = statistics.median(stream), statistics.median(record), statistics.median(readback)
        out = {"stream_bytes": size, "runs": runs, "backup_stream_s": round(s, 4), "record_s": round(r, 5),
               "record_share_pct": round(100 * r / s, 3), "target_pct": 5,
               "prune_readback_one_backup_s": round(b, 4),
               "samples": {"stream": stream, "record": record, "readback": readback}}
        print(f"{size >> 20} MiB encrypted backup: stream {s:.3f} s, verification record {r * 1000:.2f} ms "
              f"= {100 * r / s:.2f} % (target <= 5 %); prune's read-back of one backup {b:.3f} s", flush=True)
        print(json.dumps(out))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
