"""replSetResizeOplog on a running member: the exact documents, idempotence, what MongoDB refuses."""

from __future__ import annotations

import pytest

from installer.replset import connection, oplog_size
from installer.errors import DbrsError

from .standin import command_doc

ADMIN_PW = "admin-pw-0000000000000000000000"


def client_to(rs, name):
    m = rs.member(name)
    return connection.client("127.0.0.1", m.port, user="admin", password=ADMIN_PW)


def test_resize_sends_replsetresizeoplog_to_the_member_itself_once(standin):
    rs = standin.initiated().start()
    with client_to(rs, "mongod2") as c:
        r = oplog_size.ensure(c, "mongod2", 4096)
        assert (r.before_mb, r.after_mb, r.changed) == (990, 4096, True)
        again = oplog_size.ensure(c, "mongod2", 4096)
    assert not again.changed
    resize = [s for s in rs.log if s.name == "replSetResizeOplog"]
    assert [(s.member, command_doc(s.doc)) for s in resize] == [("mongod2", {"replSetResizeOplog": 1, "size": 4096.0})]
    assert isinstance(resize[0].doc["size"], float) and resize[0].doc["$db"] == "admin"
    stats = [s for s in rs.log if s.name == "aggregate"]
    assert command_doc(stats[0].doc)["pipeline"] == [{"$collStats": {"storageStats": {}}}]
    assert stats[0].doc["$db"] == "local" and stats[0].doc["aggregate"] == "oplog.rs"
    assert rs.oplog_bytes == {"mongod2": 4096 * 1024 * 1024}


@pytest.mark.parametrize("member,size,words", [("mongod3", 2048, "local.oplog.rs"), ("mongod1", 500, "990 MB")])
def test_what_mongodb_refuses_is_one_line_naming_the_member(standin, member, size, words):
    rs = standin.initiated().start()
    with client_to(rs, member) as c, pytest.raises(DbrsError) as e:
        oplog_size.ensure(c, member, size)
    assert str(e.value).startswith(f"{member}: resizing the oplog to {size} MB failed") and words in str(e.value)
    assert "\n" not in str(e.value)
