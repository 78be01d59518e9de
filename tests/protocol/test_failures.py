"""Every `dbrs` command that talks to MongoDB, through every failure class: one line, exit 1, no traceback.

The classes: authentication refused (code 18 from saslContinue), the
connection dropped mid-command, no answer in time (the server holds the
command past the socket timeout, then hangs up), and a server error. The
stand-in set injects them for every command but `hello`, so member
discovery works and the first real command fails, as on a real set whose
primary drops a connection or rejects a password.
"""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from installer.replset import connection
from installer.cli import COMMANDS, main

from .test_backup_protocol import STANDINS, env, spec_with_backup_dir  # noqa: F401 - env is a fixture

FAULTS = ("auth", "drop", "timeout", "error")
# `dbrs --help` commands that never open a MongoDB connection.
OFFLINE = {"init", "uri", "prune", "alert", "offsite", "tls", "member"}
# Each command that does, as the argv that reaches its first MongoDB command.
RUNS = {
    "bootstrap": ["bootstrap", "--wait", "5"],
    "status": ["status"],
    "degrade": ["degrade", "mongod2"],
    "recover": ["recover", "mongod2", "--wait", "5"],
    "stepdown": ["stepdown", "--wait", "5"],
    "reconfigure": ["reconfigure", "--wait", "5"],
    "backup": ["backup"],
    "oplog": ["oplog"],
    "restore": ["restore", "{backup}", "--yes"],
    "backup verify --drill": ["backup", "verify", "--drill"],
    "user add": ["user", "add", "app1", "--role", "readWrite@shop"],
    "user list": ["user", "list"],
    "user rotate": ["user", "rotate", "app1"],
    "user remove": ["user", "remove", "app1", "--yes"],
    "upgrade --to": ["upgrade", "--to", "8.0", "--dry-run"],
    "upgrade --set-fcv": ["upgrade", "--set-fcv", "8.0", "--yes"],
}


def test_every_command_that_talks_to_mongodb_is_covered():
    assert {name.split()[0] for name in RUNS} == set(COMMANDS) - OFFLINE


@pytest.fixture
def faulty(standin, env, monkeypatch):  # noqa: F811
    """An initiated stand-in set with one full backup taken, short client timeouts, and the drill's
    mongod/mongorestore on PATH (the drill's client is pointed at the stand-in)."""
    rs = standin.initiated().start()
    path = spec_with_backup_dir(rs, env)
    r = CliRunner().invoke(main, ["backup", "--config", path, "--json"])
    assert r.exit_code == 0, r.output
    name = json.loads(r.output)["name"]
    bin_dir = env / "bin"
    (bin_dir / "mongorestore").symlink_to(STANDINS / "mongorestore")
    fake = bin_dir / "mongod"
    fake.write_text("#!/bin/sh\n# the drill's scratch mongod; its client is redirected to the stand-in\nexec sleep 30\n")
    fake.chmod(0o755)
    monkeypatch.setattr(connection, "DEFAULT_TIMEOUT_MS", 400)
    monkeypatch.setattr(connection, "SOCKET_TIMEOUT_MIN_MS", 1000)
    real_client = connection.client
    primary_port = rs.member("mongod1").port

    def client(host, port, **kw):
        if host == "127.0.0.1" and port not in {m.port for m in rs.members.values()} and port is not None:
            port = primary_port   # the drill's scratch mongod
        return real_client(host, port, **kw)

    monkeypatch.setattr(connection, "client", client)
    rs.stall_s = 1.6
    return rs, path, name


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("command", sorted(RUNS))
def test_failure_is_one_line_and_exit_1(faulty, command, fault):
    rs, path, backup_name = faulty
    if command == "recover":
        rs.cfg_member("mongod2").update(votes=0, priority=0)
    rs.fault = fault
    argv = [a.replace("{backup}", backup_name) for a in RUNS[command]] + ["--config", path]
    r = CliRunner().invoke(main, argv)
    lines = r.output.strip().splitlines()
    assert r.exit_code == 1, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], r.output
    assert len(errors[0]) <= 600
    if command.split()[0] in ("bootstrap", "status", "degrade", "recover", "stepdown"):
        assert "mongod1" in errors[0], errors[0]   # names the member it talked to
    assert os.environ.get("PATH")
