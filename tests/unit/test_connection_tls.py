"""connection.client dials TLS with the cluster CA once the spec turns TLS on, and not before."""

import pymongo
import pytest

from installer import spec as specmod
from installer.replset import connection

from ..conftest import PSA


@pytest.fixture
def dialed(monkeypatch):
    seen = []
    monkeypatch.setattr(pymongo, "MongoClient", lambda hosts, **kw: seen.append(kw) or kw)
    yield seen
    connection._tls_options.clear()


def test_required_spec_makes_every_client_verify_with_the_ca(dialed, tmp_path):
    text = PSA.replace('write_concern = "majority"\n', 'write_concern = "majority"\ntls = "required"\n', 1)
    connection.use_tls(specmod.loads(text), tmp_path)
    connection.client("127.0.0.1", 27017)
    assert dialed[-1]["tls"] is True
    assert dialed[-1]["tlsCAFile"] == str(tmp_path / "ca.pem")


def test_off_spec_dials_plaintext(dialed, tmp_path):
    connection.use_tls(specmod.loads(PSA), tmp_path)
    connection.client("127.0.0.1", 27017)
    assert "tls" not in dialed[-1]


def test_tools_get_the_ca_flags_under_required_and_none_when_off(tmp_path):
    from installer.backup import dump, full, mongorestore

    on = specmod.loads(PSA.replace('write_concern = "majority"\n', 'write_concern = "majority"\ntls = "required"\n', 1))
    spec_path = tmp_path / "cluster.toml"
    args = full.tls_args(on, spec_path)
    assert args == ["--ssl", f"--sslCAFile={tmp_path / 'ca.pem'}"]
    assert dump.dump_argv("mongodump", 27017, "/c", tls_args=args)[-2:] == tuple(args)
    assert "--ssl" in mongorestore.restore_argv("mongorestore", ["h:1"], "/c", tls_args=args)
    assert full.tls_args(specmod.loads(PSA), spec_path) == []


def test_cli_loaders_arm_tls_for_every_client(tmp_path, dialed):
    from installer.cli import backup, cluster

    from ..conftest import write_cluster

    config = write_cluster(tmp_path, PSA.replace('write_concern = "majority"\n',
                                                 'write_concern = "majority"\ntls = "required"\n', 1))
    (config.parent / "ca.pem").write_bytes(b"the CA")      # a loader refuses a TLS spec without its CA file
    for load in (backup._spec, lambda c: cluster._load(c)[0]):
        connection._tls_options.clear()
        load(str(config))
        connection.client("127.0.0.1", 27017)
        assert dialed[-1]["tlsCAFile"] == str(config.parent / "ca.pem")


def test_the_drill_scratch_mongod_is_dialed_plaintext_even_when_tls_is_armed(dialed, tmp_path):
    text = PSA.replace('write_concern = "majority"\n', 'write_concern = "majority"\ntls = "required"\n', 1)
    connection.use_tls(specmod.loads(text), tmp_path)
    connection.client("127.0.0.1", 27017, tls_options={})
    assert "tls" not in dialed[-1]


def test_restore_hands_mongorestore_the_ca_next_to_the_spec(tmp_path, monkeypatch):
    """Like mongodump and every pymongo client: the CA of the spec's folder, not a fixed /etc/dbrs path."""
    from types import SimpleNamespace

    from installer.backup import mongorestore, restore
    from installer.backup.pitr import Plan

    on = specmod.loads(PSA.replace('write_concern = "majority"\n', 'write_concern = "majority"\ntls = "required"\n', 1))
    seen = []

    class Stop(Exception):
        pass

    def run_restore(argv_for, password, feed=None):
        seen.append(argv_for("/dev/fd/9"))
        raise Stop

    monkeypatch.setattr(mongorestore, "run_restore", run_restore)
    base = SimpleNamespace(name="full-1", proven=lambda key: iter(()))
    with pytest.raises(Stop):
        restore.execute(on, restore.Prepared(Plan(base)), "pw", None, spec_path=tmp_path / "cluster.toml",
                        tool="mongorestore")
    assert f"--sslCAFile={tmp_path / 'ca.pem'}" in seen[0]
