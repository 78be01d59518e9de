"""Host facts: read-only looks at the host, each a small read plus a pure parser.

Nothing here changes the host. Paths are read under `root` (the staging
tree of `--root`, or "/"), so the planner compares against exactly the tree
the writer will change.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
import subprocess
from pathlib import Path

from .. import systemd
from ..fsutil import under
from ..machine import which
from .items import PathFact, ServiceFact
from .target import OsRelease


def _name(lookup, ident):
    try:
        return lookup(ident)[0]
    except KeyError:
        return str(ident)


def path(root, host_path, read_content=True):
    p = under(root, host_path)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return PathFact(False)
    owner = _name(pwd.getpwuid, st.st_uid)
    group = _name(grp.getgrgid, st.st_gid)
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        return PathFact(True, "link", target=os.readlink(p), owner=owner, group=group)
    if stat.S_ISDIR(st.st_mode):
        return PathFact(True, "dir", mode=mode, owner=owner, group=group, mtime_ns=st.st_mtime_ns)
    if stat.S_ISREG(st.st_mode):
        content = p.read_bytes() if read_content else b""
        return PathFact(True, "file", content, mode, owner, group, mtime_ns=st.st_mtime_ns)
    return PathFact(True, "other", mode=mode, owner=owner, group=group)


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def parse_dpkg_query(text):
    """Installed package names from `dpkg-query -W -f '${Package} ${db:Status-Status}\\n'`."""
    out = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == "installed":
            out.add(parts[0])
    return out


def installed_packages(names):
    if not which("dpkg-query"):
        return set()
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n", *names],
                       capture_output=True, text=True)
    return parse_dpkg_query(r.stdout)


def parse_npm_package_json(text):
    """The "version" of an installed npm package's package.json, or "" when unreadable."""
    import json

    try:
        version = json.loads(text).get("version", "")
    except (ValueError, AttributeError):
        return ""
    return version if isinstance(version, str) else ""


def npm_version(root, prefix, name):
    """Version of `name` installed by `npm install --prefix PREFIX`, "" when absent."""
    try:
        return parse_npm_package_json(under(root, f"{prefix}/node_modules/{name}/package.json").read_text())
    except (OSError, UnicodeDecodeError):
        return ""


SERVICE_PROPERTIES = ("UnitFileState", "ActiveState", "ConditionResult", "ConditionTimestampMonotonic", "LoadState")


def parse_systemctl_show(text):
    """ServiceFact from `systemctl show` of SERVICE_PROPERTIES for one unit."""
    blocks = systemd.parse_show(text)
    return service_fact(blocks[0] if blocks else {})


def service_fact(values):
    """ServiceFact from one unit's {property: value}."""
    # A unit whose conditions were never checked (never started) also says ConditionResult=no.
    checked = values.get("ConditionTimestampMonotonic", "1") != "0"
    return ServiceFact(
        enabled=values.get("UnitFileState", ""),
        active=values.get("ActiveState", ""),
        condition=values.get("ConditionResult", "") if checked else "",
        loaded=values.get("LoadState", "") == "loaded",
    )


def service(unit):
    blocks = systemd.show([unit], SERVICE_PROPERTIES)
    return service_fact(blocks[0]) if blocks else ServiceFact(loaded=False)


def parse_running_members(text):
    """Member names from `systemctl list-units --plain --no-legend 'dbrs-mongod@*'`."""
    out = []
    for line in text.splitlines():
        unit = line.split()[0] if line.split() else ""
        if unit.startswith("dbrs-mongod@") and unit.endswith(".service"):
            out.append(unit[len("dbrs-mongod@"):-len(".service")])
    return out


def running_members():
    """Members whose mongod runs (or is starting) on this host: their keyfile is in use."""
    if not which("systemctl"):
        return []
    r = subprocess.run(["systemctl", "list-units", "--type=service", "--state=active,activating,reloading",
                        "--plain", "--no-legend", "dbrs-mongod@*"], capture_output=True, text=True)
    return parse_running_members(r.stdout) if r.returncode == 0 else []


NFT_UNKNOWN = "?"  # nft cannot tell (no nft, not root): judge nothing


def parse_nft_list_table(returncode, stdout, stderr):
    """The listing of `nft list table FAMILY NAME`; None when there is no such table."""
    if returncode == 0:
        return stdout
    if "No such file or directory" in stderr:
        return None
    return NFT_UNKNOWN


def nft_table(family, name):
    """The table as loaded in the kernel right now (nft's listing), None when absent."""
    nft = which("nft") or ("/usr/sbin/nft" if os.access("/usr/sbin/nft", os.X_OK) else None)
    if not nft:
        return NFT_UNKNOWN
    r = subprocess.run([nft, "list", "table", family, name], capture_output=True, text=True)
    return parse_nft_list_table(r.returncode, r.stdout, r.stderr)


def firewall_state(spec_path):
    """(firewall.nft next to the spec or None, the loaded table's listing or None, the unit's ActiveState):
    what `dbrs status` judges this host's firewall by. The listing is NFT_UNKNOWN when nft cannot tell."""
    try:
        text = (Path(spec_path).parent / "firewall.nft").read_text()
    except (OSError, UnicodeDecodeError):
        return None, None, None
    active = service("dbrs-firewall.service").active if which("systemctl") else None
    return text, nft_table("inet", "dbrs"), active or None


def parse_os_release(text):
    values = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            values[k.strip()] = v.strip().strip('"').strip("'")
    return OsRelease(values.get("ID", ""), values.get("VERSION_ID", ""), values.get("VERSION_CODENAME", ""))


def os_release(root=None):
    for candidate in ("/etc/os-release", "/usr/lib/os-release"):
        p = under(root, candidate)
        if p.exists():
            return parse_os_release(p.read_text())
    return OsRelease("", "", "")


def in_container():
    """systemd-detect-virt --container; falls back to the markers systemd itself reads."""
    if which("systemd-detect-virt"):
        r = subprocess.run(["systemd-detect-virt", "--container", "--quiet"])
        return r.returncode == 0
    return Path("/run/systemd/container").exists() or Path("/.dockerenv").exists()


def dbrs_bin():
    """Absolute path of this installation's `dbrs` script, for the units' ExecStart= (None if not found)."""
    import sysconfig

    here = os.path.join(sysconfig.get_path("scripts"), "dbrs")
    return here if os.access(here, os.X_OK) else which("dbrs")


def memory_total():
    import psutil

    return psutil.virtual_memory().total
