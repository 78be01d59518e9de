"""dbrs-install never swaps the keyfile under running members, and never drops a backup key it replaces."""

import stat

import pytest

from installer import cluster
from installer.errors import InputError
from installer.host.items import Action, Change, File, PathFact
from tests.conftest import write_cluster


def _change(path, old, new):
    before = PathFact(True, "file", old, 0o600, "root", "root")
    return Change(File(str(path), new, 0o600, secret=True), "changed", ["content"], before, (Action.WRITE,))


def test_other_keyfile_under_running_members_is_refused():
    changes = [_change(cluster.SIBLINGS["keyfile"], b"A" * 1008 + b"\n", b"B" * 1008 + b"\n")]
    with pytest.raises(InputError) as e:
        cluster.guard_replacement(changes, ["mongod2"], False, "20261204T000000Z")
    text = str(e.value)
    assert e.value.exit_code == 2 and text.startswith("--bundle:")
    assert "another cluster or a re-initialised one" in text and "--replace-secrets" in text and "mongod2" in text


def test_keyfile_swap_allowed_when_nothing_runs_or_asked_or_same_key():
    changes = [_change(cluster.SIBLINGS["keyfile"], b"A" * 1008 + b"\n", b"B" * 1008 + b"\n")]
    assert cluster.guard_replacement(changes, [], False, "S") == changes
    assert cluster.guard_replacement(changes, ["mongod2"], True, "S") == changes
    same = [_change(cluster.SIBLINGS["keyfile"], b"A" * 1008 + b"\n", b"A" * 1008)]
    assert cluster.guard_replacement(same, ["mongod2"], False, "S") == same


def test_replaced_backup_key_is_kept_before_the_new_one():
    changes = [_change(cluster.SIBLINGS["backup_key"], b"OLD\n", b"NEW\n")]
    out = cluster.guard_replacement(changes, [], False, "20261204T000000Z")
    assert len(out) == 2 and out[1] is changes[0]
    keep = out[0].item
    assert keep.path == "/etc/dbrs/backup.key.replaced-20261204T000000Z"
    assert keep.content == b"OLD\n" and keep.mode == 0o600 and keep.secret and "new" in out[0].reasons


def test_bundle_over_other_cluster_keeps_old_backup_key(tmp_path, run_dbrs, run_install):
    target = tmp_path / "host"
    write_cluster(target)
    old_key = (target / "etc/dbrs/backup.key").read_bytes()
    pp = tmp_path / "pass"
    pp.write_text("correct horse battery staple\n")
    assert run_dbrs("init", "--root", str(tmp_path / "a"), "--primary", "10.0.0.11", "--secondary", "10.0.0.12",
                    "--arbiter", "10.0.0.13", "--passphrase-file", str(pp)).exit_code == 0
    r = run_install("--root", str(target), "--role", "secondary", "--bundle", str(tmp_path / "a/etc/dbrs/bundle.dbrs"),
                    "--passphrase-file", str(pp))
    assert r.exit_code == 0, r.output
    kept = list((target / "etc/dbrs").glob("backup.key.replaced-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == old_key
    assert stat.S_IMODE(kept[0].stat().st_mode) == 0o600
    assert f"changed   file /etc/dbrs/{kept[0].name}" in r.output


def test_empty_member_is_refused(psa_root, run_install):
    r = run_install("--root", str(psa_root), "--member", "")
    assert r.exit_code == 2 and "--member: is empty" in r.output


def test_config_elsewhere_says_it_is_copied(tmp_path, run_install):
    other = tmp_path / "other"
    spec = write_cluster(other)
    target = tmp_path / "host"
    target.mkdir()
    r = run_install("--root", str(target), "--role", "secondary", "--config", str(spec))
    assert r.exit_code == 0, r.output
    first = r.output.splitlines()[0]
    assert f"spec {spec}; copied with its keyfile and secrets to /etc/dbrs/cluster.toml" in first
    r = run_install("--root", str(other), "--role", "secondary", "--config", str(spec))
    assert "copied" not in r.output.splitlines()[0]


def test_after_preflight_fail_stdout_never_says_changed(psa_root, run_install, monkeypatch):
    """The plan is computed, then preflight stops the run: stdout must not report it as done."""
    from installer.host import firewall, preflight

    # a check that fails before anything is applied, as a taken port does on a live host
    monkeypatch.setattr(firewall, "checks", lambda spec: [preflight.Check("FAIL", "port 27017",
                                                                           "taken by pid 537 (mongod)")])
    (psa_root / "etc/dbrs/cluster.toml").write_text((psa_root / "etc/dbrs/cluster.toml").read_text()
                                                    .replace('"10.0.0.0/24"', '"10.0.1.0/24"'))
    r = run_install("--root", str(psa_root), "--role", "secondary")
    assert r.exit_code == 1
    lines = r.output.splitlines()
    assert not [line for line in lines if line.startswith("changed")], r.output
    assert any(line.startswith("would change") for line in lines)
    assert [line for line in lines if line.endswith(" unchanged") and " would change, " in line], r.output
    assert "error: preflight failed; nothing was changed" in lines
