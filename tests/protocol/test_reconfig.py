"""degrade / recover / stepdown: the replSetReconfig and replSetStepDown documents, and the refusals."""

from __future__ import annotations

import re

from click.testing import CliRunner

from installer.cli import main

from .standin import command_doc


def dbrs(*args):
    return CliRunner().invoke(main, list(args))


def reconfigs(rs):
    return [command_doc(s.doc)["replSetReconfig"] for s in rs.log if s.name == "replSetReconfig"]


def only_changed(old, new):
    """The members whose document differs between two configs, by host."""
    before = {m["host"]: m for m in old["members"]}
    return {m["host"]: {k: v for k, v in m.items() if before[m["host"]].get(k) != v}
            for m in new["members"] if m != before[m["host"]]}


def test_degrade_a_down_secondary_takes_its_vote_and_priority(standin, spec_for):
    rs = standin.initiated().start()
    before = dict(rs.config)
    rs.member("mongod2").stop()
    path = spec_for(rs)
    r = dbrs("degrade", "mongod2", "--config", path)
    assert r.exit_code == 0, r.output
    assert "mongod2 degraded: votes 0, priority 0 (config version 2)" in r.output
    [new] = reconfigs(rs)
    assert new["version"] == before["version"] + 1 and "term" not in new
    assert only_changed(before, new) == {rs.member("mongod2").address: {"votes": 0, "priority": 0}}
    assert {k: v for k, v in new.items() if k not in ("members", "version")} == \
        {k: v for k, v in before.items() if k not in ("members", "version", "term")}
    out = dbrs("status", "--config", path).output
    assert "degraded (votes 0): writes do not wait for it; run `dbrs recover mongod2`" in out
    assert "majority writes time out" not in out


def test_recover_gives_the_vote_back_first_then_the_priority(standin, spec_for):
    rs = standin.initiated().start()
    path = spec_for(rs)
    rs.member("mongod2").stop()
    assert dbrs("degrade", "mongod2", "--config", path).exit_code == 0
    degraded = dict(rs.config)
    rs.member("mongod2").start()
    r = dbrs("recover", "mongod2", "--config", path, "--wait", "10")
    assert r.exit_code == 0, r.output
    assert "mongod2 recovered: votes 1, priority 1 (config version 4)" in r.output
    _, vote, priority = reconfigs(rs)
    address = rs.member("mongod2").address
    assert (vote["version"], priority["version"]) == (3, 4)
    assert only_changed(degraded, vote) == {address: {"votes": 1}}
    assert only_changed(vote, priority) == {address: {"priority": 1}}
    assert "WARN" not in dbrs("status", "--config", path).output


def test_refusals_change_nothing(standin, spec_for):
    rs = standin.initiated().start()
    path = spec_for(rs)
    cases = {
        "mongod1": "mongod1: is the primary (run `dbrs stepdown` first, then degrade it)",
        "mongod3": "mongod3: is the arbiter",
        "mongod9": "mongod9: is not a member of the spec (known: mongod1, mongod2, mongod3)",
    }
    for member, message in cases.items():
        r = dbrs("degrade", member, "--config", path)
        assert r.exit_code == 2 and message in r.output, r.output
    r = dbrs("recover", "mongod2", "--config", path)
    assert r.exit_code == 2 and "mongod2: is not degraded" in r.output
    rs.member("mongod2").stop()
    assert dbrs("degrade", "mongod2", "--config", path).exit_code == 0
    r = dbrs("degrade", "mongod2", "--config", path)
    assert r.exit_code == 2 and "is already degraded" in r.output
    r = dbrs("recover", "mongod2", "--config", path)
    assert r.exit_code == 2 and "mongod2: is not healthy" in r.output
    assert len(reconfigs(rs)) == 1


def test_degrade_refuses_to_lose_the_majority(standin, spec_for):
    rs = standin.initiated().start()
    rs.member("mongod3").stop()
    r = dbrs("degrade", "mongod2", "--config", spec_for(rs))
    assert r.exit_code == 2
    assert "degrading it leaves 1 of 2 voting members up and 2 are needed" in r.output
    assert reconfigs(rs) == []


def test_stepdown_hands_over_and_times_the_gap(standin, spec_for):
    rs = standin.initiated().start()
    r = dbrs("stepdown", "--config", spec_for(rs), "--secs", "30")
    assert r.exit_code == 0, r.output
    m = re.fullmatch(r"mongod1 stepped down; mongod2 is PRIMARY; the set had no primary for (\d+\.\d) s\n", r.output)
    assert m and 0.2 <= float(m.group(1)) < 5
    [sent] = [command_doc(s.doc) for s in rs.log if s.name == "replSetStepDown"]
    assert sent == {"replSetStepDown": 30, "secondaryCatchUpPeriodSecs": 10}


def test_stepdown_without_a_healthy_secondary_is_refused(standin, spec_for):
    rs = standin.initiated().start()
    rs.member("mongod2").stop()
    r = dbrs("stepdown", "--config", spec_for(rs))
    assert r.exit_code == 2 and "no healthy electable secondary" in r.output
    assert not [s for s in rs.log if s.name == "replSetStepDown"]


def test_recover_waits_for_catch_up_before_giving_the_vote_back(standin, spec_for):
    """A lagged member that votes holds the majority commit point back (rs.reconfigForPSASet): the vote
    goes out only once the member is close to the primary, and the wait says what it waits for."""
    rs = standin.initiated().start()
    path = spec_for(rs)
    rs.member("mongod2").stop()
    assert dbrs("degrade", "mongod2", "--config", path).exit_code == 0
    rs.member("mongod2").start()
    rs.catching_up("mongod2", behind_s=50, per_s=20)
    r = dbrs("recover", "mongod2", "--config", path, "--wait", "20")
    assert r.exit_code == 0, r.output
    [(who, lag)] = rs.vote_grants
    assert who == "mongod2" and lag <= 2, f"the vote went back {lag:.0f} s behind"
    assert "waiting for mongod2 to catch up" in r.output
    assert "mongod2 recovered: votes 1, priority 1 (config version 4)" in r.output


def test_recover_that_times_out_keeps_the_member_without_a_vote(standin, spec_for):
    rs = standin.initiated().start()
    path = spec_for(rs)
    rs.member("mongod2").stop()
    assert dbrs("degrade", "mongod2", "--config", path).exit_code == 0
    rs.member("mongod2").start()
    rs.lag["mongod2"] = 50
    r = dbrs("recover", "mongod2", "--config", path, "--wait", "1")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.output.count("\n") <= 2 and "has not caught up within 1 s" in r.output
    assert "still degraded (votes 0)" in r.output
    assert rs.vote_grants == [] and len(reconfigs(rs)) == 1


def test_stepdown_shorter_than_the_catch_up_period_is_accepted(standin, spec_for):
    """MongoDB refuses stepDownForSecs < secondaryCatchUpPeriodSecs (BadValue): the catch-up period
    follows --secs instead of a fixed 10 s."""
    rs = standin.initiated().start()
    r = dbrs("stepdown", "--config", spec_for(rs), "--secs", "5")
    assert r.exit_code == 0, r.output
    [sent] = [command_doc(s.doc) for s in rs.log if s.name == "replSetStepDown"]
    assert sent["replSetStepDown"] == 5 and sent["secondaryCatchUpPeriodSecs"] <= 5


def test_stepdown_longer_than_an_hour_is_bad_input_before_anything_is_sent(standin, spec_for):
    """99999999999 s froze the old primary for millennia; the set later had no primary with 2 of 3 voters up."""
    rs = standin.initiated().start()
    r = dbrs("stepdown", "--config", spec_for(rs), "--secs", "99999999999")
    assert r.exit_code == 2 and "--secs" in r.output and "3600" in r.output
    assert not [s for s in rs.log if s.name == "replSetStepDown"]
