"""A corpus of bad input: each exits 2, names the field, and leaves the staging tree as it was."""

import pytest

from ..conftest import PSA, snapshot, write_cluster


def _sub(old, new, count=1):
    return PSA.replace(old, new, count)


MEMBER4 = '\n[[members]]\nname = "mongod4"\nhost = "10.0.0.14"\nport = 27017\nrole = "secondary"\n'

SPECS = [
    ("toml syntax", PSA + "\n[cluster\n", "cluster.toml"),
    ("unknown top-level key", PSA + '\n[extra]\nx = 1\n', "extra"),
    ("unknown cluster key", _sub('name = "dbrs"', 'name = "dbrs"\nnmae = "x"'), "cluster.nmae"),
    ("unknown member key", _sub('role = "arbiter"', 'role = "arbiter"\nvotes = 0'), "members[2].votes"),
    ("bad set name", _sub('name = "dbrs"', 'name = "my set"'), "cluster.name"),
    ("unsupported version", _sub('"8.0"', '"6.0"'), "cluster.mongodb_version"),
    ("version not a string", _sub('"8.0"', "8.0"), "cluster.mongodb_version"),
    ("bad cidr", _sub('"10.0.0.0/24"', '"10.0.0.0/33"'), "cluster.allow"),
    ("cidr host bits", _sub('"10.0.0.0/24"', '"10.0.0.1/24"'), "cluster.allow"),
    ("allow not a list", _sub('["10.0.0.0/24"]', '"10.0.0.0/24"'), "cluster.allow"),
    ("write concern", _sub('"majority"', '"all"'), "cluster.write_concern"),
    ("write timeout", _sub('write_concern = "majority"', 'write_concern = "majority"\nwrite_timeout = "soon"'), "cluster.write_timeout"),
    ("duplicate name", _sub('name = "mongod2"', 'name = "mongod1"'), "members[1].name"),
    ("unsafe member name", _sub('name = "mongod2"', 'name = "../etc"'), "members[1].name"),
    ("uppercase member name", _sub('name = "mongod2"', 'name = "Mongod2"'), "members[1].name"),
    ("duplicate host:port", _sub('host = "10.0.0.12"', 'host = "10.0.0.11"'), "members[1].port"),
    ("port zero", _sub("port = 27017", "port = 0"), "members[0].port"),
    ("port too big", _sub("port = 27017", "port = 70000"), "members[0].port"),
    ("port as string", _sub("port = 27017", 'port = "27017"'), "members[0].port"),
    ("bad hostname", _sub('host = "10.0.0.12"', 'host = "db_2!.example"'), "members[1].host"),
    ("bad ipv4", _sub('host = "10.0.0.12"', 'host = "10.0.0.300"'), "members[1].host"),
    ("unknown role", _sub('role = "arbiter"', 'role = "hidden"'), "members[2].role"),
    ("missing host", _sub('host = "10.0.0.13"\n', ""), "members[2].host"),
    ("two primaries", _sub('role = "secondary"', 'role = "primary"'), "members"),
    ("no primary", _sub('role = "primary"', 'role = "secondary"'), "members"),
    ("two arbiters", _sub('role = "secondary"', 'role = "arbiter"'), "members"),
    ("even voters", PSA + MEMBER4, "members"),
    ("eight voters", PSA + "".join(MEMBER4.replace("mongod4", f"m{i}").replace("10.0.0.14", f"10.0.1.{i}") for i in range(5)), "members"),
    ("no members", PSA.split("[[members]]")[0], "members"),
    ("relative backup dir", PSA + '[backup]\ndir = "backups"\n', "backup.dir"),
    ("dotdot backup dir", PSA + '[backup]\ndir = "/var/../tmp"\n', "backup.dir"),
    ("space in backup dir", PSA + '[backup]\ndir = "/srv/my backups"\n', "backup.dir"),
    ("percent in textfile dir", PSA + '[alerts]\ntextfile_dir = "/var/lib/%i"\n', "alerts.textfile_dir"),
    ("bad schedule", PSA + '[backup]\nschedule = "every night"\n', "backup.schedule"),
    ("retention zero", PSA + "[backup]\nretention_days = 0\n", "backup.retention_days"),
    ("keep_min negative", PSA + "[backup]\nkeep_min = -1\n", "backup.keep_min"),
    ("oplog too often", PSA + '[backup]\noplog_every = "10s"\n', "backup.oplog_every"),
    ("encrypt not bool", PSA + '[backup]\nencrypt = "yes"\n', "backup.encrypt"),
    ("alert command relative", PSA + '[alerts]\ncommand = ["page-me"]\n', "alerts.command"),
    ("webhook not url", PSA + '[alerts]\nwebhook = "hooks.example.com"\n', "alerts.webhook"),
    ("express port", PSA + "[mongo_express]\nport = 0\n", "mongo_express.port"),
    ("members not array of tables", PSA.split("[[members]]")[0] + 'members = "three"\n', "members"),
    ("generation zero", _sub('write_concern = "majority"', 'write_concern = "majority"\ngeneration = 0'), "cluster.generation"),
    ("generation as text", _sub('write_concern = "majority"', 'write_concern = "majority"\ngeneration = "2"'),
     "cluster.generation"),
    ("generation as bool", _sub('write_concern = "majority"', 'write_concern = "majority"\ngeneration = true'),
     "cluster.generation"),
    ("tls unknown mode", _sub('write_concern = "majority"', 'write_concern = "majority"\ntls = "on"'), "cluster.tls"),
    ("tls as bool", _sub('write_concern = "majority"', 'write_concern = "majority"\ntls = true'), "cluster.tls"),
    ("cluster_auth unknown", _sub('write_concern = "majority"', 'write_concern = "majority"\ncluster_auth = "ldap"'),
     "cluster.cluster_auth"),
]


@pytest.mark.parametrize("label,text,field", SPECS, ids=[s[0] for s in SPECS])
def test_bad_spec_exits_2_names_field_changes_nothing(label, text, field, staging, run_install):
    write_cluster(staging, text)
    before = snapshot(staging)
    result = run_install("--root", str(staging), "--role", "primary")
    assert result.exit_code == 2, result.output
    first = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert first, result.output
    assert any(field in line for line in first), (field, result.output)
    assert all("(" in line for line in first), "every error says how to fix it"
    assert snapshot(staging) == before


FLAGS = [
    (["--role", "leader"], "--role"),
    (["--role", "primary", "--member", "mongod1"], "--member"),
    (["--member", "mongod9"], "--member"),
    (["--passphrase-file", "/nonexistent"], "--passphrase-file"),
    (["--bundle", "/nonexistent", "--passphrase-file", "/nonexistent"], "--passphrase-file"),
    (["--role", "primary", "--packages-from", "/nonexistent"], "--packages-from"),
    (["--role", "primary", "--no-packages", "--packages-from", "/tmp"], "--packages-from"),
    (["--role", "primary", "--config", "/nonexistent/cluster.toml"], "--config"),
]


@pytest.mark.parametrize("args,field", FLAGS, ids=[" ".join(a) for a, _ in FLAGS])
def test_bad_install_flags_exit_2(args, field, psa_root, run_install):
    before = snapshot(psa_root)
    result = run_install("--root", str(psa_root), *args)
    assert result.exit_code == 2, result.output
    assert field in result.output
    assert snapshot(psa_root) == before


INIT_FLAGS = [
    (["--primary", "10.0.0.11", "--secondary", "10.0.0.12"], "members"),
    (["--primary", "10.0.0.11:notaport"], "--primary"),
    (["--secondary", "10.0.0.12", "--arbiter", "10.0.0.13"], "--primary"),
    (["--primary", "10.0.0.11", "--secondary", "10.0.0.12", "--arbiter", "10.0.0.13", "--allow", "10.0.0.0/40"], "--allow"),
    (["--mongodb-version", "5.0"], "--mongodb-version"),
    (["--write-concern", "2"], "--write-concern"),
    (["--backup-dir", "relative/dir"], "--backup-dir"),
    (["--name", "a b"], "--name"),
    (["--primary", "[::1"], "--primary"),
]


@pytest.mark.parametrize("args,field", INIT_FLAGS, ids=[" ".join(a) for a, _ in INIT_FLAGS])
def test_bad_init_flags_exit_2(args, field, staging, run_dbrs):
    before = snapshot(staging)
    result = run_dbrs("init", "--root", str(staging), *args)
    assert result.exit_code == 2, result.output
    assert field in result.output
    assert snapshot(staging) == before


def test_init_refuses_to_overwrite_without_force(psa_root, run_dbrs):
    before = snapshot(psa_root)
    result = run_dbrs("init", "--root", str(psa_root))
    assert result.exit_code == 2 and "--force" in result.output
    assert snapshot(psa_root) == before
