"""This machine as the tools see it: its names and addresses, and what is on its PATH.

A leaf: the backup, replica-set and install code all ask "is this member
here?" and "where is mongodump?", and none of them may import the host layer.
"""

from __future__ import annotations

import os
import socket


def which(program):
    """shutil.which without importing shutil (and with it bz2/lzma) on the fast path."""
    for d in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(d, program)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None


def local_addresses():
    import psutil

    out = set()
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family in (socket.AF_INET, socket.AF_INET6):
                out.add(a.address.split("%")[0])
    return out


def hostnames():
    name = socket.gethostname()
    names = {name, "localhost"}
    try:
        names.add(socket.getfqdn())
    except OSError:
        pass
    return names


def this_host():
    """(addresses, lowercased names) of this machine: what `is_local` compares member hosts with."""
    return local_addresses(), {n.lower() for n in hostnames()}


def is_local(host, here):
    """Does spec host `host` (IP or name) denote this machine, given `here` from this_host()?"""
    addresses, names = here
    if host.lower() in names:
        return True
    return any(ip in addresses or ip.startswith("127.") or ip == "::1" for ip in resolve(host))


def resolve(host):
    """IP addresses of a member host: itself when it is an IP, else what the resolver says."""
    import ipaddress

    try:
        return (str(ipaddress.ip_address(host)),)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        return ()
    return tuple(sorted({i[4][0] for i in infos}))
