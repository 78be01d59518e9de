"""Backup and point-in-time restore against a real replica set (Vagrant tier, marked real_mongod).

What only real MongoDB can prove: that real mongodump/mongorestore accept
the password pipe and the flags, that the archive's own oplog and our
slices replay, and that `--to` lands between two writes. Runs only with

    DBRS_REAL_MONGOD=1                       required; without it the test skips
    DBRS_CONFIG=/etc/dbrs/cluster.toml       the spec, secrets next to it (default shown)
    DBRS_HOST_<MEMBER>=ssh://vagrant@mongod2 testinfra URL of each data-bearing member's host

The test writes to the database `dbrs_backup_test` only and drops it at the end.
"""

from __future__ import annotations

import json
import os
import time

import pytest

pytestmark = pytest.mark.real_mongod
DB = "dbrs_backup_test"


def host_of(member):
    import testinfra

    url = os.environ.get(f"DBRS_HOST_{member.name.upper()}")
    if not url:
        pytest.skip(f"DBRS_HOST_{member.name.upper()} is not set")
    return testinfra.get_host(url, ssh_config=os.environ.get("DBRS_SSH_CONFIG"), sudo=True)


def dbrs(host, *args):
    r = host.run("dbrs " + " ".join(args))
    assert r.rc == 0, (args, r.stdout, r.stderr)
    return r.stdout


def test_restore_to_a_point_in_time_brings_back_exactly_the_writes_before_it(real):
    from installer.replset import connection

    spec, secrets, path = real
    c = connection.client([m.address for m in spec.members if m.data_bearing], None, user="admin",
                     password=secrets.password("admin"), replica_set=spec.cluster.name)
    coll = c[DB]["events"]
    try:
        c.drop_database(DB)
        coll.insert_one({"_id": 1, "write": "before the backup"})
        # every data host runs the timer; exactly one dumps, the others say why not
        sources = []
        for m in (m for m in spec.members if m.data_bearing):
            out = json.loads(dbrs(host_of(m), "backup", "--json", "--config", path))
            if out["status"] == "done":
                sources.append(m)
        assert len(sources) == 1
        host = host_of(sources[0])
        coll.insert_one({"_id": 2, "write": "after the backup, before the time"})
        time.sleep(1.5)
        noted = c.admin.command("hello")["localTime"].timestamp()
        time.sleep(1.5)
        coll.insert_one({"_id": 3, "write": "after the time"})
        coll.drop()
        time.sleep(1)
        dbrs(host, "oplog", "--config", path)
        assert "ok" in dbrs(host, "backup", "verify", "--all", "--config", path)
        out = dbrs(host, "restore", "--to", f"@{noted}", "--yes", "--config", path)
        assert "restore finished in" in out
        assert sorted(d["_id"] for d in coll.find()) == [1, 2]
        # users and the set's own state were never restored over
        assert c.admin.command("usersInfo", "backup")["users"]
    finally:
        c.drop_database(DB)
        c.close()
