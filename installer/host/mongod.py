"""A member's mongod on this host: its config, directories and systemd unit. Pure."""

from __future__ import annotations

import ipaddress

from .. import mongod_options, paths, tls
from .items import Dir, File, Service, unit_path
from ..render import render

UNIT = "dbrs-mongod@.service"
OWNER = "mongodb"


def instance(member):
    return f"dbrs-mongod@{member.name}.service"


def bind_ips(member, addresses):
    """Loopback (for the localhost exception and local tools) plus the member's own address."""
    ips = ["127.0.0.1"]
    for ip in addresses.get(member.host, ()) or ((member.host,) if _is_ip(member.host) else ()):
        if ip not in ips and not ipaddress.ip_address(ip).is_loopback:
            ips.append(ip)
    if any(":" in ip for ip in ips):
        ips.insert(1, "::1")
    return ips


def _is_ip(text):
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


GIB = 1024**3


def cache_size_gb(target, member):
    """WiredTiger cache for members sharing a host, or None for MongoDB's own default.

    Each mongod takes 50% of (RAM - 1 GB) by default; two data-bearing
    members on one host (the single-host layout) would claim it all. MongoDB
    says to lower cacheSizeGB then: split that half between them.
    """
    if not target.memory_bytes or member.arbiter:
        return None
    sharing = [m for m in target.host_members if m.data_bearing and m.host.lower() == member.host.lower()]
    if len(sharing) < 2:
        return None
    return max(0.25, round(0.5 * (target.memory_bytes - GIB) / len(sharing) / GIB, 2))


def extra_options(target, member):
    """(nested options, comments by dotted key) that go into the member's mongod.conf beyond dbrs' own.

    The spec's [mongod] table, the member's own on top, the oplog size, and
    the cache split unless the operator chose a cache size.
    """
    flat = mongod_options.merged(target.spec.mongod, member.mongod)
    notes = {}
    key = "storage.wiredTiger.engineConfig.cacheSizeGB"
    if key not in flat:
        gb = cache_size_gb(target, member)
        if gb:
            flat[key] = gb
            notes[key] = "%.2f GB: this host runs more than one data-bearing member" % gb
    if target.spec.cluster.oplog_size_mb:
        flat["replication.oplogSizeMB"] = target.spec.cluster.oplog_size_mb
        notes["replication.oplogSizeMB"] = ("cluster.oplog_size_mb; mongod reads it only when it creates the oplog, "
                                            "a running member is resized with replSetResizeOplog")
    return mongod_options.nest(flat), notes


def conf(target, member):
    ips = bind_ips(member, target.addresses)
    extra, notes = extra_options(target, member)
    return render(
        "mongod/mongod.conf.j2",
        member=member,
        cluster=target.spec.cluster,
        spec_path=target.spec_path,
        data_dir=paths.member_data(member.name),
        log_dir=paths.member_log(member.name),
        bind_ip=ips,
        ipv6=any(":" in ip for ip in ips),
        keyfile=target.etc / "keyfile",
        extra=extra,
        notes=notes,
        tls=tls.server(target.spec.cluster.tls, member.name, target.etc, target.spec.cluster.cluster_auth,
                       step=target.tls_step),
    )


def unit(target, on_failure=None):
    return render(
        f"systemd/{UNIT}.j2",
        cluster=target.spec.cluster,
        glibc_rseq_off=target.version == "8.0",
        mongod=paths.MONGOD,
        etc=target.etc,
        data=paths.DATA,
        log=paths.LOG,
        on_failure=on_failure,
    )


def items(target, on_failure=None):
    out = [
        Dir(str(paths.DATA), 0o755),
        Dir(str(paths.LOG), 0o755),
        File(unit_path(UNIT), unit(target, on_failure), 0o644, notify=(UNIT,)),
        File(str(paths.LOGROTATE), render("logrotate/dbrs.j2", log=paths.LOG), 0o644),
    ]
    for m in target.members:
        out += [
            Dir(str(target.etc / m.name), 0o755),
            Dir(str(paths.member_data(m.name)), 0o700, OWNER, OWNER),
            Dir(str(paths.member_log(m.name)), 0o750, OWNER, OWNER),
            File(str(target.etc / m.name / "mongod.conf"), conf(target, m), 0o644, notify=(instance(m),)),
        ]
    return out


def services(target):
    return [Service(instance(m), start=target.start) for m in target.members]
