"""Replica-set claims that only a real mongod can prove (Vagrant tier, marked real_mongod).

Runs only when the Vagrant helper says a real set is there:

    DBRS_REAL_MONGOD=1                       required; without it every test here skips
    DBRS_CONFIG=/etc/dbrs/cluster.toml       the spec, with keyfile/secrets.toml next to it (default shown)
    DBRS_HOST_<MEMBER>=ssh://vagrant@mongod2 testinfra URL of the host running each member (MEMBER upper-case,
                                             e.g. DBRS_HOST_MONGOD1); DBRS_SSH_CONFIG=FILE if ssh needs one

The tests stop and kill mongods and reconfigure the set; each puts the set back (members started,
degraded members recovered) before it ends.
"""

from __future__ import annotations

import os
import time

import pytest

pytestmark = pytest.mark.real_mongod

FAILOVER_LIMIT_S = 12


def host_of(member):
    import testinfra

    url = os.environ.get(f"DBRS_HOST_{member.name.upper()}")
    if not url:
        pytest.skip(f"DBRS_HOST_{member.name.upper()} is not set")
    return testinfra.get_host(url, ssh_config=os.environ.get("DBRS_SSH_CONFIG"), sudo=True)


def set_client(spec, secrets, **kw):
    from installer.replset import connection

    hosts = [m.address for m in spec.members if m.data_bearing]
    return connection.client(hosts, None, replica_set=spec.cluster.name, direct=False, user="admin",
                        password=secrets.password("admin"), **kw)


def wait_healthy(spec, secrets, limit_s=120):
    from installer.replset import operations

    deadline = time.monotonic() + limit_s
    while True:
        try:
            st = operations.read_status(spec, secrets)
            if all(m.healthy for m in st.members) and st.primary:
                return st
        except Exception:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"set not healthy after {limit_s} s")
        time.sleep(1)


def test_primary_kill_fails_over_within_12_s_and_keeps_majority_writes(real):
    import pymongo

    from installer.replset import connection

    spec, secrets, _ = real
    with set_client(spec, secrets) as c:
        coll = c.dbrs_test.get_collection("failover", write_concern=pymongo.WriteConcern("majority"))
        marker = {"_id": f"before-kill-{time.time()}"}
        coll.insert_one(marker)
    old, _ = connection.find_primary(spec)
    host = host_of(old)
    killed = time.monotonic()
    host.run_expect([0], f"systemctl kill -s SIGKILL dbrs-mongod@{old.name}.service")
    try:
        new = None
        while time.monotonic() - killed < 30:
            new, _ = connection.find_primary(spec, timeout_ms=500)
            if new and new.name != old.name:
                break
            time.sleep(0.2)
        took = time.monotonic() - killed
        assert new and new.name != old.name, "no new primary within 30 s"
        assert took < FAILOVER_LIMIT_S, f"failover took {took:.1f} s"
        with set_client(spec, secrets) as c:
            from pymongo.read_concern import ReadConcern

            found = c.dbrs_test.get_collection("failover", read_concern=ReadConcern("majority")).find_one(marker)
        assert found == marker
    finally:
        host.run(f"systemctl start dbrs-mongod@{old.name}.service")
        wait_healthy(spec, secrets)


def test_degrade_unblocks_majority_writes_and_recover_restores_the_vote(real):
    import pymongo
    from pymongo.errors import WTimeoutError

    from installer.replset import connection, operations

    spec, secrets, _ = real
    primary, _ = connection.find_primary(spec)
    secondary = next(m for m in spec.members if m.data_bearing and m.name != primary.name)
    host = host_of(secondary)
    host.run_expect([0], f"systemctl stop dbrs-mongod@{secondary.name}.service")
    try:
        with set_client(spec, secrets) as c:
            coll = c.dbrs_test.get_collection("degrade", write_concern=pymongo.WriteConcern("majority", wtimeout=3000))
            with pytest.raises(WTimeoutError):
                coll.insert_one({"when": "secondary down, not degraded"})
            operations.degrade(spec, secrets, secondary.name)
            coll.insert_one({"when": "secondary down, degraded"})
    finally:
        host.run(f"systemctl start dbrs-mongod@{secondary.name}.service")
    operations.recover(spec, secrets, secondary.name, wait_s=300)
    st = wait_healthy(spec, secrets)
    back = st.member(secondary.name)
    assert (back.votes, back.priority) == (1, secondary.priority)
    assert st.ok, st.problems


def test_status_as_monitor_sees_the_oplog_window(real):
    from installer.replset import documents, operations

    spec, secrets, _ = real
    st = operations.read_status(spec, secrets, user="monitor")
    assert st.oplog_window_s is not None, "clusterMonitor could not read local.oplog.rs"
    assert st.write_concern and str(st.write_concern["w"]) == str(documents.rw_concern(spec.cluster)["w"])
