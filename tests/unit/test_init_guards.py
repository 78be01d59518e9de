"""`dbrs init` never destroys a cluster's secrets, and its input mistakes are exit 2 with nothing written."""

import os
import stat

import pytest

from installer import cluster, secrets
from installer.errors import InputError
from tests.conftest import snapshot

PSA = ("--primary", "10.0.0.11", "--secondary", "10.0.0.12", "--arbiter", "10.0.0.13")


@pytest.mark.parametrize("name", ["keyfile", "secrets.toml", "backup.key", "bundle.dbrs"])
def test_any_existing_secret_refuses_init_without_force(staging, run_dbrs, name):
    etc = staging / "etc/dbrs"
    etc.mkdir(parents=True)
    (etc / name).write_bytes(b"OLDKEY\n")
    before = snapshot(staging)
    r = run_dbrs("init", "--root", str(staging), *PSA)
    assert r.exit_code == 2
    assert f"{etc / name} exists" in r.output and "--force" in r.output
    assert snapshot(staging) == before


def test_force_keeps_the_replaced_backup_key(staging, run_dbrs):
    etc = staging / "etc/dbrs"
    etc.mkdir(parents=True)
    (etc / "backup.key").write_bytes(b"OLDKEY\n")
    r = run_dbrs("init", "--root", str(staging), "--force", *PSA)
    assert r.exit_code == 0, r.output
    kept = [p for p in etc.iterdir() if p.name.startswith("backup.key.replaced-")]
    assert len(kept) == 1 and kept[0].read_bytes() == b"OLDKEY\n"
    assert stat.S_IMODE(kept[0].stat().st_mode) == 0o600
    assert f"wrote {kept[0]}" in r.output
    assert (etc / "backup.key").read_bytes() != b"OLDKEY\n"


def test_force_refuses_while_members_run_here():
    with pytest.raises(InputError) as e:
        cluster.check_init(["/etc/dbrs/cluster.toml"], True, ["mongod1"])
    assert e.value.exit_code == 2 and "mongod1" in str(e.value) and "systemctl stop" in str(e.value)
    cluster.check_init(["/etc/dbrs/cluster.toml"], True, [])
    cluster.check_init([], False, ["mongod1"])


def test_generated_passphrase_is_announced_before_anything_is_written(staging):
    seen = []

    def announce(text):
        seen.append((text, sorted(p.name for p in (staging / "etc/dbrs").glob("*")) if (staging / "etc/dbrs").exists() else []))
        raise OSError(28, "No space left on device")

    spec = cluster.spec_from_flags("dbrs", None, (), None, (), "8.0", "majority", "/var/backups/dbrs", False)
    with pytest.raises(OSError):
        cluster.init(str(staging), spec, live=False, announce=announce)
    assert seen and seen[0][1] == []
    assert not (staging / "etc/dbrs/bundle.dbrs").exists()


def test_unwritable_stdout_is_one_line_not_a_traceback(tmp_path):
    import subprocess
    import sys

    with open("/dev/full", "w") as full:
        r = subprocess.run([os.path.join(os.path.dirname(sys.executable), "dbrs"), "init", "--root", str(tmp_path / "r"),
                            *PSA], stdout=full, stderr=subprocess.PIPE, text=True)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "stdout" in errors[0]
    # the passphrase was shown (stderr) before the bundle was sealed with it
    assert "bundle passphrase" in r.stderr


def test_empty_root_is_refused(run_dbrs):
    r = run_dbrs("init", "--root", "", *PSA)
    assert r.exit_code == 2 and "--root: is empty" in r.output


@pytest.mark.parametrize("flag,a,b", [("--primary", "10.0.0.11", "10.0.0.99"), ("--arbiter", "10.0.0.13", "10.0.0.15"),
                                      ("--name", "a", "b"), ("--mongodb-version", "7.0", "8.0"),
                                      ("--backup-dir", "/srv/a", "/srv/b")])
def test_repeated_single_value_flag_is_refused(staging, run_dbrs, flag, a, b):
    args = list(PSA) + [flag, b] if flag in PSA else list(PSA) + [flag, a, flag, b]
    r = run_dbrs("init", "--root", str(staging), *args)
    assert r.exit_code == 2, r.output
    assert f"{flag}: given 2 times" in r.output and b in r.output
    assert not (staging / "etc").exists()


def test_folders_are_0755_whatever_the_umask(tmp_path, run_dbrs):
    old = os.umask(0)
    try:
        r = run_dbrs("init", "--root", str(tmp_path / "r"), *PSA)
    finally:
        os.umask(old)
    assert r.exit_code == 0, r.output
    for d in (tmp_path / "r", tmp_path / "r/etc", tmp_path / "r/etc/dbrs"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o755, d


def test_passphrase_file_rules(tmp_path, staging, run_dbrs):
    short = tmp_path / "short"
    short.write_text("short\n")
    short.chmod(0o600)
    r = run_dbrs("init", "--root", str(staging), "--passphrase-file", str(short), *PSA)
    assert r.exit_code == 2 and "5 characters" in r.output and "at least 12" in r.output
    binary = tmp_path / "bin"
    binary.write_bytes(b"\xff\xfe" + b"x" * 20)
    r = run_dbrs("init", "--root", str(staging), "--passphrase-file", str(binary), *PSA)
    assert r.exit_code == 2 and "not UTF-8" in r.output
    assert not (staging / "etc").exists()
    loose = tmp_path / "loose"
    loose.write_text("a long enough passphrase\n")
    loose.chmod(0o644)
    r = run_dbrs("init", "--root", str(staging), "--passphrase-file", str(loose), *PSA)
    assert r.exit_code == 0 and "warning: --passphrase-file" in r.output and "chmod 600" in r.output
    # an old bundle still opens with a short passphrase it was made with
    assert secrets.read_passphrase(str(short)) == "short"


def test_init_takes_its_defaults_from_the_field_table(staging, monkeypatch, run_dbrs):
    """`dbrs init` without --name/--mongodb-version/--write-concern/--backup-dir writes the table's defaults,
    so a default changed in spec_fields reaches the written cluster.toml without a second edit."""
    import dataclasses

    from installer import spec_fields

    new = {("cluster", "name"): "rs-table", ("cluster", "mongodb_version"): "7.0",
           ("cluster", "write_concern"): "1", ("backup", "dir"): "/srv/dbrs-backups"}
    for section in ("cluster", "backup"):
        monkeypatch.setitem(spec_fields.SECTIONS, section, tuple(
            dataclasses.replace(f, default=new[section, f.name]) if (section, f.name) in new else f
            for f in spec_fields.SECTIONS[section]))
    r = run_dbrs("init", "--root", str(staging), *PSA)
    assert r.exit_code == 0, r.output
    text = (staging / "etc/dbrs/cluster.toml").read_text()
    for line in ('name = "rs-table"', 'mongodb_version = "7.0"', 'write_concern = "1"', 'dir = "/srv/dbrs-backups"'):
        assert line in text, line
