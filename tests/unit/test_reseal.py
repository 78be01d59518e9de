"""Every re-seal of bundle.dbrs (member, user, upgrade, off-site) seals what the host holds NOW: its spec, its
secrets and the cluster CA. A re-seal that took the bundle's own old spec text would hand hosts an older
generation, which they refuse; one that dropped the CA would leave new hosts unable to issue certificates."""

from __future__ import annotations

import pytest

from installer import cluster, generation, secrets, upgrade_run
from installer import spec as specmod
from installer.errors import InputError

from ..conftest import snapshot

PASS = "correct horse battery staple"


@pytest.fixture
def inited(tmp_path, run_dbrs):
    pp = tmp_path / "pass"
    pp.write_text(PASS + "\n")
    root = tmp_path / "a"
    r = run_dbrs("init", "--root", str(root), "--primary", "10.0.0.11", "--secondary", "10.0.0.12",
                 "--arbiter", "10.0.0.13", "--passphrase-file", str(pp))
    assert r.exit_code == 0, r.output
    return root / "etc/dbrs/cluster.toml", pp


def opened(path):
    return secrets.open_bundle((path.parent / "bundle.dbrs").read_bytes(), PASS)


def add_app_user(path):
    """What `dbrs user add` leaves in secrets.toml: a new password the bundle does not hold yet."""
    from dataclasses import replace

    sec = secrets.load(path, keyfile=True)
    sec = replace(sec, app_users={**sec.app_users, "app": "s3cret-app-password"})
    (path.parent / "secrets.toml").write_bytes(secrets.secrets_toml(sec))


def test_user_seal_after_a_member_change_seals_the_new_generation(inited, run_dbrs):
    path, pp = inited
    ca = cluster.ca_from_bundle(opened(path))
    r = run_dbrs("member", "replace", "mongod2", "--host", "10.0.0.22", "--config", str(path))
    assert r.exit_code == 0, r.output
    add_app_user(path)
    r = run_dbrs("user", "seal", "--passphrase-file", str(pp), "--config", str(path))
    assert r.exit_code == 0, r.output
    b = opened(path)
    assert specmod.loads(b.spec_text).cluster.generation == 2 and b.spec_text == path.read_text()
    assert b.secrets.app_users == {"app": "s3cret-app-password"}
    assert cluster.ca_from_bundle(b) == ca


def test_member_seal_keeps_the_ca_and_takes_the_current_secrets(inited, run_dbrs):
    path, pp = inited
    ca = cluster.ca_from_bundle(opened(path))
    assert run_dbrs("member", "replace", "mongod2", "--host", "10.0.0.22", "--config", str(path)).exit_code == 0
    add_app_user(path)
    r = run_dbrs("member", "seal", "--passphrase-file", str(pp), "--config", str(path))
    assert r.exit_code == 0, r.output
    b = opened(path)
    assert b.spec_text == path.read_text() and b.secrets.app_users == {"app": "s3cret-app-password"}
    assert cluster.ca_from_bundle(b) == ca


def test_upgrade_reseal_takes_the_current_secrets_and_keeps_the_ca(inited):
    path, _ = inited
    ca = cluster.ca_from_bundle(opened(path))
    add_app_user(path)
    assert upgrade_run.set_spec_version(str(path), "7.0")
    assert upgrade_run.reseal(str(path), PASS) is True
    b = opened(path)
    assert 'mongodb_version = "7.0"' in b.spec_text and b.secrets.app_users == {"app": "s3cret-app-password"}
    assert cluster.ca_from_bundle(b) == ca
    assert upgrade_run.reseal(str(path), PASS) is False


def test_a_spec_older_than_the_bundle_is_not_sealed_over_it(inited, run_dbrs):
    """A host whose spec is behind (generation 1) must not roll the bundle (generation 2) back."""
    path, pp = inited
    old = path.read_text()
    assert run_dbrs("member", "replace", "mongod2", "--host", "10.0.0.22", "--passphrase-file", str(pp),
                    "--config", str(path)).exit_code == 0
    path.write_text(old)
    before = snapshot(path.parent)
    with pytest.raises(InputError) as e:
        generation.reseal(str(path), PASS)
    assert "generation 1 is older than the bundle's 2" in str(e.value)
    assert snapshot(path.parent) == before
    r = run_dbrs("user", "seal", "--passphrase-file", str(pp), "--config", str(path))
    assert r.exit_code == 2 and "older than the bundle's 2" in r.output and snapshot(path.parent) == before
