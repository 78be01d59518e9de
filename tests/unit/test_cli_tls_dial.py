"""With TLS on, the commands that reach the set (users, upgrade, reconfigure, status, stepdown, rotate) dial
with TLS and the CA next to their spec: every MongoClient they make is recorded here, and the set "answers"
nothing (a server selection timeout), which each command reports in one line."""

import pymongo
import pytest
from pymongo.errors import ServerSelectionTimeoutError

from installer.replset import connection

from ..conftest import PSA, write_cluster

TLS_PSA = PSA.replace('write_concern = "majority"\n', 'write_concern = "majority"\ntls = "required"\n', 1)


class Unreachable:
    made = []

    def __init__(self, hosts, **kw):
        Unreachable.made.append(kw)
        self.admin = self

    def command(self, *a, **kw):
        raise ServerSelectionTimeoutError("no server answered (test)")

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.fixture
def tls_spec(tmp_path, monkeypatch):
    config = write_cluster(tmp_path, TLS_PSA.replace('"10.0.0.11"', '"127.0.0.1"'))   # upgrade wants a local member
    (config.parent / "ca.pem").write_bytes(b"the cluster CA")
    Unreachable.made = []
    monkeypatch.setattr(pymongo, "MongoClient", Unreachable)
    yield config
    connection._tls_options.clear()


@pytest.mark.parametrize("argv", [("user", "list"), ("user", "add", "shop", "--role", "readWrite@shop"),
                                  ("upgrade", "--to", "8.0", "--dry-run"), ("reconfigure", "--dry-run"),
                                  ("status",), ("stepdown",), ("degrade", "mongod2")])
def test_commands_dial_tls_with_the_spec_folders_ca(tls_spec, run_dbrs, argv):
    r = run_dbrs(*argv, "--config", str(tls_spec))
    assert r.exit_code == 1, r.output
    assert len(r.output.strip().splitlines()) <= 3 and "Traceback" not in r.output
    assert Unreachable.made, "the command never dialed"
    for kw in Unreachable.made:
        assert kw.get("tls") is True and kw.get("tlsCAFile") == str(tls_spec.parent / "ca.pem"), kw


def test_rotate_with_a_damaged_ca_file_says_so_in_one_line(tls_spec, run_dbrs):
    (tls_spec.parent / "ca.key").write_bytes(b"key")
    r = run_dbrs("tls", "rotate", "--dry-run", "--config", str(tls_spec))
    assert r.exit_code == 1 and "ca.pem holds no certificate" in r.output and len(r.output.strip().splitlines()) == 1


def test_rotate_refuses_a_plaintext_cluster_naming_the_setting(tmp_path, run_dbrs):
    config = write_cluster(tmp_path, PSA)
    r = run_dbrs("tls", "rotate", "--dry-run", "--config", str(config))
    assert r.exit_code == 2 and "cluster.tls" in r.output and 'tls = "required"' in r.output


@pytest.mark.parametrize("argv, field", [(("--ca", "--finish"), "--ca"), (("--ca", "--bundle", "b"), "--bundle"),
                                         (("--bundle", "b"), "--bundle")])
def test_rotate_option_mistakes_are_exit_2_naming_the_option(tls_spec, run_dbrs, argv, field):
    r = run_dbrs("tls", "rotate", "--dry-run", *argv, "--config", str(tls_spec))
    assert r.exit_code == 2 and field in r.output and len(r.output.strip().splitlines()) == 1, r.output
