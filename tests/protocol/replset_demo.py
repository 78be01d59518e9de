"""Real `dbrs` output for the README's replica-set section, against the protocol tier's stand-in set.

    .venv/bin/python -m tests.protocol.replset_demo

Runs dbrs as a child process with stderr not a terminal (as in a journal, CI or `| tee`), so the progress
lines are the ones an operator sees there. Nothing here is shipped.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..conftest import write_cluster
from .conftest import PSA_ROLES, spec_text
from .standin import StandInSet


def run(path, *args):
    print(f"$ dbrs {' '.join(args)}")
    p = subprocess.run([sys.executable, "-c", "from installer.cli import main; main()", *args, "--config", path],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(p.stdout.rstrip())
    print(f"[exit {p.returncode}]\n")


def main():
    rs = StandInSet(PSA_ROLES)
    for name in ("mongod1", "mongod3"):
        rs.member(name).start()
    path = str(write_cluster(Path(tempfile.mkdtemp()), spec_text(rs)))
    # the secondary's host comes up 12 s late
    late = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(12)"])
    import threading

    threading.Thread(target=lambda: (late.wait(), rs.member("mongod2").start()), daemon=True).start()
    run(path, "bootstrap")
    rs.member("mongod2").stop()
    time.sleep(4)
    run(path, "bootstrap")
    run(path, "status")
    run(path, "degrade", "mongod2")
    rs.member("mongod2").start()
    rs.catching_up("mongod2", behind_s=50, per_s=4)
    run(path, "recover", "mongod2")
    run(path, "stepdown", "--secs", "5")
    rs.stop()


if __name__ == "__main__":
    main()
