"""`dbrs reconfigure` against a stand-in that enforces MongoDB's safe-reconfig rules (issue 13, item 1)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from installer.cli import main

from ..conftest import write_cluster
from .standin import StandInSet, reconfig_error


def dbrs(*args):
    return CliRunner().invoke(main, list(args))


def write_spec(tmp_path, rs, members):
    """members: (spec name, stand-in member, role); generation 2 as after a `dbrs member` change."""
    out = ["[cluster]", f'name = "{rs.name}"', 'mongodb_version = "8.0"', 'write_concern = "majority"', ""]
    for name, who, role in members:
        out += ["[[members]]", f'name = "{name}"', 'host = "127.0.0.1"', f"port = {rs.member(who).port}",
                f'role = "{role}"', ""]
    return str(write_cluster(tmp_path, "\n".join(out)))


def voters(cfg):
    return {c["host"] for c in cfg["members"] if c["votes"]}


def assert_sequence_safe(rs, before):
    """Every accepted config obeys the rules the stand-in enforces, and no reconfig was refused."""
    sent = [s for s in rs.log if s.name == "replSetReconfig"]
    assert len(sent) == len(rs.configs), "a reconfig was refused: the plan broke a rule or did not wait"
    prev = before
    for cfg in rs.configs:
        assert len(voters(prev) ^ voters(cfg)) <= 1
        prev = cfg


def final_is(rs, want):
    """want: stand-in name -> (votes, priority, arbiterOnly)."""
    got = {c["host"]: (c["votes"], c["priority"], c["arbiterOnly"]) for c in rs.config["members"]}
    assert got == {rs.member(n).address: v for n, v in want.items()}
    assert len(voters(rs.config)) % 2 == 1


@pytest.fixture
def psa():
    rs = StandInSet((("mongod1", "primary"), ("mongod2", "secondary"), ("mongod3", "arbiter")))
    yield rs
    rs.stop()


def test_psa_to_pss_syncs_without_vote_then_votes_then_drops_the_arbiter(psa, tmp_path):
    rs = psa.initiated().start()
    before = dict(rs.config)
    new = rs.spare("mongod4")
    new.start()
    rs.sync_s["mongod4"] = 1.5
    path = write_spec(tmp_path, rs, [("mongod1", "mongod1", "primary"), ("mongod2", "mongod2", "secondary"),
                                     ("mongod4", "mongod4", "secondary")])
    r = dbrs("reconfigure", "--config", path, "--wait", "30")
    assert r.exit_code == 0, r.output
    assert_sequence_safe(rs, before)
    assert [(c["version"], len(c["members"]), len(voters(c))) for c in rs.configs] == \
        [(2, 4, 3), (3, 4, 4), (4, 3, 3), (5, 3, 3)]
    [(who, lag)] = rs.vote_grants
    assert who == "mongod4" and lag <= 2, "the vote went to a member still in initial sync"
    final_is(rs, {"mongod1": (1, 2, False), "mongod2": (1, 1, False), "mongod4": (1, 1, False)})
    assert "STARTUP2" in r.output          # the wait said what it waited for
    assert ("default write concern w:majority, wtimeout 10 s: majority writes need 2 of the 3 data-bearing "
            "voting members; they keep working with 1 of them down") in r.output
    assert dbrs("reconfigure", "--config", path).output == "nothing to do: the set's members match the spec\n"


def test_psa_to_pssa_plus_one_adds_one_voter_at_a_time(psa, tmp_path):
    rs = psa.initiated().start()
    before = dict(rs.config)
    for n in ("mongod4", "mongod5"):
        rs.spare(n).start()
        rs.sync_s[n] = 0.5
    path = write_spec(tmp_path, rs, [("mongod1", "mongod1", "primary"), ("mongod2", "mongod2", "secondary"),
                                     ("mongod3", "mongod3", "arbiter"), ("mongod4", "mongod4", "secondary"),
                                     ("mongod5", "mongod5", "secondary")])
    r = dbrs("reconfigure", "--config", path, "--wait", "30")
    assert r.exit_code == 0, r.output
    assert_sequence_safe(rs, before)
    assert sorted(w for w, lag in rs.vote_grants if lag <= 2) == ["mongod4", "mongod5"]
    final_is(rs, {"mongod1": (1, 2, False), "mongod2": (1, 1, False), "mongod3": (1, 0, True),
                  "mongod4": (1, 1, False), "mongod5": (1, 1, False)})


def test_remove_two_secondaries_one_voter_at_a_time(tmp_path):
    rs = StandInSet((("mongod1", "primary"), ("mongod2", "secondary"), ("mongod3", "arbiter"),
                     ("mongod4", "secondary"), ("mongod5", "secondary"))).initiated().start()
    try:
        before = dict(rs.config)
        path = write_spec(tmp_path, rs, [("mongod1", "mongod1", "primary"), ("mongod2", "mongod2", "secondary"),
                                         ("mongod3", "mongod3", "arbiter")])
        r = dbrs("reconfigure", "--config", path)
        assert r.exit_code == 0, r.output
        assert_sequence_safe(rs, before)
        assert len(rs.configs) == 2
        final_is(rs, {"mongod1": (1, 2, False), "mongod2": (1, 1, False), "mongod3": (1, 0, True)})
    finally:
        rs.stop()


def test_replace_a_dead_host_keeps_the_member_and_votes_after_catch_up(psa, tmp_path):
    rs = psa.initiated().start()
    before = dict(rs.config)
    rs.member("mongod2").stop()
    rs.spare("mongod4").start()
    rs.sync_s["mongod4"] = 1.0
    rs.catching_up("mongod4", behind_s=30, per_s=15)
    path = write_spec(tmp_path, rs, [("mongod1", "mongod1", "primary"), ("mongod2", "mongod4", "secondary"),
                                     ("mongod3", "mongod3", "arbiter")])
    r = dbrs("reconfigure", "--config", path, "--wait", "30")
    assert r.exit_code == 0, r.output
    assert_sequence_safe(rs, before)
    first = rs.configs[0]["members"][1]
    assert (first["_id"], first["host"], first["votes"], first["priority"]) == (1, rs.member("mongod4").address, 0, 0)
    [(who, lag)] = rs.vote_grants
    assert who == "mongod4" and lag <= 2
    final_is(rs, {"mongod1": (1, 2, False), "mongod4": (1, 1, False), "mongod3": (1, 0, True)})


def test_dry_run_prints_the_steps_and_sends_no_reconfig(psa, tmp_path):
    rs = psa.initiated().start()
    rs.spare("mongod4").start()
    path = write_spec(tmp_path, rs, [("mongod1", "mongod1", "primary"), ("mongod2", "mongod2", "secondary"),
                                     ("mongod4", "mongod4", "secondary")])
    r = dbrs("reconfigure", "--dry-run", "--config", path)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].startswith("step 1: mongod4: add 127.0.0.1:") and "votes 0, priority 0" in lines[0]
    assert lines[1].startswith("  then wait: mongod4 is")
    assert lines[2] == "step 2: mongod4: caught up (0 s behind), gets its vote (priority 0 for now)"
    assert lines[3].startswith("step 3: remove arbiter 127.0.0.1:")
    assert lines[4] == "step 4: mongod4 priority 0 -> 1"
    assert lines[-1] == "nothing was changed (--dry-run)"
    assert not rs.sent("replSetReconfig") and rs.config["version"] == 1


def test_a_run_that_times_out_says_so_and_the_next_run_finishes(psa, tmp_path):
    rs = psa.initiated().start()
    rs.spare("mongod4").start()
    rs.sync_s["mongod4"] = 3
    path = write_spec(tmp_path, rs, [("mongod1", "mongod1", "primary"), ("mongod2", "mongod2", "secondary"),
                                     ("mongod4", "mongod4", "secondary")])
    r = dbrs("reconfigure", "--config", path, "--wait", "1")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "still waiting: mongod4 is STARTUP2" in r.output and "run `dbrs reconfigure` again" in r.output
    assert len(rs.configs) == 1 and not rs.vote_grants
    r = dbrs("reconfigure", "--config", path, "--wait", "30")
    assert r.exit_code == 0, r.output
    assert len(rs.configs) == 4 and rs.vote_grants[0][1] <= 2


def test_killed_between_steps_resumes(psa, tmp_path):
    rs = psa.initiated().start()
    before = dict(rs.config)
    rs.spare("mongod4").start()
    rs.sync_s["mongod4"] = 2
    path = write_spec(tmp_path, rs, [("mongod1", "mongod1", "primary"), ("mongod2", "mongod2", "secondary"),
                                     ("mongod4", "mongod4", "secondary")])
    child = subprocess.Popen([sys.executable, "-c", "from installer.cli import main; main()", "reconfigure",
                              "--config", path, "--wait", "30"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        t0 = time.monotonic()
        while not rs.configs and time.monotonic() - t0 < 20:
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    assert len(rs.configs) == 1, "killed after the first step"
    r = dbrs("reconfigure", "--config", path, "--wait", "30")
    assert r.exit_code == 0, r.output
    assert_sequence_safe(rs, before)
    assert len(rs.configs) == 4
    final_is(rs, {"mongod1": (1, 2, False), "mongod2": (1, 1, False), "mongod4": (1, 1, False)})


def test_each_step_waits_until_the_previous_config_is_committed(psa, tmp_path):
    rs = psa.initiated().start()
    rs.propagation_s = 1.0
    for n in ("mongod4", "mongod5"):
        rs.spare(n).start()
    path = write_spec(tmp_path, rs, [("mongod1", "mongod1", "primary"), ("mongod2", "mongod2", "secondary"),
                                     ("mongod3", "mongod3", "arbiter"), ("mongod4", "mongod4", "secondary"),
                                     ("mongod5", "mongod5", "secondary")])
    r = dbrs("reconfigure", "--config", path, "--wait", "30")
    assert r.exit_code == 0, r.output
    assert len(rs.sent("replSetReconfig")) == len(rs.configs) == 5   # none refused as not yet committed


# ------------------------------------------------------------ the stand-in refuses what MongoDB refuses

def cfg(*members, version=1):
    return {"_id": "dbrs", "version": version, "term": 1, "members": [
        {"_id": i, "host": f"h{i}:27017", "votes": v, "priority": p, "arbiterOnly": a}
        for i, (v, p, a) in enumerate(members)]}


PSA_CFG = cfg((1, 2, False), (1, 1, False), (1, 0, True))


@pytest.mark.parametrize("new, code, words", [
    # give a new member its vote and drop the arbiter at once: two voter changes
    ({**PSA_CFG, "version": 2, "members": PSA_CFG["members"][:2] + [
        {"_id": 3, "host": "h3:27017", "votes": 1, "priority": 0, "arbiterOnly": False}]}, 103,
     "at most 1 voting member"),
    (cfg((1, 2, False), (1, 1, False), (1, 1, True), version=2), 93, "priority must be 0 for an arbiter"),
    (cfg((1, 2, False), (0, 1, False), (1, 0, True), version=2), 93, "priority must be 0 when non-voting"),
    (cfg((1, 2, False), (1, 1, False), (0, 0, True), version=2), 93, "Arbiter must vote"),
    (cfg((1, 2, False), (1, 1, False), (1, 0, False), version=2), 103, "arbiterOnly field"),
    (cfg((1, 2, False), (1, 1, False), (1, 0, True), version=3), 103, "must be greater than old version"),
])
def test_the_stand_in_refuses_unsafe_configs(new, code, words):
    err = reconfig_error(PSA_CFG, new, "dbrs", committed=True)
    assert err and err[0] == code and words in err[2], err


def test_the_stand_in_refuses_eight_voters_and_an_uncommitted_predecessor():
    seven = cfg(*[(1, 1, False)] * 7)
    eight = cfg(*[(1, 1, False)] * 8, version=2)
    assert reconfig_error(seven, eight, "dbrs", True)[2].startswith("Replica set configuration contains 8 voting")
    ok = cfg((1, 2, False), (1, 1, False), (1, 0, True), (0, 0, False), version=2)
    assert reconfig_error(PSA_CFG, ok, "dbrs", True) is None
    assert reconfig_error(PSA_CFG, ok, "dbrs", False)[0] == 308


def test_the_stand_in_refuses_to_change_the_implicit_write_concern_without_a_global_default():
    pss_from_pssa = {**PSA_CFG, "version": 2, "members": PSA_CFG["members"][:2] + [
        {"_id": 3, "host": "h3:27017", "votes": 1, "priority": 1, "arbiterOnly": False}]}
    pssa = {**PSA_CFG, "members": PSA_CFG["members"] + [pss_from_pssa["members"][2]]}
    assert reconfig_error(pssa, pss_from_pssa, "dbrs", True, global_default=True) is None
    assert "implicit default write concern" in reconfig_error(pssa, pss_from_pssa, "dbrs", True, global_default=False)[2]


def test_psa_to_pss_sets_the_default_write_concern_before_the_first_reconfig(psa, tmp_path):
    rs = psa.initiated().start()
    rs.rw = None                    # a set whose default was never set: MongoDB would refuse dropping the arbiter
    rs.spare("mongod4").start()
    path = write_spec(tmp_path, rs, [("mongod1", "mongod1", "primary"), ("mongod2", "mongod2", "secondary"),
                                     ("mongod4", "mongod4", "secondary")])
    r = dbrs("reconfigure", "--config", path, "--wait", "30")
    assert r.exit_code == 0, r.output
    names = [s.name for s in rs.sent("setDefaultRWConcern", "replSetReconfig")]
    assert names[0] == "setDefaultRWConcern" and names.count("replSetReconfig") == len(rs.configs) == 4
    assert rs.rw == {"w": "majority", "wtimeout": 10000}
    assert "note the cluster default write concern was set to the spec's" in r.output


def test_a_new_member_that_does_not_answer_is_not_added(psa, tmp_path):
    rs = psa.initiated().start()
    rs.spare("mongod4")             # its host is not installed yet
    path = write_spec(tmp_path, rs, [("mongod1", "mongod1", "primary"), ("mongod2", "mongod2", "secondary"),
                                     ("mongod4", "mongod4", "secondary")])
    r = dbrs("reconfigure", "--config", path, "--dry-run")
    assert r.exit_code == 0 and "note mongod4 (127.0.0.1:" in r.output and "install it first" in r.output
    r = dbrs("reconfigure", "--config", path)
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "mongod4 (127.0.0.1:" in r.output and "connection refused" in r.output
    assert "install it first (`sudo dbrs-install --bundle bundle.dbrs --member mongod4`" in r.output
    assert not rs.sent("replSetReconfig")


def test_the_primary_leaving_the_spec_is_refused_with_what_to_do(tmp_path):
    rs = StandInSet((("mongod1", "primary"), ("mongod2", "secondary"), ("mongod3", "arbiter"),
                     ("mongod4", "secondary"), ("mongod5", "secondary"))).initiated().start()
    try:
        path = write_spec(tmp_path, rs, [("mongod2", "mongod2", "primary"), ("mongod3", "mongod3", "arbiter"),
                                         ("mongod4", "mongod4", "secondary")])
        r = dbrs("reconfigure", "--config", path)
        assert r.exit_code == 1 and "Traceback" not in r.output
        assert f"the PRIMARY {rs.member('mongod1').address} leaves the set in this spec: step it down first" in r.output
        assert not rs.sent("replSetReconfig")
    finally:
        rs.stop()


def test_dbrs_install_on_the_primary_host_reconfigures_after_its_bootstrap(psa, tmp_path):
    """Issue 13: `dbrs reconfigure` is also run by `dbrs-install --role primary`: a new member that does not answer
    yet leaves the set as it is and says who finishes it; once it answers, the safe steps run, streamed; then no-op."""
    from installer import spec as specmod
    from installer.cli.install import _bootstrap
    from installer.host.target import Target

    rs = psa.initiated().start()
    before = dict(rs.config)
    new = rs.spare("mongod4")
    path = write_spec(tmp_path, rs, [("mongod1", "mongod1", "primary"), ("mongod2", "mongod2", "secondary"),
                                     ("mongod4", "mongod4", "secondary")])
    spec = specmod.load(path)
    target = Target(spec=spec, members=(spec.primary,), host_members=(spec.primary,), spec_path=path)
    heard = []
    steps = _bootstrap(30, heard.append)(target)
    assert [s[:2] for s in steps] == [("replica set", "unchanged"), ("replica set members", "waiting")]
    detail = steps[1][2]
    assert "mongod4 (127.0.0.1:" in detail and "connection refused" in detail and "`sudo dbrs reconfigure`" in detail
    assert not rs.sent("replSetReconfig")
    new.start()
    rs.sync_s["mongod4"] = 1.0
    heard.clear()
    steps = _bootstrap(30, heard.append)(target)
    assert steps[1][:2] == ("replica set members", "changed") and "4 reconfig step(s)" in steps[1][2], steps
    assert_sequence_safe(rs, before)
    final_is(rs, {"mongod1": (1, 2, False), "mongod2": (1, 1, False), "mongod4": (1, 1, False)})
    said = "\n".join(map(str, heard))
    assert "reconfig: changed (config version 2:" in said and "STARTUP2" in said   # streamed, with what it waits for
    sent = len(rs.sent("replSetReconfig"))
    steps = _bootstrap(30, heard.append)(target)
    assert [s[:2] for s in steps] == [("replica set", "unchanged"), ("replica set members", "unchanged")]
    assert len(rs.sent("replSetReconfig")) == sent


def test_dbrs_install_dry_run_on_the_primary_host_lists_the_reconfig_steps(psa, tmp_path):
    from installer import secrets as secretsmod
    from installer import spec as specmod
    from installer.cli.install import _preview
    from installer.host.target import Target

    rs = psa.initiated().start()
    rs.spare("mongod4").start()
    path = write_spec(tmp_path, rs, [("mongod1", "mongod1", "primary"), ("mongod2", "mongod2", "secondary"),
                                     ("mongod4", "mongod4", "secondary")])
    spec = specmod.load(path)
    target = Target(spec=spec, members=(spec.primary,), host_members=(spec.primary,), spec_path=path,
                    secrets=secretsmod.load(path, keyfile=True))
    name, status, detail = _preview(target)[-1]
    assert (name, status) == ("replica set members", "would change") and "mongod4" in detail
    assert not rs.sent("replSetReconfig")
