"""`dbrs user ...` against the stand-in set with server-side SCRAM: the exact user documents, secrets.toml, the bundle."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from installer import secrets as secretsmod
from installer.cli import main

from ..conftest import SECRETS
from .standin import command_doc

MONGODB_URI_HOSTS = "mongodb://app@"


def dbrs(*args, input=None):
    return CliRunner().invoke(main, list(args), catch_exceptions=False, input=input)


def secrets_of(path):
    etc = Path(path).parent
    return secretsmod.parse_secrets_toml((etc / "secrets.toml").read_bytes(), b"", b"")


def sent(rs, *names):
    return [s for s in rs.log if s.name in names]


def can_login(rs, user, password):
    import pymongo

    m = rs.member("mongod1")
    c = pymongo.MongoClient(m.address, directConnection=True, username=user, password=password,
                            authSource="admin", authMechanism="SCRAM-SHA-256", serverSelectionTimeoutMS=2000)
    try:
        c.admin.command("ping")
        return True
    except pymongo.errors.OperationFailure:
        return False
    finally:
        c.close()


@pytest.fixture
def rs_path(standin, spec_for):
    rs = standin.initiated().start()
    return rs, spec_for(rs)


def test_add_sends_exactly_createuser_keeps_the_password_and_prints_it_once(rs_path):
    rs, path = rs_path
    r = dbrs("user", "add", "app", "--role", "readWrite@shop", "--role", "read@reports", "--config", path)
    assert r.exit_code == 0, r.output + r.stderr
    password = secrets_of(path).app_users["app"]
    assert len(password) == 32
    assert r.stdout.count(password) == 1 and f"created app: password {password}" in r.stdout
    created = sent(rs, "createUser")
    assert len(created) == 1 and created[0].user == "admin" and created[0].doc["$db"] == "admin"
    assert command_doc(created[0].doc) == {"createUser": "app", "pwd": password, "mechanisms": ["SCRAM-SHA-256"],
                                           "roles": [{"role": "readWrite", "db": "shop"},
                                                     {"role": "read", "db": "reports"}]}
    assert command_doc(sent(rs, "usersInfo")[0].doc) == {"usersInfo": {"user": "app", "db": "admin"}}
    assert can_login(rs, "app", password)
    assert stat.S_IMODE(os.stat(Path(path).parent / "secrets.toml").st_mode) == 0o600
    assert secrets_of(path).passwords == secretsmod.parse_secrets_toml(SECRETS, b"", b"").passwords
    assert "re-seal it with `sudo dbrs user seal --passphrase-file FILE`" in r.stderr
    # again: nothing sent but the lookup, no password shown
    rs.log.clear()
    again = dbrs("user", "add", "app", "--role", "read@reports", "--role", "readWrite@shop", "--config", path)
    assert again.exit_code == 0 and "unchanged app" in again.stdout and password not in again.stdout
    assert not sent(rs, "createUser", "updateUser")


def test_password_file_gets_mode_0600_and_the_password_stays_off_stdout(rs_path, tmp_path):
    rs, path = rs_path
    out = tmp_path / "app.pw"
    r = dbrs("user", "add", "app", "--role", "readWrite@shop", "--password-file", str(out), "--config", path)
    assert r.exit_code == 0, r.output
    password = out.read_text().strip()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600 and password == secrets_of(path).app_users["app"]
    assert password not in r.stdout + r.stderr and f"written to {out} (0600)" in r.stdout


def test_rotate_sends_updateuser_and_the_old_password_stops_working(rs_path):
    rs, path = rs_path
    dbrs("user", "add", "app", "--role", "readWrite@shop", "--config", path)
    old = secrets_of(path).app_users["app"]
    rs.log.clear()
    r = dbrs("user", "rotate", "app", "--config", path)
    assert r.exit_code == 0, r.output
    new = secrets_of(path).app_users["app"]
    assert new != old and f"rotated app: password {new}" in r.stdout
    assert [command_doc(s.doc) for s in sent(rs, "updateUser")] == [
        {"updateUser": "app", "pwd": new, "mechanisms": ["SCRAM-SHA-256"]}]
    assert can_login(rs, "app", new) and not can_login(rs, "app", old)
    assert secrets_of(path).app_pending == {}


def test_an_interrupted_rotate_keeps_the_new_password_and_the_next_run_finishes_it(rs_path):
    rs, path = rs_path
    dbrs("user", "add", "app", "--role", "readWrite@shop", "--config", path)
    old = secrets_of(path).app_users["app"]
    primary = rs.member("mongod1")
    primary.cmd_updateuser = lambda request, doc: request.command_err(
        code=91, codeName="ShutdownInProgress", errmsg="The server is in quiesce mode and will shut down")
    r = dbrs("user", "rotate", "app", "--config", path)
    assert r.exit_code == 1 and r.stderr.count("\n") == 1 and "run the same command again" in r.stderr
    pending = secrets_of(path).app_pending["app"]
    assert secrets_of(path).app_users["app"] == old and can_login(rs, "app", old)
    listed = dbrs("user", "list", "--config", path)
    assert "rotation unfinished" in listed.stdout and "dbrs user rotate app` again" in listed.stdout
    del primary.cmd_updateuser
    rs.log.clear()
    r = dbrs("user", "rotate", "app", "--config", path)
    assert r.exit_code == 0, r.output
    assert command_doc(sent(rs, "updateUser")[0].doc)["pwd"] == pending
    assert secrets_of(path).app_users["app"] == pending and secrets_of(path).app_pending == {}
    assert can_login(rs, "app", pending)


def test_an_interrupted_add_is_finished_with_the_password_already_kept(rs_path):
    rs, path = rs_path
    primary = rs.member("mongod1")
    primary.cmd_createuser = lambda request, doc: request.command_err(
        code=91, codeName="ShutdownInProgress", errmsg="The server is in quiesce mode and will shut down")
    r = dbrs("user", "add", "app", "--role", "readWrite@shop", "--config", path)
    assert r.exit_code == 1 and "kept in secrets.toml; run the same command again" in r.stderr
    kept = secrets_of(path).app_users["app"]
    del primary.cmd_createuser
    r = dbrs("user", "add", "app", "--role", "readWrite@shop", "--config", path)
    assert r.exit_code == 0 and f"password {kept}" in r.stdout and can_login(rs, "app", kept)


def test_list_and_remove(rs_path):
    rs, path = rs_path
    dbrs("user", "add", "app", "--role", "readWrite@shop", "--config", path)
    r = dbrs("user", "list", "--config", path)
    assert r.exit_code == 0
    assert command_doc(sent(rs, "usersInfo")[-1].doc) == {"usersInfo": 1}
    assert r.stdout.split() == ["app", "readWrite@shop", "password:", "secrets.toml"]  # dbrs' own users not listed
    rs.log.clear()
    assert dbrs("user", "remove", "app", "--config", path, input="n\n").exit_code != 0  # no terminal: needs --yes
    assert not sent(rs, "dropUser")
    r = dbrs("user", "remove", "app", "--yes", "--config", path)
    assert r.exit_code == 0, r.output
    assert [command_doc(s.doc) for s in sent(rs, "dropUser")] == [{"dropUser": "app"}]
    assert "app" not in rs.users and "app" not in secrets_of(path).app_users
    assert dbrs("user", "remove", "app", "--yes", "--config", path).exit_code == 2


@pytest.mark.parametrize("args,where,words", [
    (["add", "admin", "--role", "readWrite@shop"], "NAME", "one of dbrs' own users"),
    (["rotate", "backup"], "NAME", "one of dbrs' own users"),
    (["remove", "express", "--yes"], "NAME", "one of dbrs' own users"),
    (["add", "app", "--role", "readWrit@shop"], "--role", "did you mean readWrite?"),
    (["add", "app", "--role", "readWrite"], "--role", "is not ROLE@DATABASE"),
    (["add", "app", "--role", "clusterMonitor@shop"], "--role", "exists only in the admin database"),
    (["add", "app", "--role", "read@my.db"], "--role", "is not a database name"),
    (["add", "app", "--role", "__system@admin"], "--role", "internal to MongoDB"),
    # found by the black-box attack: an application holding these can drop dbrs' own users
    (["add", "app", "--role", "root@admin"], "--role", "lets the application change users"),
    (["add", "app", "--role", "userAdmin@admin"], "--role", "lets the application change users"),
    (["add", "app", "--role", "dbOwner@admin"], "--role", "lets the application change users"),
    (["add", "app", "--role", "restore@admin"], "--role", "lets the application change users"),
    (["add", "app", "--role", "userAdminAnyDatabase@admin"], "--role", "lets the application change users"),
    (["add", "app", "--role", "readWrite@local"], "--role", "holds the replica set's own data"),
    (["add", "app", "--role", "read@config"], "--role", "holds the replica set's own data"),
    (["add", "app"], "--role", "is required"),
    (["add", "a b", "--role", "read@x"], "NAME", "not a usable user name"),
    (["add", "x" * 5000, "--role", "read@x"], "NAME", "not a usable user name"),
    (["add", "app", "--role", "read@x", "--password-file", "/nonexistent/dir/pw"], "--password-file", "does not exist"),
    (["add", "app", "--role", "read@x", "--passphrase-file", "/nonexistent"], "--passphrase-file", "No such file"),
    (["rotate", "ghost"], "ghost", "not a user of the admin database"),
])
def test_bad_input_exits_2_names_the_flag_and_changes_nothing(rs_path, args, where, words):
    rs, path = rs_path
    before = (Path(path).parent / "secrets.toml").read_bytes()
    r = dbrs("user", *args, "--config", path)
    assert r.exit_code == 2, r.output + r.stderr
    assert r.stderr.startswith(f"error: {where}") and words in r.stderr and len(r.stderr) < 400, r.stderr
    assert r.stderr.count("\n") == 1
    assert not sent(rs, "createUser", "updateUser", "dropUser")
    assert (Path(path).parent / "secrets.toml").read_bytes() == before


def test_the_bundle_is_resealed_with_the_new_password(rs_path, tmp_path):
    rs, path = rs_path
    etc = Path(path).parent
    sec = secretsmod.parse_secrets_toml(SECRETS, b"k" * 8, b"b")
    (etc / "bundle.dbrs").write_bytes(secretsmod.seal_bundle(Path(path).read_text(), sec, "right passphrase"))
    pp = tmp_path / "pp"
    pp.write_text("wrong passphrase\n")
    r = dbrs("user", "add", "app", "--role", "readWrite@shop", "--passphrase-file", str(pp), "--config", path)
    assert r.exit_code == 2 and not sent(rs, "createUser") and "app" not in secrets_of(path).app_users
    pp.write_text("right passphrase\n")
    r = dbrs("user", "add", "app", "--role", "readWrite@shop", "--passphrase-file", str(pp), "--config", path)
    assert r.exit_code == 0, r.output
    assert f"re-sealed {etc / 'bundle.dbrs'}" in r.stdout and "note:" not in r.stderr
    opened = secretsmod.open_bundle((etc / "bundle.dbrs").read_bytes(), "right passphrase")
    assert opened.secrets.app_users == {"app": secrets_of(path).app_users["app"]}
    assert stat.S_IMODE((etc / "bundle.dbrs").stat().st_mode) == 0o600


def test_uri_names_an_application_user_without_its_password(rs_path):
    rs, path = rs_path
    dbrs("user", "add", "app", "--role", "readWrite@shop", "--config", path)
    r = dbrs("uri", "--user", "app", "--config", path)
    assert r.exit_code == 0
    assert r.stdout.splitlines()[0].startswith(MONGODB_URI_HOSTS) and "authSource=admin" in r.stdout
    assert secrets_of(path).app_users["app"] not in r.stdout


@pytest.mark.parametrize("name", ["nosuch", "a@b", "x" * 300])
def test_uri_refuses_a_user_the_cluster_does_not_have(rs_path, name):
    """Found by the black-box attack: it printed a string that could never log in."""
    _, path = rs_path
    r = dbrs("uri", "--user", name, "--config", path)
    assert r.exit_code == 2 and r.stdout == "", r.output
    assert r.stderr.startswith("error: --user: ") and "is not a user of this cluster" in r.stderr
    assert len(r.stderr.splitlines()) == 1 and len(r.stderr) < 300


def test_uri_names_dbrs_own_users_too(rs_path):
    _, path = rs_path
    r = dbrs("uri", "--user", "admin", "--config", path)
    assert r.exit_code == 0 and "mongodb://admin@" in r.stdout


def test_a_user_change_waits_for_dbrs_install_and_says_who_holds_the_lock(rs_path, monkeypatch):
    from installer import locks
    from installer.replset import users
    from installer.paths import INSTALL_LOCK

    rs, path = rs_path
    monkeypatch.setattr(users, "LOCK_WAIT_S", 0.3)
    with locks.held(INSTALL_LOCK, "test"):
        r = dbrs("user", "add", "app", "--role", "readWrite@shop", "--config", path)
    assert r.exit_code == 1 and f"holds {INSTALL_LOCK} (pid {os.getpid()})" in r.stderr
    assert not sent(rs, "createUser") and "app" not in secrets_of(path).app_users


def test_a_password_file_that_cannot_be_written_is_one_line_and_the_password_is_kept(rs_path, tmp_path):
    rs, path = rs_path
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "pw").mkdir()  # after the checks, a directory appears where the file goes
    from installer.replset import users

    with pytest.raises(users.DbrsError) as e:
        users.write_password_file(str(folder / "pw"), "secret-0000")
    assert "kept in secrets.toml" in str(e.value) and "secret-0000" not in str(e.value)
