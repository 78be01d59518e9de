"""What a dbrs-install run asks of the members on this host: TLS for its clients, whether the set
still lists a member, the oplog size.

The CLI hands this module to `install.run`, so the host side of an install
(and every --root staging run) never loads the client code it does not use.
"""

from __future__ import annotations

from . import connection, oplog_size

use_tls = connection.use_tls
oplog_steps = oplog_size.install_steps


def listed(port):
    """Whether the mongod on loopback `port` answers hello (no credentials) and its set's config lists it."""
    try:
        with connection.client("127.0.0.1", port, timeout_ms=1500) as c:
            h = c.admin.command("hello")
    except connection.errors().PyMongoError:
        return False
    return bool(h.get("me")) and h["me"] in (h.get("hosts", []) + h.get("arbiters", []) + h.get("passives", []))
