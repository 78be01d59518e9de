"""Safe-reconfig claims of the protocol stand-in, checked against a real set (Vagrant tier, real_mongod).

The stand-in's `reconfig_error` must refuse at least what MongoDB refuses, with MongoDB's codes; the
PSA -> PSS order of `installer.replset.membership` rests on a new member's vote and the arbiter's removal
counting as two voter changes. Every unsafe config below is refused, so the set is not changed; the one
test that degrades a member recovers it before it ends. Environment: see test_replset_real.py.
"""

from __future__ import annotations

import copy

import pytest

from ..protocol.standin import reconfig_error

pytestmark = pytest.mark.real_mongod


def _primary_client(spec, secrets):
    from installer.replset import connection

    primary, _ = connection.find_primary(spec)
    return connection.client(primary.host, primary.port, user="admin", password=secrets.password("admin"))


def _live(c):
    return c.admin.command("replSetGetConfig")["config"], c.admin.command("replSetGetStatus")


def _next(config):
    new = {k: v for k, v in copy.deepcopy(config).items() if k != "term"}
    new["version"] = config["version"] + 1
    return new


def _refused(c, new):
    import pymongo.errors

    with pytest.raises(pymongo.errors.OperationFailure) as e:
        c.admin.command({"replSetReconfig": new, "maxTimeMS": 30000})
    return e.value


def _member(new, arbiter):
    return next(m for m in new["members"] if bool(m.get("arbiterOnly")) == arbiter and m.get("priority", 1) < 2)


def test_the_installed_set_needs_no_membership_step(real):
    from installer.replset import membership

    spec, secrets, _ = real
    with _primary_client(spec, secrets) as c:
        config, status = _live(c)
    assert membership.next_step(config, status, spec) == membership.Done(())


@pytest.mark.parametrize("case", ["arbiter priority", "votes 0 with priority", "arbiterOnly flip", "version jump",
                                  "newlyAdded from a user"])
def test_mongodb_refuses_what_the_stand_in_refuses_with_the_same_code(real, case):
    spec, secrets, _ = real
    with _primary_client(spec, secrets) as c:
        config, _ = _live(c)
        new = _next(config)
        if case == "arbiter priority":
            _member(new, True)["priority"] = 1
        elif case == "votes 0 with priority":
            _member(new, False).update(votes=0, priority=1)
        elif case == "arbiterOnly flip":
            _member(new, False).update(arbiterOnly=True, priority=0)
        elif case == "version jump":
            new["version"] += 1
        else:
            _member(new, False)["newlyAdded"] = True
        ours = reconfig_error(config, new, spec.cluster.name, committed=True)
        assert ours is not None, "the stand-in accepts it"
        theirs = _refused(c, new)
        assert theirs.code == ours[0], (theirs.code, theirs.details.get("errmsg"), ours)


def test_a_vote_given_and_the_arbiter_removed_in_one_reconfig_are_two_voter_changes(real):
    """Why PSA -> PSS takes two reconfigs (vote first, then the arbiter goes)."""
    from installer.replset import operations

    spec, secrets, _ = real
    secondary = next(m for m in spec.members if m.role == "secondary")
    operations.degrade(spec, secrets, secondary.name)
    try:
        with _primary_client(spec, secrets) as c:
            config, _ = _live(c)
            new = _next(config)
            new["members"] = [m for m in new["members"] if not m.get("arbiterOnly")]
            next(m for m in new["members"] if m["host"] == secondary.address).update(votes=1, priority=0)
            ours = reconfig_error(config, new, spec.cluster.name, committed=True)
            theirs = _refused(c, new)
            assert theirs.code == ours[0] == 103, theirs.details.get("errmsg")
            assert "at most 1 voting member" in theirs.details.get("errmsg", "")
    finally:
        operations.recover(spec, secrets, secondary.name, wait_s=300)
