"""Keyfile, passwords and the bundle."""

import base64
import re
import stat

import pytest

from installer import secrets
from installer.errors import InputError


def test_keyfile_is_1008_base64_characters():
    key = secrets.new_keyfile()
    text = key.strip()
    assert len(text) == 1008
    assert re.fullmatch(rb"[A-Za-z0-9+/]+", text)
    assert len(base64.b64decode(text)) == 756
    assert secrets.new_keyfile() != key


def test_keyfile_checks_like_mongod():
    secrets.check_keyfile(secrets.new_keyfile())
    with pytest.raises(InputError):
        secrets.check_keyfile(b"abc")
    with pytest.raises(InputError):
        secrets.check_keyfile(b"not base64 at all!!")


def test_passwords_are_distinct_and_uri_safe():
    sec = secrets.generate()
    values = list(sec.passwords.values()) + [sec.express_password]
    assert len(set(values)) == len(values)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32}", v) for v in values)
    assert len(secrets.backup_key_bytes(sec.backup_key)) == 32


def test_bundle_round_trip():
    sec = secrets.generate()
    sealed = secrets.seal_bundle(b"[cluster]\n", sec, "pass phrase")
    assert b"[cluster]" not in sealed and sec.keyfile not in sealed
    opened = secrets.open_bundle(sealed, "pass phrase")
    assert opened.spec_text == "[cluster]\n"
    assert opened.secrets.keyfile == sec.keyfile
    assert opened.secrets.passwords == sec.passwords
    assert opened.secrets.backup_key == sec.backup_key


def test_bundle_wrong_passphrase_or_tampering():
    sealed = secrets.seal_bundle(b"x", secrets.generate(), "right")
    with pytest.raises(InputError, match="passphrase"):
        secrets.open_bundle(sealed, "wrong")
    flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(InputError):
        secrets.open_bundle(flipped, "right")
    with pytest.raises(InputError, match="not a dbrs bundle"):
        secrets.open_bundle(b"garbage", "right")


def test_init_writes_secret_files_with_tight_modes(staging, run_dbrs):
    assert run_dbrs("init", "--root", str(staging)).exit_code == 0
    etc = staging / "etc/dbrs"
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in etc.iterdir()}
    assert modes == {"cluster.toml": 0o644, "keyfile": 0o400, "secrets.toml": 0o600,
                     "backup.key": 0o600, "bundle.dbrs": 0o600, "ca.key": 0o600, "ca.pem": 0o444}
    assert len((etc / "keyfile").read_bytes().strip()) == 1008


def test_load_is_the_one_reader_of_the_cluster_secrets(tmp_path, monkeypatch):
    """Install reads the keyfile too; backup runs take passwords and key from the unit's credentials."""
    from tests.conftest import BACKUP_KEY, KEYFILE, write_cluster

    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    spec = write_cluster(tmp_path)
    full = secrets.load(spec, keyfile=True)
    assert full.keyfile == KEYFILE and full.backup_key == BACKUP_KEY
    assert full.password("admin") == "admin-pw-0000000000000000000000"
    assert secrets.load(spec).keyfile == b""

    creds = tmp_path / "creds"
    creds.mkdir()
    own = (spec.parent / "secrets.toml").read_bytes()
    (creds / "secrets.toml").write_bytes(own.replace(b"admin-pw-0", b"cred-pw-00"))
    (creds / "backup.key").write_bytes(BACKUP_KEY)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert secrets.load(spec).password("admin").startswith("cred-pw-00")
    assert secrets.load(spec, keyfile=True).password("admin").startswith("admin-pw-0")

    (creds / "backup.key").unlink()
    with pytest.raises(InputError) as e:
        secrets.load(spec)
    assert e.value.field == str(creds / "backup.key") and e.value.problem == "is missing next to the spec"
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    (spec.parent / "keyfile").chmod(0o600)
    (spec.parent / "keyfile").write_bytes(b"not base64 !!")
    with pytest.raises(InputError) as e:
        secrets.load(spec, keyfile=True)
    assert e.value.field == str(spec.parent / "keyfile")
    (spec.parent / "keyfile").unlink()
    with pytest.raises(InputError) as e:
        secrets.load(spec, keyfile=True)
    assert e.value.problem == "is missing next to the spec" and "dbrs init" in e.value.fix
