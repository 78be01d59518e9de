"""OS tuning from MongoDB's production notes, by MongoDB version. Pure.

8.0 moved to TCMalloc with per-CPU caches: transparent huge pages now help
(enabled=always, defrag=defer+madvise, khugepaged max_ptes_none=0) and glibc's
rseq must be off. 7.0 and older want THP disabled.
"""

from __future__ import annotations

from .. import paths
from .items import File, Service, unit_path
from ..render import render

UNIT = "dbrs-tuning.service"
THP = "/sys/kernel/mm/transparent_hugepage"

SYSCTL = (
    ("vm.swappiness", 1),
    ("vm.max_map_count", 262144),
    ("vm.zone_reclaim_mode", 0),
    ("vm.dirty_ratio", 15),
    ("vm.dirty_background_ratio", 5),
    ("net.core.somaxconn", 4096),
    ("net.ipv4.tcp_keepalive_time", 120),
    ("net.ipv4.tcp_fastopen", 3),
)


def thp(version):
    if version == "8.0":
        return (
            (f"{THP}/enabled", "always"),
            (f"{THP}/defrag", "defer+madvise"),
            (f"{THP}/khugepaged/max_ptes_none", "0"),
        )
    return ((f"{THP}/enabled", "never"), (f"{THP}/defrag", "never"))


def items(target, on_failure=None):
    return [
        File(str(paths.SYSCTL), render("sysctl/60-dbrs.conf.j2", sysctl=SYSCTL), 0o644, notify=(UNIT,)),
        File(unit_path(UNIT), render(
            "systemd/dbrs-tuning.service.j2",
            version=target.version, sysctl_file=paths.SYSCTL, thp=thp(target.version), on_failure=on_failure,
        ), 0o644, notify=(UNIT,)),
    ]


def services(target):
    return [Service(UNIT, start=target.start)]
