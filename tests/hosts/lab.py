"""A PSA lab on real systemd hosts that stays up until you stop it: for trying dbrs by hand and for
black-box attack sessions (tests only; MongoDB's binaries are the stand-ins of tests/standins).

    sudo .venv/bin/python -m tests.hosts.lab [--cluster]      # boots m1 m2 m3 client outsider
    . /run/dbrs-lab/env.sh; lab m1 dbrs status                # run a command inside a host
    kill $(cat /run/dbrs-lab/pid)                             # power everything off and clean up

Without --cluster the hosts have dbrs installed (/opt/dbrs/venv, /usr/local/bin/dbrs{,-install}) and
nothing configured; with it, `dbrs init` + `dbrs-install --no-packages --role …` ran as in the
scenarios (bundle passphrase in /root/bundle.pass on each host).
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
from pathlib import Path

from . import product
from .testbed import HOST_ENV, Testbed, cleanup_stale

NET = {"m1": "10.77.0.11", "m2": "10.77.0.12", "m3": "10.77.0.13", "client": "10.77.0.20", "outsider": "10.77.0.30"}
ROLES = {"m1": "primary", "m2": "secondary", "m3": "arbiter"}
STATE = Path("/run/dbrs-lab")


def write_env(hosts):
    STATE.mkdir(exist_ok=True)
    for name, h in hosts.items():
        (STATE / f"{name}.pid").write_text(f"{h.leader}\n")
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in HOST_ENV.items())
    (STATE / "env.sh").write_text(
        "# lab HOST CMD...: run CMD inside a lab host (real systemd PID 1, its own network namespace)\n"
        f'lab() {{ h=$1; shift; nsenter -t "$(cat {STATE}/$h.pid)" -a -- env -i {env} "$@"; }}\n')
    (STATE / "pid").write_text(f"{os.getpid()}\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cluster", action="store_true", help="also init and install the PSA set")
    args = ap.parse_args(argv)
    cleanup_stale()
    wheels = product.wheelhouse(log=print)
    tb = Testbed(rootfs=product.member_rootfs(log=print))
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    try:
        hosts = tb.boot(NET)
        for n in ("m1", "m2", "m3", "client"):
            product.install_product(hosts[n], wheels, "8.0", NET)
        hosts["outsider"].run(["sh", "-c", "cat >> /etc/hosts"], input="".join(f"{ip}\t{h}\n" for h, ip in NET.items()))
        if args.cluster:
            m1 = hosts["m1"]
            for n in ("m1", "m2", "m3"):
                hosts[n].write_file("/root/bundle.pass", "correct horse battery staple\n", 0o600)
            m1.run(["dbrs", "init", "--primary", NET["m1"], "--secondary", NET["m2"], "--arbiter", NET["m3"],
                    "--allow", NET["client"] + "/32", "--passphrase-file", "/root/bundle.pass"])
            bundle = m1.read_file("/etc/dbrs/bundle.dbrs")
            for n in ("m2", "m3"):
                hosts[n].write_file("/root/bundle.dbrs", bundle, 0o600)
            import concurrent.futures

            def install(n):
                a = ["dbrs-install", "--no-packages", "--role", ROLES[n]]
                if n != "m1":
                    a += ["--bundle", "/root/bundle.dbrs", "--passphrase-file", "/root/bundle.pass"]
                return hosts[n].run(a, check=False, timeout=600)

            with concurrent.futures.ThreadPoolExecutor(3) as ex:
                first = ex.submit(install, "m1")
                time.sleep(1)
                rest = [ex.submit(install, n) for n in ("m2", "m3")]
                for r in [first.result(), *(f.result() for f in rest)]:
                    print(f"$ {' '.join(r.args)}  -> exit {r.returncode}\n{r.stdout[-1500:]}{r.stderr[-1500:]}")
        write_env(hosts)
        print(f"lab up: {', '.join(f'{n}={ip}' for n, ip in NET.items())}; `. {STATE}/env.sh; lab m1 dbrs status`;"
              f" stop with `kill {os.getpid()}`", flush=True)
        while not stop:
            time.sleep(1)
    finally:
        tb.close()
        for p in STATE.glob("*"):
            p.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
