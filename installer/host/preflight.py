"""Preflight: is this host fit to run the members? OK / WARN / FAIL, before anything changes.

`read()` looks at the host (psutil, /proc, timedatectl); `evaluate()` is
pure. FAIL is kept for what would stop a mongod from working; the rest of
MongoDB's production notes are WARNs the operator may accept.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from .. import systemd

GIB = 1024**3
MIB = 1024**2


class Check(NamedTuple):
    level: str  # OK, WARN, FAIL
    name: str
    detail: str

    def line(self):
        return f"{self.level:4} {self.name}: {self.detail}"


@dataclass
class HostFacts:
    mem_total: int = 0
    swap_total: int = 0
    cpus: int = 0
    disk_free: int = 0
    fstype: str = ""
    kernel: str = ""
    clock_synced: str = ""        # "yes", "no" or "" (unknown)
    hostname: str = ""
    hostname_resolves: bool = True
    listeners: dict = field(default_factory=dict)  # port -> (pid, name, cmdline)
    unit_pids: dict = field(default_factory=dict)  # member name -> MainPID of dbrs-mongod@NAME (0: not running)


def _existing_parent(path):
    p = Path(path)
    while not p.exists():
        p = p.parent
    return p


def unit_main_pid(unit):
    """systemd's MainPID of `unit`, 0 when it is not running or systemctl is unavailable."""
    blocks = systemd.show([unit], ["MainPID"])
    pid = blocks[0].get("MainPID", "") if blocks else ""
    return int(pid) if pid.isdigit() else 0


def read(data_dir, ports, members=()):
    import psutil

    facts = HostFacts()
    facts.mem_total = psutil.virtual_memory().total
    facts.swap_total = psutil.swap_memory().total
    facts.cpus = os.cpu_count() or 0
    base = _existing_parent(data_dir)
    facts.disk_free = shutil.disk_usage(base).free
    best = ""
    for part in psutil.disk_partitions(all=True):
        if str(base).startswith(part.mountpoint) and len(part.mountpoint) >= len(best):
            best, facts.fstype = part.mountpoint, part.fstype
    facts.kernel = os.uname().release
    if shutil.which("timedatectl"):
        r = subprocess.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
                           capture_output=True, text=True)
        facts.clock_synced = r.stdout.strip() if r.returncode == 0 else ""
    facts.hostname = socket.gethostname()
    try:
        socket.getaddrinfo(facts.hostname, None)
    except socket.gaierror:
        facts.hostname_resolves = False
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, PermissionError):
        conns = []
    for c in conns:
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port in ports:
            name, cmdline = "", ""
            if c.pid:
                try:
                    proc = psutil.Process(c.pid)
                    name, cmdline = proc.name(), " ".join(proc.cmdline())
                except psutil.Error:
                    pass
            facts.listeners[c.laddr.port] = (c.pid, name, cmdline)
    if facts.listeners:
        facts.unit_pids = {m: unit_main_pid(f"dbrs-mongod@{m}.service") for m in members}
    return facts


def kernel_tuple(release):
    m = re.match(r"(\d+)\.(\d+)", release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def evaluate(facts, target):
    """Pure: the checks for installing `target.members` on a host with `facts`."""
    out = []
    data_members = len(target.data_bearing) or 1
    need = 512 * MIB * data_members
    if facts.mem_total < need:
        out.append(Check("FAIL", "memory", f"{facts.mem_total // MIB} MiB; {data_members} data-bearing member(s) need at least {need // MIB} MiB"))
    elif facts.mem_total < 2 * GIB * data_members:
        out.append(Check("WARN", "memory", f"{facts.mem_total // MIB} MiB; MongoDB wants 2 GiB or more per data-bearing member"))
    else:
        out.append(Check("OK", "memory", f"{facts.mem_total // MIB} MiB"))

    if facts.disk_free < 1 * GIB:
        out.append(Check("FAIL", "disk", f"{facts.disk_free // MIB} MiB free for the data directory; mongod needs at least 1 GiB"))
    elif facts.disk_free < 10 * GIB:
        out.append(Check("WARN", "disk", f"{facts.disk_free // GIB} GiB free for the data directory"))
    else:
        out.append(Check("OK", "disk", f"{facts.disk_free // GIB} GiB free"))

    if facts.fstype == "xfs":
        out.append(Check("OK", "filesystem", "xfs"))
    else:
        out.append(Check("WARN", "filesystem", f"{facts.fstype or 'unknown'}; MongoDB recommends XFS for WiredTiger"))

    out.append(Check("OK" if facts.cpus >= 2 else "WARN", "cpus", f"{facts.cpus}"))
    out.append(Check("OK" if facts.swap_total > 0 else "WARN", "swap",
                     f"{facts.swap_total // MIB} MiB" if facts.swap_total else
                     "none; a little swap keeps the OOM killer off mongod under memory pressure"))

    if target.version == "8.0" and kernel_tuple(facts.kernel) < (4, 18):
        out.append(Check("FAIL", "kernel", f"{facts.kernel}; MongoDB 8.0 needs Linux 4.18 or newer"))
    else:
        out.append(Check("OK", "kernel", facts.kernel))

    if facts.clock_synced == "yes":
        out.append(Check("OK", "clock", "synchronized"))
    else:
        out.append(Check("WARN", "clock", "not known to be synchronized (NTP); point-in-time restore trusts the clock"))

    out.append(Check("OK" if facts.hostname_resolves else "WARN", "hostname",
                     facts.hostname if facts.hostname_resolves else f"{facts.hostname} does not resolve; add it to /etc/hosts"))

    for m in target.members:
        if m.port not in facts.listeners:
            out.append(Check("OK", f"port {m.port}", "free"))
            continue
        pid, name, cmdline = facts.listeners[m.port]
        # Ours only if it is the unit's own process: a mongod started by hand with our config is not.
        if pid and facts.unit_pids.get(m.name) == pid:
            out.append(Check("OK", f"port {m.port}", f"member {m.name} already running (pid {pid})"))
        else:
            who = f"pid {pid} ({name})" if pid else "another process"
            out.append(Check("FAIL", f"port {m.port}", f"taken by {who}; stop it or change the port of member {m.name} in the spec"))
    return out


def failed(checks):
    return [c for c in checks if c.level == "FAIL"]
