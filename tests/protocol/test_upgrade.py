"""Rolling upgrade and FCV against the stand-in set: order, the commands sent, and what MongoDB refuses.

The stand-in reports each member's binary in buildInfo, the FCV in getParameter and, like 7.0+, refuses
setFeatureCompatibilityVersion without confirm: true or while a member runs an older binary. The host side
(packages, systemctl restart) is a recorder that restarts the stand-in member on the new binary.
"""

from __future__ import annotations

import pytest

from installer import secrets as secretsmod, spec as specmod, upgrade, upgrade_run
from installer.errors import DbrsError

from .standin import command_doc


class FakeHost:
    def __init__(self, rs, version="8.0.4"):
        self.rs, self.version, self.done = rs, version, []

    def install(self, version):
        self.done.append(("packages", version))

    def restart(self, name):
        self.done.append(("restart", name))
        self.rs.restart(name, self.version)


def load(path):
    return specmod.load(path), secretsmod.load(path, keyfile=True)


@pytest.fixture
def old_set(standin, spec_for):
    rs = standin.initiated().running("7.0.14").start()
    spec, secrets = load(spec_for(rs))
    return rs, spec, secrets


def test_the_primary_host_refuses_first_and_names_the_hosts_to_run_it_on(old_set):
    rs, spec, secrets = old_set
    host = FakeHost(rs)
    decision, done = upgrade_run.run(spec, secrets, "8.0", {"mongod1"}, host)
    assert decision.status == "not yet" and done == [] and host.done == []
    assert "goes last" in decision.message and "mongod2 7.0.14" in decision.message
    assert not rs.sent("replSetStepDown", "setFeatureCompatibilityVersion")


def test_secondaries_then_arbiter_then_primary_after_a_stepdown_then_fcv(old_set):
    rs, spec, secrets = old_set
    host = FakeHost(rs)
    for local in ({"mongod2"}, {"mongod3"}):
        decision, done = upgrade_run.run(spec, secrets, "8.0", local, host, wait_s=20)
        assert decision.status == "upgrade" and [s.action for s in done] == ["packages", "restart"]
    assert not rs.sent("replSetStepDown")
    assert rs.member("mongod1").version == "7.0.14"

    decision, done = upgrade_run.run(spec, secrets, "8.0", {"mongod1"}, host, wait_s=20)
    assert [s.action for s in done] == ["packages", "stepdown", "restart"]
    assert host.done == [("packages", "8.0"), ("restart", "mongod2"), ("packages", "8.0"), ("restart", "mongod3"),
                         ("packages", "8.0"), ("restart", "mongod1")]
    [sd] = rs.sent("replSetStepDown")
    assert sd.member == "mongod1"
    assert {m.version for m in rs.members.values()} == {"8.0.4"}
    assert rs.fcv == {"version": "7.0"}, "binaries move first; the FCV only on --set-fcv"

    again, _ = upgrade_run.run(spec, secrets, "8.0", {"mongod1"}, host)
    assert again.status == "done" and "--set-fcv 8.0" in again.message

    view = upgrade_run.read_view(spec, secrets, set())
    cmd = upgrade.decide_fcv(view, "8.0")
    with upgrade_run.connection.connect("mongod1", "127.0.0.1", rs.current_primary() and rs.member(rs.current_primary()).port,
                                   user="admin", password=secrets.password("admin")) as c:
        c.command(cmd)
    [fcv] = rs.sent("setFeatureCompatibilityVersion")
    assert command_doc(fcv.doc) == {"setFeatureCompatibilityVersion": "8.0", "confirm": True}
    assert rs.fcv == {"version": "8.0"}
    assert upgrade.decide_fcv(upgrade_run.read_view(spec, secrets, set()), "8.0") is None


def test_a_member_is_not_restarted_while_another_is_down(old_set):
    rs, spec, secrets = old_set
    host = FakeHost(rs)
    rs.member("mongod3").stop()
    with pytest.raises(DbrsError, match="not healthy: mongod3"):
        upgrade_run.run(spec, secrets, "8.0", {"mongod2"}, host)
    assert host.done == []


def test_fcv_below_the_old_series_is_refused_with_the_fix(standin, spec_for):
    rs = standin.initiated().running("7.0.14", fcv="6.0").start()
    spec, secrets = load(spec_for(rs))
    with pytest.raises(DbrsError, match=r"feature compatibility version is 6.0, not 7.0.*--set-fcv 7.0"):
        upgrade_run.run(spec, secrets, "8.0", {"mongod2"}, FakeHost(rs))


def test_the_stand_in_refuses_fcv_without_confirm_as_mongodb_7_does(standin, spec_for):
    rs = standin.initiated().running("8.0.4", fcv="7.0").start()
    spec, secrets = load(spec_for(rs))
    with upgrade_run.connection.connect("mongod1", "127.0.0.1", rs.member("mongod1").port, user="admin",
                                   password=secrets.password("admin")) as c:
        with pytest.raises(DbrsError, match="7369100"):
            c.command({"setFeatureCompatibilityVersion": "8.0"})
    assert rs.fcv == {"version": "7.0"}


def _cli(*args):
    from click.testing import CliRunner

    from installer.cli import main

    return CliRunner().invoke(main, ["upgrade", *args], catch_exceptions=False)


def test_cli_dry_run_lists_this_hosts_steps_and_changes_nothing(old_set, spec_for):
    rs, spec, _ = old_set
    path = spec_for(rs)
    before = open(path).read()
    r = _cli("--to", "8.0", "--dry-run", "--config", path)
    assert r.exit_code == 0, r.output
    lines = [line for line in r.output.splitlines() if line.startswith("would change")]
    assert [line.split(" on ")[0].split(" (")[0] for line in lines][:1] == ["would change install MongoDB 8.0 packages"]
    assert "step mongod1 down" in r.output and r.output.index("restart mongod2") < r.output.index("step mongod1 down")
    assert not rs.sent("replSetStepDown") and open(path).read() == before


def test_cli_set_fcv_needs_yes_off_a_terminal_then_sends_confirm(standin, spec_for):
    rs = standin.initiated().running("8.0.4", fcv="7.0").start()
    path = spec_for(rs)
    r = _cli("--set-fcv", "8.0", "--config", path)
    assert r.exit_code == 2 and "one-way" in r.output and "--yes" in r.output
    assert not rs.sent("setFeatureCompatibilityVersion")
    r = _cli("--set-fcv", "8.0", "--yes", "--config", path)
    assert r.exit_code == 0, r.output
    assert "changed   feature compatibility version 7.0 -> 8.0" in r.output
    assert [command_doc(s.doc) for s in rs.sent("setFeatureCompatibilityVersion")] == [
        {"setFeatureCompatibilityVersion": "8.0", "confirm": True}]
    assert _cli("--set-fcv", "8.0", "--yes", "--config", path).output.startswith("unchanged")


def test_cli_set_fcv_refuses_while_a_member_runs_the_old_binary(standin, spec_for):
    rs = standin.initiated().running("7.0.14").start()
    rs.member("mongod2").version = "8.0.4"
    r = _cli("--set-fcv", "8.0", "--yes", "--config", spec_for(rs))
    assert r.exit_code == 1 and "not every member runs 8.0: mongod1 7.0.14" in r.output
    assert not rs.sent("setFeatureCompatibilityVersion")


def test_spec_version_line_is_rewritten_keeping_everything_else(tmp_path):
    text = '[cluster]\nname = "dbrs"\nmongodb_version = "7.0"       # 7.0 or 8.0\n'
    p = tmp_path / "cluster.toml"
    p.write_text(text)
    p.chmod(0o640)
    assert upgrade_run.set_spec_version(str(p), "8.0") is True
    assert p.read_text() == text.replace('"7.0"', '"8.0"') and (p.stat().st_mode & 0o777) == 0o640
    assert upgrade_run.set_spec_version(str(p), "8.0") is False


def test_a_member_that_comes_back_on_the_old_binary_stops_the_run_with_the_fix(old_set):
    """The package did not move the binary (a wrong --packages-from, say): no next member is touched."""
    rs, spec, secrets = old_set
    host = FakeHost(rs, version="7.0.14")
    with pytest.raises(DbrsError) as e:
        upgrade_run.run(spec, secrets, "8.0", {"mongod2", "mongod3"}, host, wait_s=3)
    msg = str(e.value)
    assert msg.startswith("mongod2 is not healthy on 8.0 within 3 s") and "journalctl -u dbrs-mongod@mongod2" in msg
    assert host.done == [("packages", "8.0"), ("restart", "mongod2")]


def test_the_bundle_is_resealed_with_the_upgraded_spec_and_its_secrets_kept(tmp_path):
    from installer import secrets as secretsmod

    from ..conftest import PSA, write_cluster

    path = write_cluster(tmp_path, PSA.replace('"8.0"', '"7.0"'))
    sec = secretsmod.load(path, keyfile=True)
    bundle = path.parent / "bundle.dbrs"
    bundle.write_bytes(secretsmod.seal_bundle(path.read_bytes(), sec, "correct horse battery"))
    with pytest.raises(upgrade_run.InputError):
        upgrade_run.open_bundle(str(path), "wrong passphrase!!")
    assert upgrade_run.set_spec_version(str(path), "8.0")
    assert upgrade_run.reseal(str(path), "correct horse battery") is True
    opened = upgrade_run.open_bundle(str(path), "correct horse battery")
    assert 'mongodb_version = "8.0"' in opened.spec_text and opened.secrets.keyfile == sec.keyfile
    assert oct(bundle.stat().st_mode & 0o777) == "0o600"
    assert upgrade_run.reseal(str(path), "correct horse battery") is False


def test_cli_refuses_a_downgrade_from_the_specs_series_before_connecting(standin, spec_for):
    """Found by the black-box attack: `--to 7.0` on an 8.0 spec went to the set and failed there."""
    rs = standin.initiated().running("8.0.4", fcv="8.0").start()
    path = spec_for(rs)
    assert 'mongodb_version = "7.0"' not in open(path).read()
    r = _cli("--to", "7.0", "--dry-run", "--config", path)
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: --to: 8.0 -> 7.0 is a downgrade") and r.stderr.count("\n") == 1
    assert not rs.sent("hello") and not rs.sent("isMaster") and not rs.sent("replSetGetStatus")


@pytest.mark.parametrize("args,flag", [
    (["--to", ""], "--to"), (["--to", "  "], "--to"), (["--set-fcv", ""], "--set-fcv"),
    (["--to", "x" * 100_000], "--to"), (["--set-fcv", "9" * 100_000, "--yes"], "--set-fcv"),
    ([], "--to"), (["--to", "8.0", "--set-fcv", "8.0"], "--set-fcv"),
])
def test_a_bad_version_argument_is_one_short_line_naming_the_flag_and_the_versions(tmp_path, args, flag):
    """Black-box attack F5: `--to ""` said `error: --to: or --set-fcv is needed, and only one of them`."""
    from ..conftest import PSA, write_cluster

    path = write_cluster(tmp_path, PSA)
    r = _cli(*args, "--dry-run", "--config", str(path))
    assert r.exit_code == 2, r.output
    assert r.output.startswith(f"error: {flag}") and r.output.count("\n") == 1 and len(r.output) < 300, r.output
    assert "7.0" in r.output and "8.0" in r.output and ": or " not in r.output
