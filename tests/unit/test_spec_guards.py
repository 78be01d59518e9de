"""Spec values that would break the host or lie to the operator are exit 2, naming the field."""

import pytest

from installer import spec as specmod
from installer import errors
from installer.errors import InputError, SpecErrors

from installer import secrets

from ..conftest import PSA, SECRETS


def _fields(text):
    with pytest.raises(SpecErrors) as e:
        specmod.loads(text)
    return {err.field: err.line() for err in e.value.errors}


@pytest.mark.parametrize("path", ["/", "/etc", "/etc/dbrs", "/usr/local/backups", "/var/lib", "/var/lib/dbrs",
                                  "/var/lib/dbrs/backups", "/var", "/var/backups", "/var/log", "/home", "/home/alice",
                                  "/root/backups", "/srv", "/tmp", "/boot/x", "/run/dbrs", "/opt/dbrs"])
def test_backup_dir_refuses_system_and_dbrs_folders(path):
    fields = _fields(PSA + f'[backup]\ndir = "{path}"\n')
    assert list(fields) == ["backup.dir"], fields
    assert "use a folder of its own" in fields["backup.dir"]


@pytest.mark.parametrize("path", ["/var/backups/dbrs", "/srv/backups/dbrs", "/mnt/nas/dbrs", "/backup", "/data/dbrs-backups"])
def test_backup_dir_accepts_folders_of_its_own(path):
    assert specmod.loads(PSA + f'[backup]\ndir = "{path}"\n').backup.dir == path


def test_init_backup_dir_names_the_flag(staging, run_dbrs):
    r = run_dbrs("init", "--root", str(staging), "--primary", "10.0.0.11", "--secondary", "10.0.0.12",
                 "--arbiter", "10.0.0.13", "--backup-dir", "/var/lib")
    assert r.exit_code == 2 and "--backup-dir (backup.dir)" in r.output
    assert not (staging / "etc").exists()


@pytest.mark.parametrize("value,ok", [("1s", True), ("10s", True), ("1h", True), ("500ms", False), ("61min", False),
                                      ("99999999999d", False)])
def test_write_timeout_range(value, ok):
    text = PSA.replace('write_concern = "majority"', f'write_concern = "majority"\nwrite_timeout = "{value}"')
    if ok:
        assert specmod.loads(text).cluster.write_timeout == value
    else:
        assert "1s .. 1h" in _fields(text)["cluster.write_timeout"]


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "fe80::1"])
def test_member_host_that_names_no_single_host_is_refused(host):
    fields = _fields(PSA.replace('host = "10.0.0.12"', f'host = "{host}"'))
    assert list(fields) == ["members[1].host"]


def test_init_refuses_any_address(staging, run_dbrs):
    r = run_dbrs("init", "--root", str(staging), "--primary", "0.0.0.0", "--secondary", "10.0.0.12", "--arbiter", "10.0.0.13")
    assert r.exit_code == 2 and "any-address" in r.output


def test_mongo_express_port_may_not_be_a_member_port_on_its_host():
    text = PSA + "[mongo_express]\nenabled = true\nport = 27017\n"
    line = _fields(text)["mongo_express.port"]
    assert "members[0] (mongod1)" in line
    specmod.loads(PSA + "[mongo_express]\nenabled = false\nport = 27017\n")
    single = specmod.single_host()
    assert single.members[1].port == 27018
    with pytest.raises(SpecErrors):
        specmod.parse({"members": [{"name": m.name, "host": m.host, "port": m.port, "role": m.role} for m in single.members],
                       "mongo_express": {"enabled": True, "port": 27019}})


def test_error_lines_are_bounded(staging, run_dbrs):
    long = "a" * 5000
    r = run_dbrs("init", "--root", str(staging), "--primary", long, "--secondary", "10.0.0.12", "--arbiter", "10.0.0.13")
    assert r.exit_code == 2
    (line,) = [x for x in r.output.splitlines() if x.startswith("error:")]
    assert len(line) < 400 and "[5002 characters]" in line and "is not a hostname" in line
    assert len(InputError("f", "x " * 3000, "y" * 3000).line()) < 1000
    assert errors.bound("/etc/dbrs/cluster.toml") == "/etc/dbrs/cluster.toml"


def test_non_utf8_spec_is_exit_2(tmp_path):
    path = tmp_path / "cluster.toml"
    path.write_bytes(PSA.encode() + b"\xff\xfe\n")
    with pytest.raises(InputError) as e:
        specmod.load(path)
    assert e.value.exit_code == 2 and "is not UTF-8 (byte" in str(e.value)


def test_installer_only_manages_dbrs_own_directories():
    """Every directory dbrs-install sets a mode/owner on is dbrs' own or the (validated) backup dir:
    never a directory of the system it merely found there."""
    from pathlib import PurePosixPath

    from installer.host import plan
    from installer.host.target import Target

    text = PSA + '[backup]\ndir = "/srv/backups/dbrs"\n[mongo_express]\nenabled = true\n'
    spec = specmod.loads(text)
    own = [PurePosixPath(p) for p in ("/etc/dbrs", "/var/lib/dbrs", "/var/log/dbrs", "/opt/dbrs", spec.backup.dir)]
    for role in ("primary", "secondary", "arbiter"):
        members = tuple(spec.by_role(role))
        target = Target(spec=spec, members=members, host_members=members, live=False, packages=False,
                        addresses={m.host: (m.host,) for m in spec.members},
                        secrets=secrets.parse_secrets_toml(SECRETS, b"k", b"b"))
        dirs = [PurePosixPath(i.path) for i in plan.desired(target) if i.kind == "dir"]
        assert dirs
        for d in dirs:
            assert any(d == o or o in d.parents for o in own), d
