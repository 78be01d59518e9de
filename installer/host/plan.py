"""The plan: every item a host should hold for a target, in apply order. Pure.

`desired()` turns a target (spec, the members to install, host facts,
secrets) into a list of items; `registry.compare()` sets them against the host.
Item order is apply order: users and packages, then directories and files,
then services (tuning, firewall, mongod).
"""

from __future__ import annotations

from . import firewall, mongo_express, mongod, packages, registry, timers, tuning
from .items import Dir, User


# ------------------------------------------------------------------ desired

def desired(target):
    """Every item this host should hold for `target`, in apply order.

    Under --root (target.live False) there are no
    users, packages or services: the staging tree gets the files only.
    """
    items = []
    if target.live:
        items.append(User("mongodb", "/var/lib/mongodb"))
    if target.live:
        items += packages.items(target)
    items.append(Dir(str(target.etc), 0o755))
    items += target.secret_files
    items += tuning.items(target, on_failure=timers.ON_FAILURE)
    items += firewall.items(target, on_failure=timers.ON_FAILURE)
    items += mongod.items(target, on_failure=timers.ON_FAILURE)
    items += timers.items(target, on_failure=timers.ON_FAILURE)
    if target.live:
        items += tuning.services(target) + firewall.services(target) + mongod.services(target)
        items += timers.services(target)
    items += mongo_express.items(target, on_failure=timers.ON_FAILURE)
    items += mongo_express.services(target) if target.live else []
    _check_unique(items)
    registry.check(items)
    return items


def _check_unique(items):
    seen = {}
    for item in items:
        if item.key in seen and seen[item.key] != item:
            raise ValueError(f"two different desired states for {item.key}")
        seen[item.key] = item
