"""replSetResizeOplog on a running member: the exact documents, idempotence, what MongoDB refuses."""

from __future__ import annotations

import pytest

from installer import secrets as secretsmod
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


def _target(path, members=None):
    from installer import spec as specmod
    from installer.host.target import Target

    from dataclasses import replace

    spec = specmod.load(path)
    spec = replace(spec, cluster=replace(spec.cluster, oplog_size_mb=4096))
    chosen = tuple(members or spec.members)
    return Target(spec=spec, members=chosen, host_members=chosen, live=True)


def test_install_resizes_each_running_data_bearing_member_once(standin, spec_for):

    rs = standin.initiated().start()
    path = spec_for(rs)
    target, secrets = _target(path), secretsmod.load(path, keyfile=True)
    assert oplog_size.install_steps(target, secrets) == [
        ("oplog size", "changed", "mongod1 990 -> 4096 MB; mongod2 990 -> 4096 MB")]
    assert sorted(s.member for s in rs.sent("replSetResizeOplog")) == ["mongod1", "mongod2"]
    assert oplog_size.install_steps(target, secrets) == [("oplog size", "unchanged", "mongod1 4096 MB; mongod2 4096 MB")]
    assert len(rs.sent("replSetResizeOplog")) == 2


def test_install_leaves_a_member_of_a_set_not_initiated_yet_for_the_next_run(standin, spec_for):

    rs = standin.start()
    path = spec_for(rs)
    [(name, status, detail)] = oplog_size.install_steps(_target(path), secretsmod.load(path, keyfile=True))
    assert (name, status) == ("oplog size", "waiting") and "mongod2 is not in an initiated set yet" in detail
    assert "next run" in detail and not rs.sent("replSetResizeOplog")
