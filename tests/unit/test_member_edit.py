"""`dbrs member add|remove|replace`: the spec edited in place, its generation raised, the bundle re-sealed."""

from __future__ import annotations

import pytest

from installer import cluster, pki, secrets
from installer import secrets as secretsmod
from installer import spec as specmod

from ..conftest import PSA, snapshot, write_cluster

COMMENTED = PSA.replace('[cluster]\n', '[cluster]\n# our production set, ask Ana before changing\n', 1) + """
[mongod]
"net.compression.compressors" = "zstd"
"""


def members(path):
    return [(m.name, m.address, m.role) for m in specmod.load(path).members]


def test_psa_to_pss_in_one_change_keeps_the_rest_of_the_file(tmp_path, run_dbrs):
    path = write_cluster(tmp_path, COMMENTED)
    r = run_dbrs("member", "add", "mongod4", "--host", "10.0.0.14", "--remove", "mongod3", "--config", str(path))
    assert r.exit_code == 0, r.output
    assert members(path) == [("mongod1", "10.0.0.11:27017", "primary"), ("mongod2", "10.0.0.12:27017", "secondary"),
                             ("mongod4", "10.0.0.14:27017", "secondary")]
    text = path.read_text()
    assert "# our production set, ask Ana before changing" in text and '"net.compression.compressors" = "zstd"' in text
    assert specmod.load(path).cluster.generation == 2
    assert specmod.load(path).mongod == (("net.compression.compressors", "zstd"),)
    assert "added secondary mongod4 (10.0.0.14:27017), removed mongod3; spec generation 2 written to" in r.output
    assert "next: copy bundle.dbrs to 10.0.0.14 and run `sudo dbrs-install --bundle bundle.dbrs --member mongod4`" in r.output
    assert "next: then `sudo dbrs reconfigure --dry-run` and `sudo dbrs reconfigure`" in r.output


def test_an_even_voter_count_is_refused_with_the_way_to_do_it(tmp_path, run_dbrs):
    path = write_cluster(tmp_path, PSA)
    before = snapshot(tmp_path)
    r = run_dbrs("member", "add", "mongod4", "--host", "10.0.0.14", "--config", str(path))
    assert r.exit_code == 2
    assert "even number" in r.output and "--remove ARBITER" in r.output and "Traceback" not in r.output
    assert snapshot(tmp_path) == before


def test_two_added_then_two_removed_each_raise_the_generation(tmp_path, run_dbrs):
    path = write_cluster(tmp_path, PSA)
    r = run_dbrs("member", "add", "mongod4", "mongod5", "--host", "10.0.0.14", "--host", "10.0.0.15:27018",
                 "--config", str(path))
    assert r.exit_code == 0, r.output
    assert [m[1] for m in members(path)][3:] == ["10.0.0.14:27017", "10.0.0.15:27018"]
    r = run_dbrs("member", "remove", "mongod2", "mongod5", "--config", str(path))
    assert r.exit_code == 0, r.output
    assert [m[0] for m in members(path)] == ["mongod1", "mongod3", "mongod4"]
    assert specmod.load(path).cluster.generation == 3
    assert "units and data on 10.0.0.12, 10.0.0.15 are left as they are" in r.output


def test_replace_moves_the_member_and_keeps_name_role_and_port(tmp_path, run_dbrs):
    path = write_cluster(tmp_path, PSA)
    r = run_dbrs("member", "replace", "mongod2", "--host", "10.0.0.22", "--config", str(path))
    assert r.exit_code == 0, r.output
    assert members(path)[1] == ("mongod2", "10.0.0.22:27017", "secondary")
    assert "mongod2 moves from 10.0.0.12:27017 to 10.0.0.22:27017" in r.output
    assert "votes again once it has caught up" in r.output


def test_refusals_change_nothing(tmp_path, run_dbrs):
    path = write_cluster(tmp_path, PSA)
    before = snapshot(tmp_path)
    for args, words in ((("remove", "mongod9"), "mongod9: is not a member of the spec"),
                        (("remove", "mongod1", "mongod3"), 'mongod1: has role "primary"'),
                        (("add", "mongod2", "--host", "10.0.0.14"), "mongod2: is already a member"),
                        (("add", "a", "b", "--host", "10.0.0.14"), "--host: 1 given for 2 name(s)"),
                        (("replace", "mongod2", "--host", "10.0.0.12"), "is where mongod2 is already")):
        r = run_dbrs("member", *args, "--config", str(path))
        assert r.exit_code == 2 and words in r.output, r.output
    assert snapshot(tmp_path) == before


def test_the_passphrase_reseals_the_bundle_with_the_new_spec(tmp_path, run_dbrs):
    pp = tmp_path / "pass"
    pp.write_text("correct horse battery staple\n")
    root = tmp_path / "a"
    assert run_dbrs("init", "--root", str(root), "--primary", "10.0.0.11", "--secondary", "10.0.0.12",
                    "--arbiter", "10.0.0.13", "--passphrase-file", str(pp)).exit_code == 0
    path = root / "etc/dbrs/cluster.toml"
    r = run_dbrs("member", "replace", "mongod2", "--host", "10.0.0.22", "--passphrase-file", str(pp),
                 "--config", str(path))
    assert r.exit_code == 0, r.output
    bundle = secrets.open_bundle((root / "etc/dbrs/bundle.dbrs").read_bytes(), "correct horse battery staple")
    assert bundle.spec_text == path.read_text()
    assert specmod.loads(bundle.spec_text).cluster.generation == 2
    assert bundle.secrets.password("admin") == secretsmod.load(path, keyfile=True).password("admin")
    # the cluster CA travels on: without it a new host of a TLS cluster cannot get its certificate
    assert cluster.ca_from_bundle(bundle) == pki.Issued((root / "etc/dbrs/ca.key").read_bytes(),
                                                        (root / "etc/dbrs/ca.pem").read_bytes())
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase at all\n")
    before = snapshot(root)
    r = run_dbrs("member", "replace", "mongod2", "--host", "10.0.0.32", "--passphrase-file", str(wrong),
                 "--config", str(path))
    assert r.exit_code == 2 and snapshot(root) == before


def test_member_seal_puts_the_changed_spec_in_the_bundle(tmp_path, run_dbrs):
    pp = tmp_path / "pass"
    pp.write_text("correct horse battery staple\n")
    root = tmp_path / "a"
    assert run_dbrs("init", "--root", str(root), "--passphrase-file", str(pp)).exit_code == 0
    path = root / "etc/dbrs/cluster.toml"
    r = run_dbrs("member", "replace", "mongod2", "--host", "127.0.0.1:27028", "--config", str(path))
    assert r.exit_code == 0 and "sudo dbrs member seal --passphrase-file FILE" in r.output, r.output
    stale = secrets.open_bundle((root / "etc/dbrs/bundle.dbrs").read_bytes(), "correct horse battery staple")
    assert stale.spec_text != path.read_text()
    r = run_dbrs("member", "seal", "--passphrase-file", str(pp), "--config", str(path))
    assert r.exit_code == 0, r.output
    fresh = secrets.open_bundle((root / "etc/dbrs/bundle.dbrs").read_bytes(), "correct horse battery staple")
    assert fresh.spec_text == path.read_text()
    assert cluster.ca_from_bundle(fresh) == pki.Issued((root / "etc/dbrs/ca.key").read_bytes(),
                                                       (root / "etc/dbrs/ca.pem").read_bytes())





@pytest.mark.parametrize("argv,named", [
    (["add", "mongod4", "--host", 'h"4', "--remove", "mongod3"], "--host"),           # a quote would become TOML
    (["add", "mongod4", "--host", "h4\nrole = 'primary'", "--remove", "mongod3"], "--host"),
    (["add", 'mon"god4', "--host", "10.0.0.14", "--remove", "mongod3"], "NAME"),
    (["add", "mongod4", "--host", "10.0.0.14:0", "--remove", "mongod3"], "--host"),
    (["replace", "mongod2", "--host", "h4\" # "], "--host"),
    (["remove", "mongod2", "mongod2"], "mongod2"),                                      # named twice, not "by hand"
    (["add", "m4", "m4", "--host", "10.0.0.14", "--host", "10.0.0.15"], "m4"),
])
def test_raw_arguments_are_checked_before_they_touch_the_text(tmp_path, run_dbrs, argv, named):
    """Found by the black-box attack: a quote or newline in NAME/--host reached the TOML text and came back as a
    syntax error at a line the operator's file does not have (or exit 1 "edit by hand"); a name given twice said
    the file was laid out wrongly."""
    path = write_cluster(tmp_path, PSA)
    before = snapshot(tmp_path)
    r = run_dbrs("member", *argv, "--config", str(path))
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {named}:"), r.output
    assert "TOML" not in r.output and "by hand" not in r.output
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("argv", [
    ["replace", "mongod2", "--host", "db4.nosuch.invalid"],
    ["add", "mongod4", "--host", "db4.nosuch.invalid:27018", "--remove", "mongod3"],
])
def test_a_host_that_does_not_resolve_is_refused_before_the_spec_changes(tmp_path, run_dbrs, argv):
    """Black-box attack F4: it went silently into the spec, the generation rose, and every host then refused it."""
    path = write_cluster(tmp_path, PSA)
    before = snapshot(tmp_path)
    r = run_dbrs("member", *argv, "--config", str(path))
    assert r.exit_code == 2, r.output
    assert r.output.startswith("error: --host: db4.nosuch.invalid does not resolve") and r.output.count("\n") == 1
    assert "/etc/hosts" in r.output
    assert snapshot(tmp_path) == before
