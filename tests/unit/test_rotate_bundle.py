"""`dbrs tls rotate --bundle` checks the bundle before it writes the bundle's ca.pem over this host's (black-box
attack 4b F4, F7): another cluster's bundle, or this cluster's from before a CA roll, left the members trusting
the wrong CA, and the run said only "no member is PRIMARY"."""

import time

import pytest

from installer import pki

from ..conftest import snapshot

PSA = ("--primary", "10.0.0.11", "--secondary", "10.0.0.12", "--arbiter", "10.0.0.13")


@pytest.fixture
def two(tmp_path, run_dbrs):
    pp = tmp_path / "pass"
    pp.write_text("correct horse battery staple\n")
    for name, root in (("dbrs", tmp_path / "r1"), ("other", tmp_path / "r2")):
        r = run_dbrs("init", "--root", str(root), "--name", name, *PSA, "--passphrase-file", str(pp))
        assert r.exit_code == 0, r.output
    return tmp_path / "r1/etc/dbrs", tmp_path / "r2/etc/dbrs", pp


def _rotate(run_dbrs, etc, bundle, pp):
    return run_dbrs("tls", "rotate", "--config", str(etc / "cluster.toml"), "--bundle", str(bundle),
                    "--passphrase-file", str(pp))


def test_another_clusters_bundle_is_refused_before_anything_is_written(two, run_dbrs):
    etc, other, pp = two
    before = snapshot(etc)
    r = _rotate(run_dbrs, etc, other / "bundle.dbrs", pp)
    assert r.exit_code == 2, r.output
    assert r.output.startswith("error: --bundle: belongs to another cluster") and r.output.count("\n") == 1
    assert snapshot(etc) == before


def test_a_bundle_from_before_a_ca_roll_is_refused(two, run_dbrs, tmp_path):
    etc, _, pp = two
    old_bundle = tmp_path / "old.dbrs"
    old_bundle.write_bytes((etc / "bundle.dbrs").read_bytes())
    old = pki.Issued((etc / "ca.key").read_bytes(), (etc / "ca.pem").read_bytes())
    new = pki.new_ca("dbrs", time.time())
    (etc / "ca.pem").write_bytes(pki.ca_file(new, old))      # this host is in a roll: new CA first
    before = snapshot(etc)
    r = _rotate(run_dbrs, etc, old_bundle, pp)
    assert r.exit_code == 2, r.output
    assert "does not hold the CA this host's ca.pem signs with" in r.output
    assert snapshot(etc) == before


@pytest.mark.parametrize("flag", ["--ca", "--finish"])
def test_a_roll_on_a_host_without_ca_key_names_the_init_host(two, run_dbrs, flag):
    etc, _, pp = two
    (etc / "ca.key").unlink()
    r = run_dbrs("tls", "rotate", flag, "--passphrase-file", str(pp), "--config", str(etc / "cluster.toml"))
    assert r.exit_code == 2, r.output
    assert r.output == f"error: {flag}: needs the CA key, and this host holds no ca.key (run it on the host `dbrs init` ran on)\n"
