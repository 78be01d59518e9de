"""Spec generations: a host refuses a spec or bundle older than the one it has installed (issue 13, item 2)."""

from __future__ import annotations

import pytest

from installer import generation, secrets
from installer import secrets as secretsmod
from installer import spec as specmod
from installer.errors import InputError

from ..conftest import PSA, snapshot, write_cluster


def with_generation(text, n):
    return text.replace('write_concern = "majority"\n', f'write_concern = "majority"\ngeneration = {n}\n', 1)


def test_the_spec_carries_a_generation_that_defaults_to_1():
    assert specmod.loads(PSA).cluster.generation == 1
    assert specmod.loads(with_generation(PSA, 5)).cluster.generation == 5


@pytest.mark.parametrize("bad", ["0", "-3", '"5"', "true"])
def test_a_generation_below_1_or_not_an_integer_is_refused(bad):
    with pytest.raises(InputError) as e:
        specmod.loads(with_generation(PSA, bad))
    assert "cluster.generation" in str(e.value)


def test_refusal_on_data():
    assert generation.refusal(5, None, "--bundle", "x", "y") is None
    assert generation.refusal(5, 5, "--bundle", "x", "y") is None
    assert generation.refusal(6, 5, "--bundle", "x", "y") is None
    err = generation.refusal(3, 5, "--bundle", "2026-12-04 09:00 UTC", "host A")
    assert err.line() == ("--bundle: bundle generation 3 is older than this host's 5 (installed 2026-12-04 09:00 UTC) "
                          "(use the newest bundle from host A; nothing was changed)")
    assert "spec generation 1" in generation.refusal(1, 2, "--config", "x", "y").line()


def test_an_older_spec_is_refused_with_exit_2_and_nothing_changes(tmp_path, run_install):
    root = tmp_path / "root"
    write_cluster(root, with_generation(PSA, 5))
    assert run_install("--root", str(root), "--role", "secondary").exit_code == 0
    before = snapshot(root)
    old = write_cluster(tmp_path / "old", with_generation(PSA, 3))
    r = run_install("--root", str(root), "--role", "secondary", "--config", str(old))
    assert r.exit_code == 2, r.output
    assert "spec generation 3 is older than this host's 5 (installed " in r.output
    assert "use the newest bundle from" in r.output and "Traceback" not in r.output
    assert snapshot(root) == before


def test_an_older_bundle_is_refused_and_a_newer_one_installs(tmp_path, run_install):

    root = tmp_path / "root"
    spec_path = write_cluster(root, with_generation(PSA, 4))
    assert run_install("--root", str(root), "--role", "secondary").exit_code == 0
    sec = secretsmod.load(spec_path, keyfile=True)
    pp = tmp_path / "pass"
    pp.write_text("correct horse battery staple\n")
    old, new = tmp_path / "old.dbrs", tmp_path / "new.dbrs"
    old.write_bytes(secrets.seal_bundle(with_generation(PSA, 2), sec, "correct horse battery staple"))
    new.write_bytes(secrets.seal_bundle(with_generation(PSA, 5), sec, "correct horse battery staple"))
    before = snapshot(root)
    r = run_install("--root", str(root), "--role", "secondary", "--bundle", str(old), "--passphrase-file", str(pp))
    assert r.exit_code == 2, r.output
    assert "--bundle: bundle generation 2 is older than this host's 4" in r.output
    assert snapshot(root) == before
    r = run_install("--root", str(root), "--role", "secondary", "--bundle", str(new), "--passphrase-file", str(pp))
    assert r.exit_code == 0, r.output
    assert "generation = 5" in spec_path.read_text()


def test_an_older_cluster_toml_put_back_in_place_is_refused(tmp_path, run_install):
    """Found by the black-box attack: the in-place spec was compared with itself, so restoring an old
    /etc/dbrs/cluster.toml (git, etckeeper, a backup) rolled a member change back silently."""
    root = tmp_path / "root"
    spec_path = write_cluster(root, with_generation(PSA, 5))
    assert run_install("--root", str(root), "--role", "secondary").exit_code == 0
    assert (root / "var/lib/dbrs/spec-generation").read_text() == "5\n"
    spec_path.write_text(with_generation(PSA, 3))
    before = snapshot(root)
    r = run_install("--root", str(root), "--role", "secondary")
    assert r.exit_code == 2, r.output
    assert r.output.count("\n") == 1 and "Traceback" not in r.output
    assert r.output.startswith("error: cluster.generation: 3 is older than the generation 5 this host applied")
    assert "set generation = 6 in it" in r.output
    assert snapshot(root) == before
    spec_path.write_text(with_generation(PSA, 6))
    assert run_install("--root", str(root), "--role", "secondary").exit_code == 0
    assert (root / "var/lib/dbrs/spec-generation").read_text() == "6\n"


def test_the_record_only_rises(tmp_path):
    generation.record(tmp_path, "/g", 4)
    generation.record(tmp_path, "/g", 2)
    assert (tmp_path / "g").read_text() == "4\n"
    assert generation.recorded(tmp_path / "g")[0] == 4
    (tmp_path / "g").write_text("garbage")
    assert generation.recorded(tmp_path / "g") is None
