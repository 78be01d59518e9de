"""The pure side of installer/replset/: documents, status interpretation, reconfig planning (and the status text)."""

from __future__ import annotations

import datetime as dt

import pytest

from installer import spec as specmod
from installer.cli.render import render_status
from installer.errors import DbrsError, InputError
from installer.replset import documents, health

from ..conftest import PSA

SPEC = specmod.loads(PSA)
M1, M2, M3 = SPEC.members
T = dt.datetime(2026, 11, 28, 10, 0, 0)


def config(**overrides):
    members = [
        {"_id": 0, "host": M1.address, "arbiterOnly": False, "priority": 2, "votes": 1, "hidden": False},
        {"_id": 1, "host": M2.address, "arbiterOnly": False, "priority": 1, "votes": 1, "hidden": False},
        {"_id": 2, "host": M3.address, "arbiterOnly": True, "priority": 0, "votes": 1, "hidden": False},
    ]
    for host, changes in overrides.items():
        next(m for m in members if m["host"] == host).update(changes)
    return {"_id": "dbrs", "version": 7, "term": 3, "protocolVersion": 1, "members": members,
            "settings": {"electionTimeoutMillis": 10000}}


def member(address, state, health=1, lag=0, **extra):
    doc = {"name": address, "health": float(health), "state": state,
           "stateStr": {1: "PRIMARY", 2: "SECONDARY", 7: "ARBITER", 8: "(not reachable/healthy)"}[state],
           "lastHeartbeat": T - dt.timedelta(seconds=1), "lastHeartbeatRecv": T - dt.timedelta(seconds=2)}
    if state in (1, 2):
        doc["optimeDate"] = T - dt.timedelta(seconds=1 + lag)
    doc.update(extra)
    return doc


def rs_status(*members, commit_lag=0):
    return {"set": "dbrs", "date": T, "members": list(members), "ok": 1.0,
            "optimes": {"lastAppliedWallTime": T - dt.timedelta(seconds=1),
                        "lastCommittedWallTime": T - dt.timedelta(seconds=1 + commit_lag)}}


RW_MAJORITY = {"defaultWriteConcern": {"w": "majority", "wtimeout": 10000}, "defaultWriteConcernSource": "global",
               "defaultReadConcern": {"level": "local"}}


def test_initiate_config_marks_the_arbiter_and_prefers_the_primary_role():
    assert documents.initiate_config(SPEC) == {"_id": "dbrs", "members": [
        {"_id": 0, "host": "10.0.0.11:27017", "priority": 2},
        {"_id": 1, "host": "10.0.0.12:27017", "priority": 1},
        {"_id": 2, "host": "10.0.0.13:27017", "priority": 0, "arbiterOnly": True}]}


def test_connection_strings_skip_the_arbiter_and_never_hold_a_password():
    assert documents.connection_strings(SPEC) == (
        "mongodb://10.0.0.11:27017,10.0.0.12:27017/?replicaSet=dbrs",
        "mongodb://10.0.0.11:27017,10.0.0.12:27017/?replicaSet=dbrs&readPreference=secondaryPreferred")
    assert documents.connection_strings(SPEC, "backup")[0] == \
        "mongodb://backup@10.0.0.11:27017,10.0.0.12:27017/?replicaSet=dbrs&authSource=admin"


@pytest.mark.parametrize("text, kind", [
    ("10.0.0.12:27017: [Errno 111] Connection refused (configured timeouts: ...)", "refused"),
    ("10.0.0.12:27017: timed out (configured timeouts: socketTimeoutMS: 2000.0ms)", "timeout"),
    ("db2.example: [Errno -2] Name or service not known", "dns"),
    # pymongo's server-selection error after a DNS failure also says "Timeout: 2.0s" (black-box attack F3)
    ("db4.nosuch.invalid:27017: [Errno -2] Name or service not known (configured timeouts: socketTimeoutMS: 2000.0ms,"
     " connectTimeoutMS: 2000.0ms), Timeout: 2.0s, Topology Description: <...>", "dns"),
    ("db4:27017: [Errno -3] Temporary failure in name resolution (configured timeouts: ...), Timeout: 2.0s", "dns"),
    ("db4:27017: [Errno -5] No address associated with hostname, Timeout: 2.0s", "dns"),
    ("Authentication failed.", "auth"),
    ("something else", "other"),
])
def test_failure_kinds(text, kind):
    assert health.failure_kind(text) == kind


def test_a_host_that_does_not_resolve_is_named():
    m4 = specmod.Member("mongod4", "db4.nosuch.invalid", 27017, "secondary")
    said = health.explain_missing(m4, "db4.nosuch.invalid:27017: [Errno -2] Name or service not known, Timeout: 2.0s")
    assert said.startswith("mongod4 (db4.nosuch.invalid:27017): db4.nosuch.invalid does not resolve")
    assert "firewall" not in said


def test_initiate_quorum_error_names_the_member_and_the_keyfile():
    errmsg = ("replSetInitiate quorum check failed because not all proposed set members responded affirmatively: "
              "10.0.0.12:27017 failed with Authentication failed.")
    text = health.explain_initiate_failure(SPEC, errmsg)
    assert text.startswith("replSetInitiate failed: mongod2 (10.0.0.12:27017): authentication between members failed")
    assert "keyfiles differ" in text and "mongod3" not in text


def test_healthy_status():
    st = health.interpret_status(rs_status(member(M1.address, 1, self=True), member(M2.address, 2),
                                            member(M3.address, 7)), SPEC, config(), RW_MAJORITY, 3600.0)
    assert st.ok and st.primary == "mongod1"
    assert [m.name for m in st.healthy_secondaries()] == ["mongod2"]
    assert st.member("mongod2").lag_s == 0 and st.member("mongod3").lag_s is None
    assert st.member("mongod1").heard_ago_s is None and st.member("mongod2").heard_ago_s == 2


def test_secondary_down_says_what_majority_writes_do_and_what_to_run():
    st = health.interpret_status(
        rs_status(member(M1.address, 1, self=True), member(M2.address, 8, health=0,
                  lastHeartbeatMessage="Error connecting to 10.0.0.12:27017 :: caused by :: Connection refused"),
                  member(M3.address, 7), commit_lag=300), SPEC, config(), RW_MAJORITY)
    assert not st.ok and st.healthy_secondaries() == []
    assert st.problems[0] == ("secondary mongod2 is down (Error connecting to 10.0.0.12:27017 :: caused by :: "
                              "Connection refused): majority writes time out after 10 s; run `dbrs degrade mongod2` "
                              "if it stays down")
    assert "majority commit point is 300 s behind" in st.problems[1]


def test_secondary_down_with_w1_says_writes_are_at_risk():
    spec = specmod.loads(PSA.replace('write_concern = "majority"', 'write_concern = "1"'))
    rw = {"defaultWriteConcern": {"w": 1, "wtimeout": 10000}, "defaultWriteConcernSource": "global"}
    st = health.interpret_status(rs_status(member(M1.address, 1), member(M2.address, 8, health=0),
                                            member(M3.address, 7)), spec, config(), rw)
    assert "acknowledged by the primary alone" in st.problems[0]
    assert st.notes == ["write concern w:1: an acknowledged write can roll back when the primary fails (not zero RPO)"]


def test_arbiter_down_and_lagging_secondary():
    st = health.interpret_status(rs_status(member(M1.address, 1), member(M2.address, 2, lag=95),
                                            member(M3.address, 8, health=0)), SPEC, config(), RW_MAJORITY)
    assert st.problems[0].startswith("arbiter mongod3 is down: the set still has a majority")
    assert st.problems[1] == "secondary mongod2 is 95 s behind the primary"


def test_no_primary_and_an_implicit_write_concern_are_problems():
    rw = {"defaultWriteConcern": {"w": 1, "wtimeout": 0}, "defaultWriteConcernSource": "implicit"}
    st = health.interpret_status(rs_status(member(M1.address, 8, health=0), member(M2.address, 2),
                                            member(M3.address, 8, health=0)), SPEC, config(), rw)
    assert st.primary is None
    assert st.problems[0] == ("no PRIMARY: the set accepts no writes; 1 of 3 voting members are up and 2 are needed "
                              "to elect one")
    assert st.problems[-1] == ("the cluster default write concern is w:1 (implicit), the spec asks for "
                               "w:majority, wtimeout 10 s; run `dbrs bootstrap`")


def test_render_lists_every_member_and_the_warnings():
    st = health.interpret_status(rs_status(member(M1.address, 1, self=True), member(M2.address, 8, health=0),
                                            member(M3.address, 7)), SPEC, config(), RW_MAJORITY, 7.5 * 3600)
    text = render_status(st)
    assert text.splitlines()[0] == "replica set dbrs: primary mongod1"
    assert ["mongod2", "10.0.0.12:27017", "DOWN", "1", "1", "-", "2s", "ago"] in [line.split() for line in text.splitlines()]
    assert "oplog window: 7.5h" in text
    assert text.splitlines()[-1].startswith("WARN secondary mongod2 is down")


def test_degrade_changes_only_that_member_and_bumps_the_version():
    old = config()
    new = documents.plan_reconfig(old, M2, "degrade", primary=M1.address, up={M1.address, M3.address})
    assert new["version"] == 8 and "term" not in new
    assert new["members"][1] == {**old["members"][1], "votes": 0, "priority": 0}
    assert new["members"][0] == old["members"][0] and new["members"][2] == old["members"][2]
    assert old["members"][1]["votes"] == 1  # the input is left alone


def test_recover_is_vote_first_then_priority():
    degraded = config(**{M2.address: {"votes": 0, "priority": 0}})
    up = {M1.address, M2.address, M3.address}
    step1 = documents.plan_reconfig(degraded, M2, "recover", primary=M1.address, up=up)
    assert step1["members"][1]["votes"] == 1 and step1["members"][1]["priority"] == 0
    step2 = documents.plan_reconfig(step1, M2, "recover", primary=M1.address, up=up)
    assert step2["members"][1]["priority"] == 1 and step2["version"] == 9
    with pytest.raises(InputError, match="is not degraded"):
        documents.plan_reconfig(step2, M2, "recover", primary=M1.address, up=up)


@pytest.mark.parametrize("who, action, cfg, up, message", [
    (M1, "degrade", {}, {M1.address, M3.address}, "is the primary"),
    (M3, "degrade", {}, {M1.address, M2.address}, "is the arbiter"),
    (M2, "degrade", {M2.address: {"votes": 0, "priority": 0}}, {M1.address, M3.address}, "already degraded"),
    (M2, "degrade", {}, {M1.address, M2.address}, "leaves 1 of 2 voting members up and 2 are needed"),
    (M2, "recover", {M2.address: {"votes": 0, "priority": 0}}, {M1.address, M3.address}, "is not healthy"),
])
def test_refusals(who, action, cfg, up, message):
    with pytest.raises(InputError, match=message):
        documents.plan_reconfig(config(**cfg), who, action, primary=M1.address, up=up)


def test_a_member_missing_from_the_config_is_a_runtime_error():
    other = specmod.Member("mongod4", "10.0.0.14", 27017, "secondary")
    with pytest.raises(DbrsError, match="not in the set's config; run `dbrs reconfigure`"):
        documents.plan_reconfig(config(), other, "degrade", primary=M1.address, up=set())


def test_users_are_least_privilege():
    users = dict(documents.user_roles(SPEC))
    assert list(users) == ["admin", "backup", "restore", "monitor"]
    assert users["monitor"] == [{"role": "clusterMonitor", "db": "admin"}]
    assert documents.create_user_command("monitor", "pw", users["monitor"])["mechanisms"] == ["SCRAM-SHA-256"]


def test_uri_escapes_the_user_name():
    """`dbrs uri --user 'a@evil:1/x?y'` printed an invalid URI whose host part was the user's (black-box attack)."""
    plain, read = documents.connection_strings(SPEC, "a@evil:1/x?y")
    assert plain.startswith("mongodb://a%40evil%3A1%2Fx%3Fy@10.0.0.11:27017,10.0.0.12:27017/?replicaSet=dbrs")


def test_spec_and_config_that_differ_name_dbrs_reconfigure():
    """A member added to (or removed from) the spec is `dbrs reconfigure`'s job; `dbrs bootstrap` only initiates."""
    spec = specmod.loads(PSA.replace('"10.0.0.13"', '"10.0.0.23"'))
    st = health.interpret_status(rs_status(member(M1.address, 1, self=True), member(M2.address, 2),
                                            member(M3.address, 7)), spec, config(), RW_MAJORITY, 3600.0)
    assert "mongod3 (10.0.0.23:27017) is in the spec but not in the set's config; run `dbrs reconfigure`" in st.problems
    assert "10.0.0.13:27017 is in the set's config but not in the spec; run `dbrs reconfigure`" in st.problems
    assert not any("bootstrap" in p for p in st.problems)
    other = specmod.Member("mongod4", "10.0.0.14", 27017, "secondary")
    with pytest.raises(DbrsError, match="not in the set's config; run `dbrs reconfigure`"):
        documents.plan_reconfig(config(), other, "degrade", primary=M1.address, up=set())
