"""The nftables table `inet dbrs`: members and allowed networks reach mongod, nobody else. Pure.

The table carries a digest of the file it was loaded from (in the drop
rule's comment), so "is the table in the kernel the one firewall.nft
describes?" is one `nft list table` away: `dbrs-install` reloads it when it
is missing or stale, `dbrs status` reports it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from typing import NamedTuple

from ..errors import InputError
from .items import Action, Change, File, Link, Service, unit_path
from ..render import render
from .preflight import Check

UNIT = "dbrs-firewall.service"
TABLE = ("inet", "dbrs")
# nftables.service (Debian) flushes the whole ruleset on start and reload; this link makes
# its start pull ours in again, the way `systemctl enable` does from [Install] WantedBy=.
NFTABLES_WANTS = "/etc/systemd/system/nftables.service.wants/" + UNIT
_DIGEST_RE = re.compile(r"dbrs ruleset ([0-9a-f]{16})")


def networks(cidrs, version):
    """The allow networks of one IP version, merged: nft refuses overlapping intervals in a set
    ("conflicting intervals specified"), and "office + VPN inside it" is a normal list."""
    nets = [ipaddress.ip_network(c) for c in cidrs]
    return [str(n) for n in ipaddress.collapse_addresses(n for n in nets if n.version == version)]


def open_to_all(cidrs):
    """The allow entries that let every address in (0.0.0.0/0, ::/0)."""
    return [c for c in cidrs if ipaddress.ip_network(c).prefixlen == 0]


def warnings(spec):
    return [f"cluster.allow: {c} lets every address reach mongod, so the firewall guards nothing for "
            f"IPv{ipaddress.ip_network(c).version} (list your client networks instead)" for c in open_to_all(spec.cluster.allow)]


def checks(spec):
    """The warnings above as preflight lines of dbrs-install (WARN: they never stop it)."""
    return [Check("WARN", "firewall", w) for w in warnings(spec)]


def ruleset(spec, host_members, addresses):
    """Render the ruleset for the mongod ports of `host_members`.

    Every member of the set (on any host) may connect: replication and
    heartbeats go both ways. Hostnames must have been resolved into
    `addresses`; a member without an address would be locked out silently.
    """
    members4, members6 = set(), set()
    for i, m in enumerate(spec.members):
        ips = addresses.get(m.host)
        if not ips:
            try:
                ips = (str(ipaddress.ip_address(m.host)),)
            except ValueError:
                raise InputError(f"members[{i}].host", f"{m.host!r} does not resolve here, and the firewall needs "
                                 "its address", "add it to /etc/hosts or use the IP in the spec") from None
        for ip in ips:
            addr = ipaddress.ip_address(ip)
            if addr.is_loopback:
                continue
            (members6 if addr.version == 6 else members4).add(str(addr))
    values = dict(
        members4=sorted(members4, key=ipaddress.ip_address),
        members6=sorted(members6, key=ipaddress.ip_address),
        allow4=networks(spec.cluster.allow, 4),
        allow6=networks(spec.cluster.allow, 6),
        ports=sorted({m.port for m in host_members}),
    )
    digest = hashlib.sha256(render("firewall/firewall.nft.j2", digest="", **values)).hexdigest()[:16]
    return render("firewall/firewall.nft.j2", digest=digest, **values)


def digest_of(text):
    """The ruleset digest in a rendered file or in `nft list table` output, or None."""
    m = _DIGEST_RE.search(text)
    return m.group(1) if m else None


class Table(NamedTuple):
    """The table in the kernel must be the one `path` describes (by its digest)."""

    path: str
    digest: str

    kind = "nftable"

    @property
    def key(self):
        return "nftable:inet dbrs"

    def label(self):
        return "firewall table inet dbrs"

    def reasons(self, listing):
        return table_reasons(self.digest, listing)


def compare_table(item, listing, seen):
    """Change for the loaded table; nft cannot tell ("?": no nft, not root) judges nothing."""
    reasons = [] if listing == "?" else item.reasons(listing)
    return Change(item, "changed" if reasons else "unchanged", reasons, actions=(Action.RELOAD_TABLE,) if reasons else ())


def table_reasons(digest, listing):
    """Why the loaded table needs a reload, from `nft list table inet dbrs` (None: no such table). Pure."""
    if listing is None:
        return ["not loaded"]
    loaded = digest_of(listing)
    if loaded != digest:
        return [f"loaded {loaded or 'unknown'} != firewall.nft {digest}"]
    return []


def problems(file_text, listing, unit_active):
    """What `dbrs status` says about this host's firewall. Pure.

    `file_text` is /etc/dbrs/firewall.nft (None: no member here, nothing to
    guard), `listing` the table as nft lists it (None: not loaded).
    """
    if file_text is None or listing == "?":
        return []
    fix = "run `sudo dbrs-install` (or `systemctl restart dbrs-firewall`) to load it again"
    if listing is None:
        return [f"the firewall table inet dbrs is not loaded: the mongod ports are open to every host; {fix}"]
    out = []
    if digest_of(listing) != digest_of(file_text):
        out.append(f"the firewall table inet dbrs differs from /etc/dbrs/firewall.nft; {fix}")
    if unit_active not in (None, "active"):
        out.append(f"{UNIT} is {unit_active} although its table is loaded; {fix}")
    return out


def items(target, on_failure=None):
    text = ruleset(target.spec, target.host_members, target.addresses)
    out = [
        File(str(target.etc / "firewall.nft"), text, 0o644, notify=(UNIT,)),
        File(unit_path(UNIT), render("systemd/dbrs-firewall.service.j2",
                                     ruleset=target.etc / "firewall.nft", on_failure=on_failure),
             0o644, notify=(UNIT,)),
        Link(NFTABLES_WANTS, unit_path(UNIT)),
    ]
    return out


def services(target):
    out = [Service(UNIT, start=target.start)]
    if target.start:
        out.append(Table(str(target.etc / "firewall.nft"), digest_of(ruleset(target.spec, target.host_members,
                                                                               target.addresses).decode())))
    return out
