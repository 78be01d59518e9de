#!/usr/bin/env python3
"""What an off-site copy costs, for a `path` target and S3 over HTTP (the moto stand-in), with Debian's rclone.

For each target and size it measures, RUNS times (median):
  - push:   from a queued, finished backup to "data and manifest on the target" (offsite.push, one file);
  - floor:  copying the same bytes with the plainest tool (`cp` + fsync for path; boto3's
            upload_file for S3), so push - floor is dbrs' and rclone's overhead per backup;
  - fixed:  push of a 1 KiB oplog slice (start rclone twice, config file, lock, queue update):
            what every slice costs on top of its bytes.
The time from "backup done" to "off-site done" on a host is the timer's wait
(dbrs-offsite.timer: at most 1 min + 10 s after the previous run) plus `push`.

Run from the repository with its venv:  .venv/bin/python benchmarks/offsite_copy.py
Env: MIB (backup size, default 256), RUNS (default 3), BENCH_DIR (default /var/tmp). Prints JSON last.
"""

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "standins"))

from installer import secrets, spec as specmod  # noqa: E402
from installer.backup import catalog, offsite, times  # noqa: E402
from installer.backup.manifest import Manifest  # noqa: E402
from s3_standin import s3_standin  # noqa: E402

PSA = (REPO / "tests" / "conftest.py").read_text().split('PSA = """\\\n', 1)[1].split('"""', 1)[0]


def make_backup(bdir, kind, name, nbytes):
    d = Path(bdir) / kind
    d.mkdir(parents=True, exist_ok=True)
    p = d / name
    block = os.urandom(1 << 20)
    with open(p, "wb") as f:
        left = nbytes
        while left > 0:
            f.write(block[:min(left, len(block))])
            left -= len(block)
    digest = hashlib.sha256(p.read_bytes()).hexdigest()
    m = {"name": name, "kind": kind, "bytes": nbytes, "sha256": digest, "finished": times.iso(time.time()),
         "cluster": "dbrs", "encrypted": True}
    catalog.write_manifest(p, Manifest.from_dict(m))
    return p


def push_one(spec, sec, path):
    offsite.enqueue(spec, path, str(path) + catalog.MANIFEST)
    t0 = time.perf_counter()
    report = offsite.push(spec, sec)
    took = time.perf_counter() - t0
    assert report.ok and len(report.copied) == 1, report
    return took


def bench(spec, sec, bdir, nbytes, runs, floor):
    push, fixed, base = [], [], []
    for i in range(runs):
        big = make_backup(bdir, "full", f"dbrs-2026010{i}T000000Z.archive", nbytes)
        push.append(push_one(spec, sec, big))
        small = make_backup(bdir, "oplog", f"dbrs-2026010{i}T000500Z.oplog.gz", 1024)
        fixed.append(push_one(spec, sec, small))
        base.append(floor(big, i))
    med = statistics.median
    return {"bytes": nbytes, "push_s": round(med(push), 3), "floor_s": round(med(base), 3),
            "overhead_s": round(med(push) - med(base), 3), "slice_push_s": round(med(fixed), 3),
            "push_MiB_s": round(nbytes / 2**20 / med(push), 1)}


def main():
    mib = int(os.environ.get("MIB", "256"))
    runs = int(os.environ.get("RUNS", "3"))
    work = Path(tempfile.mkdtemp(prefix="dbrs-bench-offsite-", dir=os.environ.get("BENCH_DIR", "/var/tmp")))
    results = {}
    try:
        sec = secrets.Secrets(b"", {}, b"")
        # path
        dest = work / "usb"
        dest.mkdir()
        spec = specmod.loads(PSA + f'[backup]\ndir = "{work}/b1"\n[[offsite]]\nname = "usb"\ntype = "path"\n'
                             f'path = "{dest}"\n')

        def cp(big, i):
            t0 = time.perf_counter()
            out = work / f"cp-{i}"
            shutil.copyfile(big, out)
            fd = os.open(out, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
            return time.perf_counter() - t0

        results["path"] = bench(spec, sec, work / "b1", mib << 20, runs, cp)
        print("path", results["path"], flush=True)
        # S3 (moto on 127.0.0.1)
        with s3_standin(work) as (url, keys, client):
            spec = specmod.loads(PSA + f'[backup]\ndir = "{work}/b2"\n[[offsite]]\nname = "s3"\ntype = "s3"\n'
                                 f'bucket = "dbrs-offsite"\nendpoint = "{url}"\nregion = "us-east-1"\n'
                                 'chunk_size = "16M"\n')
            s3sec = secrets.Secrets(b"", {}, b"", offsite={"s3": {"access_key_id": keys[0],
                                                                   "secret_access_key": keys[1]}})

            def boto(big, i):
                from boto3.s3.transfer import TransferConfig

                t0 = time.perf_counter()
                client.upload_file(str(big), "dbrs-offsite", f"floor/{i}",
                                   Config=TransferConfig(multipart_chunksize=16 << 20, multipart_threshold=16 << 20))
                return time.perf_counter() - t0

            results["s3"] = bench(spec, s3sec, work / "b2", mib << 20, runs, boto)
            print("s3", results["s3"], flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"mib": mib, "runs": runs, "rclone": subprocess.run(["rclone", "version"], capture_output=True,
                                                                         text=True).stdout.split("\n")[0],
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
