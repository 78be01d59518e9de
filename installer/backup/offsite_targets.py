"""The [[offsite]] targets of a spec: choosing one by name, and putting its credentials into secrets.toml.

Credentials come from files the operator names (never argv) and go into
secrets.toml (root 0600) and, given the passphrase, into the bundle, which
is re-sealed only after the passphrase opened the old one.
"""

from __future__ import annotations

from pathlib import Path

from .. import generation, paths, secrets, spec as specmod
from ..errors import InputError
from ..fsutil import write_file


def read_credentials(target, key_file=None, s3_keys_file=None):
    """A target's credentials from the files the operator names (never argv). InputError names the flag."""
    def read(flag, path):
        try:
            with open(path, encoding="utf-8") as f:
                return f.read()
        except OSError as e:
            raise InputError(flag, f"{path}: {e.strerror}", "check the path") from None
        except UnicodeDecodeError:
            raise InputError(flag, f"{path} is not text", "pass the key file itself") from None

    if target.type == "sftp":
        if not key_file:
            raise InputError("--key-file", f"is required for the sftp target {target.name}",
                             "pass the private key file (ssh-keygen -t ed25519 -N '' -f vault.key)")
        pem = read("--key-file", key_file).strip()
        if not pem.startswith("-----BEGIN ") or "PRIVATE KEY-----" not in pem.splitlines()[0]:
            raise InputError("--key-file", f"{key_file} is not a private key", "pass the file without .pub")
        if "ENCRYPTED" in pem or "Proc-Type: 4,ENCRYPTED" in pem:
            raise InputError("--key-file", f"{key_file} is protected by a passphrase",
                             "timers cannot type it: use a key without one, kept in secrets.toml (root 0600)")
        return {"key_pem": pem + "\n"}
    if target.type == "s3":
        if not s3_keys_file:
            raise InputError("--s3-keys-file", f"is required for the s3 target {target.name}",
                             "pass a file with the access key id on line 1 and the secret on line 2")
        lines = [ln.strip() for ln in read("--s3-keys-file", s3_keys_file).splitlines() if ln.strip()]
        if len(lines) != 2:
            raise InputError("--s3-keys-file", f"{s3_keys_file} has {len(lines)} non-empty lines",
                             "write the access key id on line 1 and the secret access key on line 2")
        return {"access_key_id": lines[0], "secret_access_key": lines[1]}
    raise InputError("TARGET", f"{target.name} is a path target", "a mounted folder needs no credentials")


def store_credentials(spec_path, target_name, *, key_file=None, s3_keys_file=None, passphrase_file=None):
    """Put a target's credentials into secrets.toml next to the spec and, given the passphrase, into the bundle.

    The bundle is re-sealed only after the passphrase opened the old one, so a
    typo cannot replace it with a bundle nobody can open. Returns paths written.
    """
    from dataclasses import replace

    spec = specmod.load(spec_path)
    target = target_named(spec, target_name)
    creds = read_credentials(target, key_file, s3_keys_file)
    sib = paths.siblings(spec_path)
    try:
        raw = Path(sib["secrets"]).read_bytes()
        key = Path(sib["backup_key"]).read_bytes()
    except FileNotFoundError as e:
        raise InputError(e.filename, "is missing next to the spec", "run `dbrs init` or `dbrs-install --bundle`") from None
    except PermissionError as e:
        raise InputError(e.filename, "cannot be read", "run as root (sudo)") from None
    sec = secrets.parse_secrets_toml(raw, b"", key, str(sib["secrets"]))
    sec = replace(sec, offsite={**sec.offsite, target.name: creds})
    written = []
    passphrase = None
    if passphrase_file:
        passphrase = secrets.read_passphrase(passphrase_file)
        try:
            old = Path(sib["bundle"]).read_bytes()
        except OSError as e:
            raise InputError("--passphrase-file", f"{sib['bundle']}: {e.strerror}",
                             "run it on the host where `dbrs init` wrote the bundle") from None
        opened = secrets.open_bundle(old, passphrase)
        sec = replace(sec, keyfile=opened.secrets.keyfile)
    write_file(None, str(sib["secrets"]), secrets.secrets_toml(sec), 0o600, chown=False)
    written.append(str(sib["secrets"]))
    if passphrase is not None and generation.reseal(spec_path, passphrase, sec):
        written.append(str(sib["bundle"]))
    return written


def target_named(spec, name):
    if not spec.offsite:
        raise InputError("offsite", "no [[offsite]] target in the spec", "add one (see README: Off-site copies)")
    if name is None:
        return spec.offsite[0]
    for t in spec.offsite:
        if t.name == name:
            return t
    raise InputError("--target", f"no off-site target named {name!r}",
                     "known: " + ", ".join(t.name for t in spec.offsite))


def targets_of(spec, name=None):
    first = target_named(spec, name)
    return [first] if name else list(spec.offsite)
