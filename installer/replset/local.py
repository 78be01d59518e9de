"""What a dbrs-install run asks of the members on this host: TLS for its clients, whether the set
still lists a member, the oplog size.

The CLI hands this module to `install.run`, so the host side of an install
(and every --root staging run) never loads the client code it does not use.
"""

from __future__ import annotations

from . import connection, oplog_size

use_tls = connection.use_tls
oplog_steps = oplog_size.install_steps


def _lists(hello, me):
    return me in hello.get("hosts", []) + hello.get("arbiters", []) + hello.get("passives", [])


def listed(port):
    """Whether the mongod on loopback `port` is a member the set counts on: its own config lists it (hello,
    no credentials) and another member of that config answers and lists it too. A removed member whose
    removal never reached it (the others' firewalls drop it) lists itself forever; no other member can
    hear it, so stopping it takes nothing from the set."""
    try:
        with connection.client("127.0.0.1", port, timeout_ms=1500) as c:
            h = c.admin.command("hello")
    except connection.errors().PyMongoError:
        return False
    me = h.get("me")
    if not me or not _lists(h, me):
        return False
    for other in h.get("hosts", []) + h.get("arbiters", []) + h.get("passives", []):
        if other == me:
            continue
        host, _, other_port = other.rpartition(":")
        try:
            with connection.client(host, int(other_port), timeout_ms=1500) as c:
                theirs = c.admin.command("hello")
        except (connection.errors().PyMongoError, ValueError):
            continue
        if _lists(theirs, me):
            return True
    return False
