"""`dbrs status` on replSetGetStatus replies for a healthy PSA set, a down secondary, a down arbiter."""

from __future__ import annotations

import json

from click.testing import CliRunner

from installer.cli import main

from .test_backup_protocol import env  # noqa: F401 - a fixture
from .test_bootstrap import PASSWORDS


def status(path, *extra):
    return CliRunner().invoke(main, ["status", "--config", path, *extra])


def test_healthy_psa(standin, spec_for):
    rs = standin.initiated().start()
    path = spec_for(rs)
    r = status(path, "--check")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == "replica set dbrs: primary mongod1"
    assert any(line.split()[:3] == ["mongod2", rs.member("mongod2").address, "SECONDARY"] for line in lines)
    assert any(line.split()[:3] == ["mongod3", rs.member("mongod3").address, "ARBITER"] for line in lines)
    assert "oplog window: 50.0h" in r.output
    assert "default write concern: w:majority, wtimeout 10 s" in r.output
    assert "WARN" not in r.output and "all members healthy" in lines
    assert "last full backup: none in /var/backups/dbrs on this host" in r.output
    # least privilege: status reads as the monitor user only
    assert {s.user for s in rs.log if s.name != "endSessions"} == {"monitor"}
    assert not any(pw in r.output for pw in PASSWORDS.values())


def test_down_secondary_is_explained_with_what_to_do(standin, spec_for):
    rs = standin.initiated().start()
    rs.member("mongod2").stop()
    path = spec_for(rs)
    r = status(path)
    assert r.exit_code == 0
    assert "WARN secondary mongod2 is down (Error connecting to" in r.output
    assert "majority writes time out after 10 s; run `dbrs degrade mongod2` if it stays down" in r.output
    assert status(path, "--check").exit_code == 1
    data = json.loads(status(path, "--json").output)
    assert data["ok"] is False
    states = {m["name"]: (m["state"], m["health"]) for m in data["members"]}
    assert states == {"mongod1": ("PRIMARY", True), "mongod2": ("DOWN", False), "mongod3": ("ARBITER", True)}
    assert len(data["problems"]) == 1 and "dbrs degrade mongod2" in data["problems"][0]
    assert not any(pw in json.dumps(data) for pw in PASSWORDS.values())


def test_down_arbiter_warns_that_one_more_loss_stops_elections(standin, spec_for):
    rs = standin.initiated().start()
    rs.member("mongod3").stop()
    path = spec_for(rs)
    r = status(path, "--check")
    assert r.exit_code == 1
    assert "WARN arbiter mongod3 is down" in r.output and "start dbrs-mongod@mongod3 again" in r.output
    assert "degrade" not in r.output


def test_status_finds_the_primary_when_the_primary_role_member_is_down(standin, spec_for):
    rs = standin.initiated(primary="mongod2").start()
    rs.member("mongod1").stop()
    r = status(spec_for(rs), "--json")
    data = json.loads(r.output)
    assert data["primary"] == "mongod2"
    assert {s.member for s in rs.log} == {"mongod2"}


def test_wrong_monitor_password_is_one_line(standin, spec_for, tmp_path):
    rs = standin.initiated().start()
    path = spec_for(rs)
    secrets = tmp_path / "etc/dbrs/secrets.toml"
    secrets.chmod(0o600)
    secrets.write_text(secrets.read_text().replace("monitor-pw-0", "monitor-pw-X"))
    r = status(path)
    assert r.exit_code == 1
    assert r.output.count("\n") == 1 and "monitor cannot log in to mongod1" in r.output


def test_a_down_member_shows_when_it_was_last_heard_from(standin, spec_for):
    """mongod sets lastHeartbeat on every failed attempt too; lastHeartbeatRecv is when it last answered."""
    import time

    rs = standin.initiated().start()
    rs.member("mongod2").stop()
    time.sleep(3.2)
    path = spec_for(rs)
    r = status(path)
    header = next(line for line in r.output.splitlines() if line.split()[:1] == ["MEMBER"])
    assert header.split()[-2:] == ["LAST", "HEARD"]
    row = next(line for line in r.output.splitlines() if line.split()[:1] == ["mongod2"])
    assert row.split()[-2] != "1s" and int(row.split()[-2].rstrip("s")) >= 3, row
    data = json.loads(status(path, "--json").output)
    heard = {m["name"]: m["last_heard_s"] for m in data["members"]}
    assert heard["mongod1"] is None and heard["mongod2"] >= 3 and heard["mongod3"] < 3


def test_a_failing_off_site_copy_fails_status_check(standin, env):  # noqa: F811 - env is a fixture
    """`dbrs status` carries the off-site lag, and --check fails once a copy to a target has failed."""
    import shutil

    import pytest

    from .test_backup_protocol import spec_text, write_cluster

    if not shutil.which("rclone"):
        pytest.skip("rclone is not installed (tests/run installs it)")
    rs = standin.initiated().start()
    usb = env / "usb-not-mounted"
    usb.write_text("a file where the mount point should be\n")   # the target cannot take a copy, even as root
    text = (spec_text(rs) + f'\n[backup]\ndir = "{env / "backups"}"\n'
            + f'\n[[offsite]]\nname = "usb"\ntype = "path"\npath = "{usb}"\n')
    path = str(write_cluster(env / "etc", text))
    assert CliRunner().invoke(main, ["backup", "--config", path]).exit_code == 0
    r = status(path, "--check")
    assert r.exit_code == 0, r.output
    assert "off-site usb (path): no copy yet;" in r.output
    push = CliRunner().invoke(main, ["offsite", "push", "--catch-up", "--config", path])
    assert push.exit_code == 1, push.output
    r = status(path, "--check")
    assert r.exit_code == 1, r.output
    assert "WARN off-site copy to usb failed at" in r.output and "1 file(s) waiting" in r.output
    doc = json.loads(status(path, "--json").output)
    assert doc["offsite"]["problems"] and doc["offsite"]["targets"][0]["waiting"] == 1


def test_missing_firewall_table_is_a_problem_naming_the_fix(standin, spec_for, monkeypatch):
    """nftables.service or `nft flush ruleset` removed the table: status says so, --check fails."""
    from pathlib import Path

    from installer import spec as specmod
    from installer.host import facts, firewall

    rs = standin.initiated().start()
    path = spec_for(rs)
    spec = specmod.load(path)
    text = firewall.ruleset(spec, spec.members[:1], {m.host: (m.host,) for m in spec.members})
    (Path(path).parent / "firewall.nft").write_bytes(text)
    monkeypatch.setattr(facts, "service", lambda unit: facts.ServiceFact("enabled", "active"))
    monkeypatch.setattr(facts, "nft_table", lambda family, name: text.decode())
    assert status(path, "--check").exit_code == 0
    monkeypatch.setattr(facts, "nft_table", lambda family, name: None)
    r = status(path, "--check")
    assert r.exit_code == 1
    assert "WARN the firewall table inet dbrs is not loaded" in r.output and "dbrs-install" in r.output
    data = json.loads(status(path, "--json").output)
    assert len(data["firewall"]["problems"]) == 1
