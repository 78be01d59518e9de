"""Bootstrap against the stand-in set: the exact commands, their order, idempotence, failures."""

from __future__ import annotations

import socket

from click.testing import CliRunner

from installer import secrets as secretsmod, spec as specmod
from installer.cli import main
from installer.cli.install import _bootstrap
from installer.host.target import Target

from ..conftest import SECRETS
from .standin import command_doc

PASSWORDS = {line.split(" = ")[0]: line.split(" = ")[1].strip('"')
             for line in SECRETS.decode().splitlines() if line.endswith('"') and "basic" not in line}


def dbrs(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def tool_commands(rs):
    return [s for s in rs.log if s.name not in ("endSessions", "ping")]


def test_fresh_bootstrap_initiates_then_creates_users_then_sets_the_write_concern(standin, spec_for):
    rs = standin.start()
    path = spec_for(rs)
    r = dbrs("bootstrap", "--config", path, "--wait", "5")
    assert r.exit_code == 0, r.output
    sent = tool_commands(rs)
    assert [s.name for s in sent] == [
        "replSetInitiate", "createUser", "usersInfo", "rolesInfo", "createRole",
        "createUser", "createUser", "createUser", "getDefaultRWConcern", "setDefaultRWConcern", "replSetGetStatus"]
    m1, m2, m3 = (rs.member(n).address for n in ("mongod1", "mongod2", "mongod3"))
    assert command_doc(sent[0].doc) == {"replSetInitiate": {"_id": "dbrs", "members": [
        {"_id": 0, "host": m1, "priority": 2},
        {"_id": 1, "host": m2, "priority": 1},
        {"_id": 2, "host": m3, "priority": 0, "arbiterOnly": True}]}}
    assert sent[0].member == "mongod1" and sent[0].user is None
    # The localhost exception allows one user: admin, unauthenticated; the rest as admin.
    assert sent[1].user is None and command_doc(sent[1].doc) == {
        "createUser": "admin", "pwd": PASSWORDS["admin"], "roles": [{"role": "root", "db": "admin"}],
        "mechanisms": ["SCRAM-SHA-256"]}
    assert all(s.user == "admin" for s in sent[2:])
    assert command_doc(sent[4].doc) == {"createRole": "dbrsOplogReplay", "roles": [],
                                        "privileges": [{"resource": {"anyResource": True}, "actions": ["anyAction"]}]}
    users = {s.doc["createUser"]: command_doc(s.doc) for s in sent if s.name == "createUser"}
    assert users["backup"]["roles"] == [{"role": "backup", "db": "admin"}, {"role": "clusterMonitor", "db": "admin"},
                                        {"role": "read", "db": "local"}]
    assert users["restore"]["roles"] == [{"role": "restore", "db": "admin"}, {"role": "dbrsOplogReplay", "db": "admin"}]
    assert users["monitor"]["roles"] == [{"role": "clusterMonitor", "db": "admin"}]
    assert "express" not in users
    assert {u: d["pwd"] for u, d in users.items()} == {u: PASSWORDS[u] for u in users}
    assert command_doc(sent[9].doc) == {"setDefaultRWConcern": 1,
                                        "defaultWriteConcern": {"w": "majority", "wtimeout": 10000}}
    assert f"connect:      mongodb://{m1},{m2}/?replicaSet=dbrs\n" in r.output
    assert "readPreference=secondaryPreferred" in r.output
    assert not any(pw in r.output for pw in PASSWORDS.values())


def test_second_run_changes_nothing_and_sends_no_initiate_or_create(standin, spec_for):
    rs = standin.start()
    path = spec_for(rs)
    assert dbrs("bootstrap", "--config", path, "--wait", "5").exit_code == 0
    before = len(rs.log)
    r = dbrs("bootstrap", "--config", path, "--wait", "5")
    assert r.exit_code == 0, r.output
    names = {s.name for s in rs.log[before:]}
    assert not names & {"replSetInitiate", "createUser", "createRole", "setDefaultRWConcern"}
    assert "changed" not in r.output.replace("unchanged", "")


def test_mongo_express_user_reads_and_writes_documents_only(standin, spec_for):
    rs = standin.start()
    assert dbrs("bootstrap", "--config", spec_for(rs, express=True), "--wait", "5").exit_code == 0
    express = [s.doc for s in rs.log if s.name == "createUser" and s.doc["createUser"] == "express"]
    assert express[0]["roles"] == [{"role": "readWriteAnyDatabase", "db": "admin"},
                                   {"role": "clusterMonitor", "db": "admin"}]


def test_turning_mongo_express_off_drops_its_user(standin, spec_for):
    """Its unit and env file went with it, but the readWriteAnyDatabase user stayed (found by the black-box attack)."""
    rs = standin.start()
    assert dbrs("bootstrap", "--config", spec_for(rs, express=True), "--wait", "5").exit_code == 0
    r = dbrs("bootstrap", "--config", spec_for(rs), "--wait", "5")
    assert r.exit_code == 0, r.output
    assert [s.doc["dropUser"] for s in rs.log if s.name == "dropUser"] == ["express"]
    assert "dropped express" in r.output
    again = dbrs("bootstrap", "--config", spec_for(rs), "--wait", "5")
    assert len([s for s in rs.log if s.name == "dropUser"]) == 1 and "dropped" not in again.output


def test_write_concern_1_is_set_with_its_timeout_and_a_warning(standin, spec_for):
    rs = standin.start()
    r = dbrs("bootstrap", "--config", spec_for(rs, write_concern="1"), "--wait", "5")
    assert r.exit_code == 0, r.output
    sent = [command_doc(s.doc) for s in rs.log if s.name == "setDefaultRWConcern"]
    assert sent == [{"setDefaultRWConcern": 1, "defaultWriteConcern": {"w": 1, "wtimeout": 10000}}]
    assert "not zero RPO" in r.output


def test_a_member_that_never_answers_is_named_with_the_likely_cause(standin, spec_for):
    standin.member("mongod1").start()
    silent = socket.socket()
    silent.bind(("127.0.0.1", standin.member("mongod3").port))
    silent.listen(8)  # accepts connections, never answers: what a host behind a dropping firewall looks like
    try:
        r = CliRunner().invoke(main, ["bootstrap", "--config", spec_for(standin), "--wait", "1"])
    finally:
        silent.close()
    assert r.exit_code == 1
    err = r.output
    assert "no answer from mongod2" in err and "connection refused" in err and "dbrs-mongod@mongod2" in err
    assert "mongod3" in err and "firewall" in err
    assert "mongod1" not in err.split("no answer from", 1)[1]
    assert standin.log == []


def test_different_keyfiles_stop_the_initiate_with_that_reason(standin, spec_for):
    standin.keyfile_mismatch.add("mongod2")
    rs = standin.start()
    r = CliRunner().invoke(main, ["bootstrap", "--config", spec_for(rs), "--wait", "5"])
    assert r.exit_code == 1
    assert "mongod2" in r.output and "keyfiles differ" in r.output
    assert [s.name for s in tool_commands(rs)] == ["replSetInitiate"]


def test_users_of_another_cluster_are_not_overwritten(standin, spec_for, tmp_path):
    rs = standin.initiated().start()
    path = spec_for(rs)
    secrets = tmp_path / "etc/dbrs/secrets.toml"
    secrets.chmod(0o600)
    secrets.write_bytes(SECRETS.replace(b"admin-pw-0", b"other-pw-0"))
    r = CliRunner().invoke(main, ["bootstrap", "--config", path, "--wait", "5"])
    assert r.exit_code == 1
    assert "not with the admin password of secrets.toml" in r.output
    assert [s for s in rs.log if s.name == "createUser"] == []   # another user logged in: no user is created


def test_a_wrong_admin_password_is_named_even_when_another_member_is_primary(standin, spec_for, tmp_path):
    """It was 'no admin user yet … run `dbrs bootstrap` on <the host you are on>' (found by the black-box attack)."""
    rs = standin.initiated().start()
    path = spec_for(rs)
    assert CliRunner().invoke(main, ["stepdown", "--config", path, "--secs", "30"]).exit_code == 0
    secrets = tmp_path / "etc/dbrs/secrets.toml"
    secrets.chmod(0o600)
    secrets.write_bytes(SECRETS.replace(b"admin-pw-0", b"other-pw-0"))
    r = CliRunner().invoke(main, ["bootstrap", "--config", path, "--wait", "5"])
    assert r.exit_code == 1, r.output
    assert "admin cannot log in to mongod2" in r.output and "no admin user yet" not in r.output


def test_dbrs_install_bootstrap_step_reports_changed_then_unchanged(standin, spec_for):
    rs = standin.start()
    path = spec_for(rs)
    spec = specmod.load(path)
    target = Target(spec=spec, members=(spec.primary,), host_members=spec.members, spec_path=path)
    step = _bootstrap(5, None)
    first, members = step(target)
    second, _ = step(target)
    assert members[:2] == ("replica set members", "unchanged")
    assert first[0] == second[0] == "replica set"
    assert (first[1], second[1]) == ("changed", "unchanged")
    assert "initiate" in first[2] and second[2].startswith("mongodb://")
    assert secretsmod.load(path, keyfile=True).password("admin") not in first[2]


def test_rerun_with_a_member_down_returns_at_once_and_names_it(standin, spec_for):
    """Nothing for the set to do: no 600 s wait, exit 0, the missing member and what waits are said."""
    import time

    rs = standin.initiated().start()
    rs.member("mongod2").stop()
    path = spec_for(rs)
    started = time.monotonic()
    r = CliRunner().invoke(main, ["bootstrap", "--config", path, "--wait", "600"])
    assert r.exit_code == 0, r.output
    assert time.monotonic() - started < 10
    assert "waiting   health: mongod2 is down" in r.output and "catches up once back" in r.output
    assert not {s.name for s in rs.log} & {"replSetInitiate", "createUser", "setDefaultRWConcern"}
    spec = specmod.load(path)
    target = Target(spec=spec, members=(spec.primary,), host_members=spec.members, spec_path=path)
    (name, status, detail), _ = _bootstrap(600, None)(target)
    assert (name, status) == ("replica set", "waiting") and "mongod2 is down" in detail


def test_a_fresh_set_waiting_for_a_member_streams_progress_without_a_terminal(standin, spec_for):
    """CliRunner's stderr is no terminal (a journal, CI, `| tee`): the wait still says who is up and missing."""
    rs = standin
    for name in ("mongod1", "mongod3"):
        rs.member(name).start()
    r = CliRunner().invoke(main, ["bootstrap", "--config", spec_for(rs), "--wait", "1.5"])
    assert r.exit_code == 1
    waits = [line for line in r.output.splitlines() if "waiting for: mongod2" in line]
    assert waits and waits[0].startswith("  ... up: mongod1, mongod3; waiting for: mongod2")
    assert waits[0].endswith("/1.5 s]") and "raise --wait to wait longer" in r.output


def test_preview_lists_the_set_steps_from_read_only_queries(standin, spec_for):
    """`dbrs-install --dry-run` on the primary's host: what the bootstrap would do, changing nothing."""
    from installer.replset.bootstrap import preview

    rs = standin.initiated().start()
    del rs.users["monitor"]
    rs.rw = None
    path = spec_for(rs)
    spec, secrets = specmod.load(path), secretsmod.load(path, keyfile=True)
    steps = preview(spec, secrets)
    assert steps == [("initiate", "unchanged", "replica set dbrs exists"),
                     ("users", "would change", "create monitor"),
                     ("write concern", "would change", "w:1 -> w:majority, wtimeout 10 s")]
    assert {s.name for s in rs.log} <= {"usersInfo", "getDefaultRWConcern", "endSessions"}


def test_preview_of_a_set_not_yet_initiated(standin, spec_for):
    from installer.replset.bootstrap import preview

    rs = standin.start()
    path = spec_for(rs)
    steps = preview(specmod.load(path), secretsmod.load(path, keyfile=True))
    assert [(s[0], s[1]) for s in steps] == [("initiate", "would change"), ("users", "would change"),
                                             ("write concern", "would change")]
    assert rs.log == []
