"""`dbrs backup` against the stand-in replica set (MongoDB wire + SCRAM): who dumps, as which user, what is asked.

The stand-in set (tests/protocol/standin.py) enforces roles, so these runs
also prove the backup user's roles are enough and that nothing is asked as
another user. mongodump is the stand-in on PATH.
"""

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from installer.backup import history
from installer.cli import main

from ..conftest import write_cluster
from .conftest import spec_text
from .standin import StandInMember

STANDINS = Path(__file__).resolve().parents[1] / "standins"


@pytest.fixture
def env(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "mongodump").symlink_to(STANDINS / "mongodump")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DBRS_STANDIN_RECORD", str(tmp_path / "record.jsonl"))
    monkeypatch.setattr(history, "STATE_FILE", tmp_path / "state" / "state.json")
    # buildInfo needs no authentication or role on MongoDB; the shared stand-in does not serve it yet
    monkeypatch.setattr(StandInMember, "cmd_buildinfo",
                        lambda self, request, doc: request.reply({"version": "8.0.4", "ok": 1}), raising=False)
    allowed = StandInMember.allowed
    monkeypatch.setattr(StandInMember, "allowed",
                        lambda self, user, low, doc: low == "buildinfo" or allowed(self, user, low, doc))
    return tmp_path


def spec_with_backup_dir(rs, tmp):
    text = spec_text(rs) + f'\n[backup]\ndir = "{tmp / "backups"}"\n'
    return str(write_cluster(tmp / "etc", text))


def backup(path, *extra):
    return CliRunner().invoke(main, ["backup", "--config", path, *extra])


def test_backup_runs_on_the_secondary_as_the_backup_user(standin, env):
    rs = standin.initiated().start()
    path = spec_with_backup_dir(rs, env)
    r = backup(path, "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["status"] == "done" and data["manifest"]["member"] == "mongod2"
    assert data["manifest"]["mongod_version"] == "8.0.4"
    sent = [s for s in rs.log if s.name not in ("endSessions",)]
    assert {s.user for s in sent} == {"backup"}                      # least privilege, nothing as admin
    assert {s.member for s in sent} <= {"mongod1", "mongod2"}
    assert [s.name for s in sent if s.member == "mongod2"].count("find") == 2   # oplog before and after the dump
    [rec] = [json.loads(line) for line in (env / "record.jsonl").read_text().splitlines()]
    assert f"--port={rs.member('mongod2').port}" in rec["argv"] and "--username=backup" in rec["argv"]
    assert not rec["password_in_argv"] and not rec["password_in_env"]


def test_with_the_secondary_down_the_primary_dumps(standin, env):
    rs = standin.initiated().start()
    rs.member("mongod2").stop()
    path = spec_with_backup_dir(rs, env)
    r = backup(path, "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["manifest"]["member"] == "mongod1"
    assert "no secondary is healthy" in data["manifest"]["member_state"]


def test_wrong_backup_password_fails_in_one_line(standin, env, monkeypatch):
    """AuthenticationFailed is also what a set without its users yet answers: the first runs after an
    install wait quietly (issue 9), past the grace period it is a failure."""
    from installer.backup import source as lib

    rs = standin.initiated().start()
    path = spec_with_backup_dir(rs, env)
    secrets = Path(path).with_name("secrets.toml")
    secrets.chmod(0o600)
    secrets.write_text(secrets.read_text().replace("backup-pw-", "wrong-pw--"))
    r = backup(path)
    assert r.exit_code == 0 and "not bootstrapped yet" in r.output and len(r.output.strip().splitlines()) == 1
    monkeypatch.setattr(lib, "BOOTSTRAP_GRACE_S", 0)
    r = backup(path)
    assert r.exit_code == 1 and "password in secrets.toml does not match" in r.output
    assert len(r.output.strip().splitlines()) == 1 and r.output.startswith("error: ")
    assert not list((env / "backups" / "full").glob("*.archive"))
