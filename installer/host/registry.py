"""Every kind of host item and the three things dbrs does with it: read its fact, compare, act.

pyinfra's facts/operations idea: a new kind of item is one `Handler` in
`HANDLERS`, and `gather`, `compare` and `apply` only look it up. An item of
a type with no handler stops the plan before anything is read or changed.
"""

from __future__ import annotations

from . import facts, items, steps
from .firewall import Table, compare_table


class Handler:
    """How one kind of item is read (`read(item, root, live)` -> fact), compared
    (`compare(item, fact, seen)` -> Change) and acted on (`act(item, actions, root, live)`).
    `slow`: the step can take minutes (network, apt), so the CLI says it is under way first."""

    __slots__ = ("read", "compare", "act", "slow")

    def __init__(self, read, compare, act, slow=False):
        self.read, self.compare, self.act, self.slow = read, compare, act, slow


def _path(item, root, live):
    return facts.path(root, item.path)


HANDLERS = {
    items.User: Handler(lambda item, root, live: facts.user_exists(item.name), items.compare_user, steps.user),
    items.AptKey: Handler(lambda item, root, live: facts.path(root, item.path, read_content=False),
                          items.compare_aptkey, steps.aptkey, slow=True),
    items.Packages: Handler(lambda item, root, live: facts.installed_packages(item.names) if live else set(item.names),
                            items.compare_packages, steps.packages, slow=True),
    items.NpmPackage: Handler(lambda item, root, live: facts.npm_version(root, item.prefix, item.name),
                              items.compare_npm, steps.npm, slow=True),
    items.Dir: Handler(_path, items.compare_dir, steps.directory),
    items.File: Handler(_path, items.compare_file, steps.file),
    items.Link: Handler(_path, items.compare_link, steps.link),
    items.Absent: Handler(_path, items.compare_absent, steps.absent),
    items.Service: Handler(lambda item, root, live: facts.service(item.unit) if live else items.ServiceFact("enabled", "active"),
                           items.compare_service, steps.service),
    Table: Handler(lambda item, root, live: facts.nft_table("inet", "dbrs") if live else facts.NFT_UNKNOWN,
                   compare_table, steps.table),
}


def handler(item):
    try:
        return HANDLERS[type(item)]
    except KeyError:
        raise TypeError(f"no handler for {type(item).__name__} items ({item!r:.80}): register one in "
                        "installer/host/registry.py") from None


def check(desired):
    """Every item has a handler; called when the plan is made, before the host is read."""
    for item in desired:
        handler(item)


def gather(desired, root, live):
    """Facts for every desired item, keyed like the items."""
    return {item.key: handler(item).read(item, root, live) for item in desired}


def compare(desired, found, *, chown=True):
    """Set each desired item against its fact in `found` (keyed by item.key), in order: a Service is
    "changed" when it is not enabled/running, or when a file that notifies it changed in this plan."""
    seen = items.Seen(chown)
    return [handler(item).compare(item, found.get(item.key), seen) for item in desired]
