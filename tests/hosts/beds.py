"""What the cluster scenarios of the hosts tier share: booting a bed with dbrs on its hosts, installing a PSA
set from the bundle (the primary's host first, its bootstrap waiting for the other two), and reading results."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import time

import pytest

from . import product
from .testbed import Testbed, TestbedError, cleanup_stale

ROLES = {"m1": "primary", "m2": "secondary", "m3": "arbiter"}
PASS = "/root/bundle.pass"
BUNDLE = "/root/bundle.dbrs"


def parallel(fn, items):
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(items)) as ex:
        return dict(zip(items, ex.map(fn, items)))


def out(r):
    return f"exit {r.returncode}\n--- stdout\n{r.stdout[-3000:]}\n--- stderr\n{r.stderr[-3000:]}"


def healthy_status(h):
    """`dbrs status --json` when it says the set is healthy, else None (for wait_until)."""
    r = h.run(["dbrs", "status", "--json"], check=False, timeout=60)
    if r.returncode != 0:
        return None
    st = json.loads(r.stdout)
    return st if st["ok"] else None


@contextlib.contextmanager
def booted(request, net, prepare):
    """A bed of the hosts in `net`, each readied by `prepare(name, host, wheels)` in parallel; skips when the
    member rootfs cannot be built, and always closes."""
    cleanup_stale()
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    log = (lambda m: reporter.write_line(m)) if reporter else None
    try:
        rootfs = product.member_rootfs(log=log)
    except (TestbedError, OSError) as e:
        pytest.skip(f"tier-3 member rootfs cannot be built: {e}")
    wheels = product.wheelhouse(log=log)
    tb = Testbed(rootfs=rootfs)
    try:
        hosts = tb.boot(net)
        parallel(lambda n: prepare(n, hosts[n], wheels), list(net))
        yield tb, hosts
    finally:
        tb.close()


def install_psa(hosts, extra=()):
    """dbrs-install on m1/m2/m3 (`--bundle` on m2/m3), m1 first: its bootstrap waits for the other two."""
    def install(n):
        args = ["dbrs-install", *extra, "--role", ROLES[n]]
        if n != "m1":
            args += ["--bundle", BUNDLE, "--passphrase-file", PASS]
        return hosts[n].run(args, check=False, timeout=300)

    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as ex:
        first = ex.submit(install, "m1")
        time.sleep(1)
        rest = {n: ex.submit(install, n) for n in ("m2", "m3")}
        return {"m1": first.result(), **{n: f.result() for n, f in rest.items()}}
