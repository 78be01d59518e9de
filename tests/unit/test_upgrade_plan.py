"""The rolling-upgrade planner on data: whose turn, in which order, and what MongoDB refuses."""

import pytest

from installer import upgrade
from installer.errors import DbrsError, InputError
from installer.upgrade import MemberView as M, View


def psa(p="7.0.14", s="7.0.14", a="7.0.14", here="db2", fcv="7.0", primary="mongod1", lag=0.0):
    hosts = {"mongod1": "db1", "mongod2": "db2", "mongod3": "db3"}
    state = {"mongod1": "SECONDARY", "mongod2": "SECONDARY", "mongod3": "ARBITER", primary: "PRIMARY"}
    versions = {"mongod1": p, "mongod2": s, "mongod3": a}
    return View(tuple(M(n, hosts[n], state[n], versions[n], local=hosts[n] == here,
                        lag_s=None if n == "mongod3" else lag) for n in hosts), fcv)


def test_a_secondary_host_goes_first_packages_then_restart():
    d = upgrade.decide(psa(here="db2"), "8.0")
    assert d.status == "upgrade"
    assert [(s.action, s.member) for s in d.steps] == [("packages", ""), ("restart", "mongod2")]


def test_the_primary_host_refuses_while_others_are_old_and_names_them():
    d = upgrade.decide(psa(here="db1"), "8.0")
    assert d.status == "not yet" and d.steps == []
    assert "goes last" in d.message and "db2 or db3" in d.message


def test_the_primary_host_steps_down_then_restarts_once_the_rest_runs_8_0():
    d = upgrade.decide(psa(s="8.0.4", a="8.0.4", here="db1"), "8.0")
    assert [(s.action, s.member) for s in d.steps] == [("packages", ""), ("stepdown", "mongod1"),
                                                      ("restart", "mongod1")]


def test_a_host_already_done_points_at_the_next():
    d = upgrade.decide(psa(s="8.0.4", here="db2"), "8.0")
    assert d.status == "host done" and "db3" in d.message and "db1" not in d.message


def test_single_host_layout_does_the_primary_last():
    v = View(tuple(M(n, "h", st, "7.0.14", local=True, lag_s=0.0) for n, st in
                   (("mongod1", "PRIMARY"), ("mongod2", "SECONDARY"), ("mongod3", "ARBITER"))), "7.0")
    assert [(s.action, s.member) for s in upgrade.decide(v, "8.0").steps] == [
        ("packages", ""), ("restart", "mongod2"), ("restart", "mongod3"), ("stepdown", "mongod1"), ("restart", "mongod1")]


def test_interrupted_after_the_stepdown_resumes_with_the_old_binary_member():
    """The old primary stepped down but was not restarted: it is an old secondary now, and goes on its own."""
    v = psa(p="7.0.14", s="8.0.4", a="8.0.4", here="db1", primary="mongod2")
    assert [(s.action, s.member) for s in upgrade.decide(v, "8.0").steps] == [("packages", ""), ("restart", "mongod1")]


def test_done_says_set_fcv_is_next_and_one_way():
    d = upgrade.decide(psa(p="8.0.4", s="8.0.4", a="8.0.4"), "8.0")
    assert d.status == "done" and "--set-fcv 8.0" in d.message and "one-way" in d.message
    assert "set-fcv" not in upgrade.decide(psa(p="8.0.4", s="8.0.4", a="8.0.4", fcv="8.0"), "8.0").message


@pytest.mark.parametrize("view,words", [
    (psa(fcv="6.0"), "feature compatibility version is 6.0, not 7.0"),
    (View(psa().members, "7.0", fcv_target="8.0"), "is changing (7.0 -> 8.0)"),
    (View(tuple(m if m.name != "mongod3" else M("mongod3", "db3", "(not reachable/healthy)", None)
                for m in psa().members), "7.0"), "not healthy: mongod3"),
    (psa(lag=60.0), "secondaries are behind"),
])
def test_refused_before_anything_changes(view, words):
    with pytest.raises(DbrsError, match=r".*") as e:
        upgrade.decide(view, "8.0")
    assert words in str(e.value)


@pytest.mark.parametrize("frm,to,words", [
    ("6.0", "8.0", "6.0 -> 7.0 -> 8.0"),
    ("8.0", "7.0", "downgrade"),
    ("7.0", "9.0", "not a MongoDB version dbrs installs"),
])
def test_jumps_mongodb_does_not_support_name_the_path(frm, to, words):
    with pytest.raises(InputError) as e:
        upgrade.check_jump(frm, to)
    assert words in str(e.value) and e.value.field == "--to"


def test_a_6_0_set_is_refused_with_the_path():
    with pytest.raises(InputError, match="6.0 -> 7.0 -> 8.0"):
        upgrade.decide(psa(p="6.0.19", s="6.0.19", a="6.0.19", fcv="6.0"), "8.0")


def test_fcv_only_when_every_member_runs_the_new_binary():
    with pytest.raises(DbrsError, match="not every member runs 8.0: mongod1 7.0.14"):
        upgrade.decide_fcv(psa(s="8.0.4", a="8.0.4"), "8.0")
    assert upgrade.decide_fcv(psa(p="8.0.4", s="8.0.4", a="8.0.4"), "8.0") == {
        "setFeatureCompatibilityVersion": "8.0", "confirm": True}
    assert upgrade.decide_fcv(psa(p="8.0.4", s="8.0.4", a="8.0.4", fcv="8.0"), "8.0") is None
