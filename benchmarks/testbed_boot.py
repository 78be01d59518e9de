"""Measure the tier-3 test bed: boot, reboot and teardown times of systemd-nspawn hosts (root only).

Why: host tests are only worth running on every CI run if a host costs about a second; this keeps
that claim checkable. Usage: ``sudo python3 benchmarks/testbed_boot.py [N_HOSTS] [ROUNDS]``.
"""

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "hosts"))
import testbed  # noqa: E402


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    t = time.monotonic()
    rootfs = testbed.ensure_rootfs(log=print)
    print(f"rootfs ready in {time.monotonic() - t:.2f} s: {rootfs}")
    boots, reboots, closes = [], [], []
    for _ in range(rounds):
        tb = testbed.Testbed(rootfs=rootfs)
        try:
            t = time.monotonic()
            hosts = tb.boot({f"b{i}": f"10.77.0.{11 + i}" for i in range(n)})
            boots.append(time.monotonic() - t)
            t = time.monotonic()
            next(iter(hosts.values())).reboot()
            reboots.append(time.monotonic() - t)
        finally:
            t = time.monotonic()
            tb.close()
            closes.append(time.monotonic() - t)
    med = statistics.median
    print(f"boot {n} hosts to 'running' (parallel): median {med(boots):.2f} s ({med(boots) / n:.2f} s/host)")
    print(f"reboot one host: median {med(reboots):.2f} s")
    print(f"close bed of {n} (poweroff + cleanup): median {med(closes):.2f} s")
    left = testbed.leftovers()
    print("leftovers:", "none" if not any(left.values()) else left)


if __name__ == "__main__":
    main()
