"""The cluster's secrets: keyfile, user passwords, backup key, and the bundle that carries them.

Secrets are generated here and only here. They never go to argv, the
environment of a child process or a log; the files get root (or mongodb for
the keyfile) and 0600/0400. The bundle lets `dbrs-install --bundle` on the
other hosts get the very same keyfile without copying loose secrets around:
spec + secrets sealed with AES-256-GCM under a key derived by scrypt from a
passphrase.
"""

from __future__ import annotations

import base64
import json
import os
import secrets as _random
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ImportError:
    import tomli as tomllib

from . import paths
from .errors import InputError
from .render import render

KEYFILE_BYTES = 756  # base64 -> 1008 characters, MongoDB's maximum is 1024
USERS = ("admin", "backup", "restore", "monitor", "express")
BUNDLE_MAGIC = b"DBRS-BUNDLE-1\n"
_SALT = 16
_NONCE = 12
# scrypt cost: ~0.1 s and 32 MiB here; expensive enough to slow guessing.
_SCRYPT = {"n": 2**15, "r": 8, "p": 1}


@dataclass(frozen=True)
class Secrets:
    keyfile: bytes
    passwords: dict
    backup_key: bytes
    express_user: str = "dbrs"
    express_password: str = ""
    app_users: dict = field(default_factory=dict)    # application users (`dbrs user add`): name -> password
    app_pending: dict = field(default_factory=dict)  # a rotation under way: name -> the new password
    offsite: dict = field(default_factory=dict)   # target name -> {credential: value}; see offsite_credentials

    def password(self, user):
        try:
            return self.passwords[user] if user in self.passwords else self.app_users[user]
        except KeyError:
            raise InputError("secrets.toml", f"no password for user {user!r}", "restore the file from the bundle") from None


def new_keyfile():
    """756 random bytes, base64: 1008 characters of MongoDB's keyfile alphabet."""
    return base64.b64encode(_random.token_bytes(KEYFILE_BYTES)) + b"\n"


def new_password():
    """32 URL-safe characters: no quoting trouble in URIs, TOML or config files."""
    return _random.token_urlsafe(24)


def new_backup_key():
    """A raw AES-256 key, stored base64 so the file stays text."""
    return base64.b64encode(_random.token_bytes(32)) + b"\n"


def generate():
    return Secrets(
        keyfile=new_keyfile(),
        passwords={u: new_password() for u in USERS},
        backup_key=new_backup_key(),
        express_user="dbrs",
        express_password=new_password(),
    )


def secrets_toml(sec):
    return render(
        "dbrs/secrets.toml.j2",
        passwords=sec.passwords,
        express_user=sec.express_user,
        express_password=sec.express_password,
        app_users=sec.app_users,
        app_pending=sec.app_pending,
        offsite=sec.offsite,
    )


def _string_table(raw, name, where):
    table = raw.get(name, {})
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise InputError(f"{where}: {name}", "is not a table of strings", "restore it from the bundle")
    return dict(table)


def parse_secrets_toml(data, keyfile, backup_key, where="secrets.toml"):
    try:
        raw = tomllib.loads(data.decode() if isinstance(data, bytes) else data)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InputError(where, f"not valid TOML: {e}", "restore it from the bundle with dbrs-install --bundle") from None
    passwords = raw.get("passwords", {})
    express = raw.get("mongo_express", {})
    if not isinstance(passwords, dict) or not all(isinstance(v, str) for v in passwords.values()):
        raise InputError(f"{where}: passwords", "is not a table of strings", "restore it from the bundle")
    return Secrets(
        keyfile=keyfile,
        passwords=dict(passwords),
        backup_key=backup_key,
        express_user=express.get("basic_auth_user", "dbrs"),
        express_password=express.get("basic_auth_password", ""),
        app_users=_string_table(raw, "users", where),
        app_pending=_string_table(raw, "users_rotating", where),
        offsite=offsite_credentials(raw.get("offsite", {}), where),
    )


# Off-site credentials (issue 12): [offsite.NAME] tables in secrets.toml, so
# the bundle carries them to a brand-new host along with the backup key.
OFFSITE_KEYS = {"key_pem", "access_key_id", "secret_access_key"}


def offsite_credentials(raw, where="secrets.toml"):
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise InputError(f"{where}: offsite", "is not a table of [offsite.NAME] tables", "write [offsite.NAME]")
    out = {}
    for name, table in raw.items():
        for key, value in table.items():
            if key not in OFFSITE_KEYS or not isinstance(value, str):
                raise InputError(f"{where}: offsite.{name}.{key}", "is not a known credential string",
                                 "use " + ", ".join(sorted(OFFSITE_KEYS)))
        out[name] = dict(table)
    return out


def load(spec_path, keyfile=False):
    """The secrets of the cluster whose spec is `spec_path` (a real path): the one reader of them.

    `keyfile=True` (install, bootstrap, users) also reads and checks the
    keyfile. Without it (backup, oplog, restore, off-site) passwords and
    backup key come from $CREDENTIALS_DIRECTORY when a unit's LoadCredential=
    passed them, so the sandbox need not see /etc/dbrs.
    """
    sib = paths.siblings(spec_path)
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if not keyfile and creds and Path(creds, "secrets.toml").exists():
        files = {"secrets": Path(creds, "secrets.toml"), "backup_key": Path(creds, "backup.key")}
    else:
        files = {"secrets": Path(sib["secrets"]), "backup_key": Path(sib["backup_key"])}
        if keyfile:
            files = {"keyfile": Path(sib["keyfile"]), **files}
    fix = "copy the cluster over with `dbrs-install --bundle FILE`" + (", or run `dbrs init`" if keyfile else "")
    data = {}
    for key, path in files.items():
        try:
            data[key] = path.read_bytes()
        except FileNotFoundError:
            raise InputError(str(path), "is missing next to the spec", fix) from None
        except PermissionError:
            raise InputError(str(path), "cannot be read", "run as root (sudo)") from None
    if keyfile:
        check_keyfile(data["keyfile"], str(files["keyfile"]))
    return parse_secrets_toml(data["secrets"], data.get("keyfile", b""), data["backup_key"], str(files["secrets"]))


def check_keyfile(data, where="keyfile"):
    """MongoDB accepts 6..1024 base64 characters (whitespace ignored)."""
    text = b"".join(data.split())
    if not 6 <= len(text) <= 1024:
        raise InputError(where, f"{len(text)} characters", "a keyfile holds 6 to 1024 base64 characters")
    try:
        base64.b64decode(text, validate=True)
    except ValueError:
        raise InputError(where, "is not base64", "regenerate it with dbrs init --force") from None


def backup_key_bytes(data):
    key = base64.b64decode(data.strip())
    if len(key) != 32:
        raise InputError("backup.key", f"{len(key)} bytes", "an AES-256 key is 32 bytes; restore it from the bundle")
    return key


# ------------------------------------------------------------------ bundle

def new_passphrase():
    return _random.token_urlsafe(18)


def _derive(passphrase, salt):
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, **_SCRYPT).derive(passphrase.encode())


def seal_bundle(spec_text, sec, passphrase, files=None):
    """Spec + secrets in one file only the passphrase opens; `files` (name -> bytes) rides along,
    e.g. the cluster CA's key and certificate, which every host that issues a certificate needs."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    payload = json.dumps(
        {
            "spec": spec_text.decode() if isinstance(spec_text, bytes) else spec_text,
            "keyfile": sec.keyfile.decode(),
            "secrets": secrets_toml(sec).decode(),
            "backup_key": sec.backup_key.decode(),
            **({"files": {name: data.decode() for name, data in files.items()}} if files else {}),
        }
    ).encode()
    salt = os.urandom(_SALT)
    nonce = os.urandom(_NONCE)
    sealed = AESGCM(_derive(passphrase, salt)).encrypt(nonce, payload, BUNDLE_MAGIC)
    return BUNDLE_MAGIC + salt + nonce + sealed


@dataclass(frozen=True)
class Bundle:
    spec_text: str
    secrets: Secrets
    files: dict = field(default_factory=dict)  # name -> bytes: what the bundle carries beside spec and secrets (the CA)


def open_bundle(data, passphrase, where="--bundle"):
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not data.startswith(BUNDLE_MAGIC):
        raise InputError(where, "is not a dbrs bundle", "pass the bundle.dbrs written by `dbrs init`")
    body = data[len(BUNDLE_MAGIC):]
    salt, nonce, sealed = body[:_SALT], body[_SALT:_SALT + _NONCE], body[_SALT + _NONCE:]
    try:
        payload = AESGCM(_derive(passphrase, salt)).decrypt(nonce, sealed, BUNDLE_MAGIC)
    except InvalidTag:
        raise InputError("--passphrase-file", "the bundle does not open with this passphrase (or it was altered)",
                         "use the passphrase `dbrs init` printed") from None
    raw = json.loads(payload)
    keyfile = raw["keyfile"].encode()
    backup_key = raw["backup_key"].encode()
    sec = parse_secrets_toml(raw["secrets"], keyfile, backup_key, where="bundle: secrets.toml")
    extra = {name: text.encode() for name, text in raw.get("files", {}).items()}
    return Bundle(spec_text=raw["spec"], secrets=sec, files={**extra, "secrets": raw["secrets"].encode()})


MIN_PASSPHRASE = 12  # the bundle carries every secret; 12 characters keep guessing out of reach even at scrypt's cost


def read_passphrase(path, min_length=0):
    """The passphrase in `path`, stripped. `min_length` applies when sealing a new bundle only:
    an old bundle must still open with the passphrase it was made with."""
    if path is None:
        raise InputError("--passphrase-file", "is required with --bundle", "pass the file holding the passphrase `dbrs init` printed")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise InputError("--passphrase-file", f"{path}: {e.strerror}", "check the path") from None
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError as e:
        raise InputError("--passphrase-file", f"{path} is not UTF-8 text (byte {e.start})",
                         "write the passphrase as plain text") from None
    if not text:
        raise InputError("--passphrase-file", f"{path} is empty", "write the passphrase into it")
    if len(text) < min_length:
        raise InputError("--passphrase-file", f"the passphrase in {path} has {len(text)} characters",
                         f"use at least {min_length}, or leave --passphrase-file out to have one generated")
    return text


def loose_mode_warning(path):
    """A warning line when others than the owner may read the passphrase file, else None."""
    try:
        mode = os.stat(path).st_mode & 0o777
    except OSError:
        return None
    if mode & 0o077:
        return (f"--passphrase-file {path} is readable by others (mode {mode:04o}); "
                f"keep it to root: chmod 600 {path}")
    return None


# ------------------------------------------------------------- replacement

def replaced_name(name, stamp):
    """Where a replaced secret is kept: `backup.key.replaced-20261204T072200Z`."""
    return f"{name}.replaced-{stamp}"


def check_keyfile_replacement(current, new, running, allowed):
    """Refuse to swap the keyfile under running members of this host.

    `current` is the keyfile on disk (None when there is none), `running` the
    names of active dbrs-mongod@ instances here. A different keyfile means
    another cluster or a re-initialised one: the members would restart with
    it and be locked out of their set. Pure.
    """
    if current is None or not running or allowed:
        return
    if b"".join(current.split()) == b"".join(new.split()):
        return
    raise InputError("--bundle", f"its keyfile differs from the one running member(s) {', '.join(sorted(running))} "
                     "use: this bundle is of another cluster or a re-initialised one",
                     "use this cluster's bundle, or pass --replace-secrets to install it anyway "
                     "(the running members restart with the new keyfile)")
