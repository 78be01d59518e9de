#!/usr/bin/env python3
"""How long people wait: `dbrs --help`, a first converge into a staging root, a no-op re-run.

Targets (issue 2): --help median <= 80 ms without pymongo, jinja2 or
cryptography imported; converge of one member <= 0.5 s; no-op <= 0.3 s.
Run from the repository with its venv:  .venv/bin/python benchmarks/cli_speed.py
DBRS_BENCH_TLS=off measures a spec without TLS (comparable with trees from before `dbrs init` turned it on).
"""

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
HEAVY = ("pymongo", "jinja2", "cryptography")


def timed(argv, runs):
    """Median wall time; use `RUNS` and an idle machine, since other load inflates it."""
    samples, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(samples), statistics.median(cpu)


def heavy_imports_of_help():
    code = ("import sys\nfrom installer.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    line = [x for x in r.stdout.splitlines() if x.startswith("HEAVY:")][-1]
    return [m for m in line[len("HEAVY:"):].split(",") if m]


def main():
    runs = int(os.environ.get("RUNS", "15"))
    wall, cpu = timed([str(BIN / "dbrs"), "--help"], runs)
    result = {"help_median_ms": round(wall * 1000, 1), "help_cpu_ms": round(cpu * 1000, 1),
              "help_heavy_imports": heavy_imports_of_help(), "load_average": os.getloadavg()[0]}
    tmp = Path(tempfile.mkdtemp(prefix="dbrs-bench-"))
    try:
        subprocess.run([str(BIN / "dbrs"), "init", "--root", str(tmp / "seed"), "--primary", "10.0.0.11",
                        "--secondary", "10.0.0.12", "--arbiter", "10.0.0.13", "--allow", "10.0.0.0/24"],
                       check=True, capture_output=True)
        if os.environ.get("DBRS_BENCH_TLS") == "off":
            # compare with a tree from before TLS: `dbrs init` turns it on, so converge then also issues a certificate
            spec = tmp / "seed/etc/dbrs/cluster.toml"
            spec.write_text(spec.read_text().replace('tls = "required"', 'tls = "off"'))
            result["tls"] = "off"
        converge, noop, noop_cpu = [], [], []
        for i in range(runs):
            root = tmp / f"r{i}"
            shutil.copytree(tmp / "seed", root, symlinks=True)
            argv = [str(BIN / "dbrs-install"), "--root", str(root), "--role", "primary"]
            t = time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
            converge.append(time.perf_counter() - t)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
            noop.append(time.perf_counter() - t)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            noop_cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            assert out.splitlines()[-1].startswith("0 changed"), out
        result["converge_median_s"] = round(statistics.median(converge), 3)
        result["noop_median_s"] = round(statistics.median(noop), 3)
        result["noop_cpu_s"] = round(statistics.median(noop_cpu), 3)
    finally:
        shutil.rmtree(tmp)
    result["targets"] = {"help_median_ms": 80, "converge_median_s": 0.5, "noop_median_s": 0.3}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
