"""The nftables table `inet dbrs`: members and allowed networks reach mongod, nobody else. Pure."""

from __future__ import annotations

import ipaddress

from .errors import InputError
from .plan import File, Service, unit_path
from .render import render

UNIT = "dbrs-firewall.service"


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
    allow4 = [c for c in spec.cluster.allow if ipaddress.ip_network(c).version == 4]
    allow6 = [c for c in spec.cluster.allow if ipaddress.ip_network(c).version == 6]
    ports = sorted({m.port for m in host_members})
    return render(
        "firewall/firewall.nft.j2",
        members4=sorted(members4, key=ipaddress.ip_address),
        members6=sorted(members6, key=ipaddress.ip_address),
        allow4=allow4,
        allow6=allow6,
        ports=ports,
    )


def items(target, on_failure=None):
    return [
        File(str(target.etc / "firewall.nft"), ruleset(target.spec, target.host_members, target.addresses),
             0o644, notify=(UNIT,)),
        File(unit_path(UNIT), render("systemd/dbrs-firewall.service.j2",
                                     ruleset=target.etc / "firewall.nft", on_failure=on_failure),
             0o644, notify=(UNIT,)),
    ]


def services(target):
    return [Service(UNIT, start=target.start)]
