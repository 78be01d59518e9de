"""A testinfra backend that runs commands inside a systemd-nspawn host through ``nsenter``.

Why: the tier-3 test bed boots hosts with ``--register=no`` and no sshd, so neither testinfra's
ssh nor its machinectl-style backends can reach them. Entering every namespace of the host's
PID 1 is what an operator's shell on that host would see, so the same testinfra checks can run
here and against the Vagrant VMs (over ssh).

Use ``NsenterBackend(leader)`` directly (``leader`` is a PID or a callable returning the current
PID, which changes when the host reboots), or ``testinfra.get_host("nsenter://PID")`` /
``nsenter:///path/to/leader-file`` after importing this module (it registers itself).
"""

from __future__ import annotations

import subprocess
from typing import Any, Callable, Union

import testinfra.backend
import testinfra.host
from testinfra.backend import base

# A fixed environment: the test runner's PATH (pyenv shims, venvs) means nothing inside the host.
HOST_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "TERM": "dumb",
}

Leader = Union[int, str, Callable[[], int]]


def resolve_leader(leader: Leader) -> int:
    """Return the current PID 1 of the host: an int, a callable, a PID string or a file holding one."""
    if callable(leader):
        return int(leader())
    if isinstance(leader, int):
        return leader
    if leader.isdigit():
        return int(leader)
    with open(leader, encoding="ascii") as f:
        return int(f.read().strip())


class NsenterBackend(base.BaseBackend):
    """testinfra backend: ``nsenter -t LEADER -a -- /bin/sh -c COMMAND``."""

    NAME = "nsenter"

    def __init__(self, hostname: Leader, *args: Any, timeout: float = 120, **kwargs: Any):
        self._leader = hostname
        self.timeout = timeout
        super().__init__(str(hostname) if not callable(hostname) else "nsenter", *args, **kwargs)

    def run(self, command: str, *args: str, **kwargs: Any) -> base.CommandResult:
        cmd = self.get_command(command, *args)
        pid = resolve_leader(self._leader)
        p = subprocess.run(
            ["nsenter", "-t", str(pid), "-a", "--", "/bin/sh", "-c", cmd],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=HOST_ENV,
            timeout=self.timeout,
        )
        return self.result(p.returncode, self.encode(cmd), p.stdout, p.stderr)


def get_host(leader: Leader, **kwargs: Any) -> testinfra.host.Host:
    """A testinfra Host whose modules (file, service, socket, run…) act inside the nspawn host."""
    return testinfra.host.Host(NsenterBackend(leader, **kwargs))


testinfra.backend.BACKENDS.setdefault("nsenter", f"{__name__}.NsenterBackend")
