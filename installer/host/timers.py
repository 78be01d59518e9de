"""The dbrs timers: backup, oplog slices, verification, the certificate check, and the alert handler. Pure.

The backup timers go to hosts with a data-bearing member only (an arbiter has
no data to dump); the certificate check to every member host of a cluster
with TLS on (an arbiter's certificate expires too); every host gets
dbrs-alert@.service, since every dbrs unit names it in OnFailure=.
"""

from __future__ import annotations

from .. import paths
from .items import Dir, File, Service, unit_path
from ..render import render

ALERT = "dbrs-alert@.service"
ON_FAILURE = "dbrs-alert@%n.service"
PACKAGED = "/usr/bin/dbrs"
TIMERS = ("dbrs-backup.timer", "dbrs-oplog.timer", "dbrs-verify.timer")
CERTS_TIMER = "dbrs-certs.timer"


def _values(target, on_failure, dbrs):
    spec = target.spec
    return dict(
        cluster=spec.cluster,
        dbrs=dbrs,
        spec_path=target.spec_path,
        etc=target.etc,
        backup_dir=spec.backup.dir,
        state_dir=paths.STATE_DIR,
        textfile_dir=spec.alerts.textfile_dir,
        on_failure=on_failure,
    )


def items(target, on_failure=None, dbrs=None):
    # A --root staging tree is for a host that gets the packaged dbrs in /usr/bin.
    dbrs = dbrs or target.dbrs_bin or PACKAGED
    v = _values(target, on_failure, dbrs)
    out = [
        Dir(str(paths.STATE_DIR), 0o700),
        File(unit_path(ALERT), render(f"systemd/{ALERT}.j2", **v), 0o644),
    ] + certs_items(target, v)
    if not target.data_bearing:
        return out
    b = target.spec.backup
    out += [
        Dir(b.dir, 0o700),
        File(unit_path("dbrs-backup.service"), render("systemd/dbrs-backup.service.j2", **v), 0o644),
        File(unit_path("dbrs-backup.timer"), render("systemd/dbrs-backup.timer.j2", schedule=b.schedule, **v), 0o644,
             notify=("dbrs-backup.timer",)),
        File(unit_path("dbrs-oplog.service"), render("systemd/dbrs-oplog.service.j2", **v), 0o644),
        File(unit_path("dbrs-oplog.timer"), render("systemd/dbrs-oplog.timer.j2", every=b.oplog_every, **v), 0o644,
             notify=("dbrs-oplog.timer",)),
        File(unit_path("dbrs-verify.service"), render("systemd/dbrs-verify.service.j2", **v), 0o644),
        File(unit_path("dbrs-verify.timer"), render("systemd/dbrs-verify.timer.j2", schedule=b.verify_schedule, **v),
             0o644, notify=("dbrs-verify.timer",)),
    ]
    return out + offsite_items(target, v)


def services(target):
    certs = [Service(CERTS_TIMER, start=target.start)] if certs_checked(target) else []
    if not target.data_bearing:
        return certs
    return certs + [Service(t, start=target.start) for t in TIMERS + offsite_timers(target)]


def certs_checked(target):
    """A host with members of a cluster that has TLS on: its certificates can expire."""
    return bool(target.members) and target.spec.cluster.tls != "off"


def certs_items(target, values):
    if not certs_checked(target):
        return []
    return [File(unit_path("dbrs-certs.service"), render("systemd/dbrs-certs.service.j2", **values), 0o644),
            File(unit_path(CERTS_TIMER), render("systemd/dbrs-certs.timer.j2", **values), 0o644,
                 notify=(CERTS_TIMER,))]


# Off-site copies (issue 12): on data-bearing hosts of a spec with [[offsite]] targets.
OFFSITE_TIMER = "dbrs-offsite.timer"


def offsite_timers(target):
    return (OFFSITE_TIMER,) if target.data_bearing and target.spec.offsite else ()


def offsite_items(target, values):
    if not offsite_timers(target):
        return []
    offsite = target.spec.offsite
    v = dict(values, targets=[t.name for t in offsite], path_targets=[t.path for t in offsite if t.type == "path"])
    return [
        File(unit_path("dbrs-offsite.service"), render("systemd/dbrs-offsite.service.j2", **v), 0o644),
        File(unit_path(OFFSITE_TIMER), render("systemd/dbrs-offsite.timer.j2", **v), 0o644,
             notify=(OFFSITE_TIMER,)),
    ]
