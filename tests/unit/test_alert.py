"""dbrs-alert@: a failed unit is recorded for `dbrs status`, told to the operator, and exported to Prometheus."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from click.testing import CliRunner

from installer import alert, spec as specmod, systemd
from installer.backup import history
from installer.cli import main

from .backup_env import spec_text

INFO = {"Result": "exit-code", "ExecMainStatus": "1"}


@pytest.fixture
def state(tmp_path, monkeypatch):
    p = tmp_path / "state" / "state.json"
    monkeypatch.setattr(history, "STATE_FILE", p)
    return p


def make_spec(tmp_path, command=None, webhook=None):
    text = spec_text(tmp_path)
    extra = []
    if command:
        extra.append(f"command = {json.dumps(command)}")
    if webhook:
        extra.append(f'webhook = "{webhook}"')
    text = text.replace("[alerts]\n", "[alerts]\n" + "".join(e + "\n" for e in extra))
    return specmod.loads(text)


def test_failure_is_recorded_and_metrics_written_where_the_collector_is(tmp_path, state):
    spec = make_spec(tmp_path)
    (tmp_path / "textfile").mkdir()
    ev, problems = alert.handle(spec, "dbrs-backup.service", info=INFO, host="db2", now=1_764_300_000)
    assert problems == []
    assert ev["message"] == ("dbrs-backup.service failed on db2 (result exit-code, exit status 1); "
                             "see journalctl -u dbrs-backup.service")
    assert history.read_state()["failures"] == [ev]
    assert state.stat().st_mode & 0o777 == 0o600
    prom = (tmp_path / "textfile" / "dbrs_backup.prom").read_text()
    assert 'dbrs_unit_last_failure_timestamp_seconds{cluster="dbrs",unit="dbrs-backup.service"} 1764300000' in prom
    assert 'dbrs_backup_count{cluster="dbrs",kind="full"} 0' in prom


def test_state_keeps_only_recent_failures(tmp_path, state):
    spec = make_spec(tmp_path)
    for i in range(history.MAX_FAILURES + 10):
        alert.handle(spec, f"u{i}.service", info=INFO, host="h")
    failures = history.read_state()["failures"]
    assert len(failures) == history.MAX_FAILURES and failures[-1]["unit"] == f"u{history.MAX_FAILURES + 9}.service"


def test_operator_command_gets_the_event_without_a_shell_or_secrets(tmp_path, state, monkeypatch):
    out = tmp_path / "got.json"
    script = tmp_path / "page"
    script.write_text(f"#!/bin/sh\ncat > {out}\nenv > {out}.env\necho \"$@\" > {out}.argv\n")
    script.chmod(0o755)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", "/run/credentials/x")
    spec = make_spec(tmp_path, command=[str(script), "--team", "db; rm -rf /"])
    ev, problems = alert.handle(spec, "dbrs-oplog.service", info=INFO, host="db2")
    assert problems == []
    assert json.loads(out.read_text()) == ev
    env = out.with_suffix(".json.env").read_text()
    assert "DBRS_ALERT_UNIT=dbrs-oplog.service" in env and "CREDENTIALS_DIRECTORY" not in env
    assert out.with_suffix(".json.argv").read_text().strip() == "--team db; rm -rf /"


def test_webhook_gets_json_and_failures_are_reported_after_every_step(tmp_path, state):
    got = []

    class H(BaseHTTPRequestHandler):
        def do_POST(self):
            got.append((self.headers["Content-Type"], json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        spec = make_spec(tmp_path, command=["/bin/false"], webhook=f"http://127.0.0.1:{srv.server_port}/hook")
        ev, problems = alert.handle(spec, "dbrs-verify.service", info=INFO, host="db2")
    finally:
        srv.shutdown()
    assert got == [("application/json", ev)]
    assert problems == ["alerts.command exited 1"]
    assert history.read_state()["failures"][-1] == ev      # recorded even though the command failed


def test_unreachable_webhook_makes_the_alert_unit_fail(tmp_path, state, monkeypatch):
    spec_path = tmp_path / "cluster.toml"
    spec_path.write_text(spec_text(tmp_path).replace("[alerts]\n", '[alerts]\nwebhook = "http://127.0.0.1:9/x"\n'))
    monkeypatch.setattr(alert, "unit_result", lambda unit: INFO)
    r = CliRunner().invoke(main, ["alert", "--config", str(spec_path), "dbrs-backup.service"])
    assert r.exit_code == 1
    assert r.output.splitlines()[-1].startswith("error: alert recorded, but alerts.webhook unreachable")
    assert history.read_state(history.state_path(spec_path))["failures"][0]["unit"] == "dbrs-backup.service"


def test_parse_systemctl_show():
    assert systemd.parse_show("Result=exit-code\nExecMainStatus=2\n") == [{"Result": "exit-code", "ExecMainStatus": "2"}]
