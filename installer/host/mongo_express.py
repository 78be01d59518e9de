"""Mongo Express on the primary-role member's host, bound to 127.0.0.1. Pure.

Node.js and npm come from the distribution; mongo-express itself from npm at
an exact version (1.0.2 does not install from npm) into its own prefix, so it
never mixes with the host's global node modules. Its settings are environment
variables (config.default.js of 1.0.0 reads ME_CONFIG_*, VCAP_APP_HOST,
PORT), kept in a root-only env file that systemd reads before it drops to
the unit's dynamic user; the process gets them, argv and logs never do.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from .. import tls
from ..errors import InputError
from .items import Absent, Dir, File, NpmPackage, Packages, Service, unit_path
from ..render import render

NAME = "mongo-express"
VERSION = "1.0.0"            # 1.0.2 does not install from npm
PREFIX = "/opt/dbrs/mongo-express"
UNIT = "dbrs-mongo-express.service"
DB_USER = "express"          # created by the replica-set bootstrap (replset.user_roles)
NODE = "/usr/bin/node"
DISTRO_PACKAGES = ("nodejs", "npm")
BIND = "127.0.0.1"
# Characters that need no quoting in a systemd EnvironmentFile nor escaping in a URL's userinfo.
_PLAIN = re.compile(r"^[A-Za-z0-9._~-]+$")


def wanted(target):
    """Only where it is enabled and the primary-role member is installed by this run."""
    return target.spec.mongo_express.enabled and target.has_primary


def app_js(prefix=PREFIX):
    return f"{prefix}/node_modules/{NAME}/app.js"


def env_path(target):
    return str(target.etc / "mongo-express.env")


def npm_argv(name, version, prefix):
    """The npm command for one exact version (the item owns it, apply runs it)."""
    return NpmPackage(name, version, prefix).argv(prefix)


def _plain(value, field):
    if not value or not _PLAIN.match(value):
        raise InputError(field, "is empty or holds characters other than A-Z a-z 0-9 . _ ~ -",
                         "set a URL-safe value (dbrs init generates one)")
    return value


def _derived(password, purpose):
    """Cookie/session signing secret, stable across runs so a re-install changes nothing."""
    return hmac.new(password.encode(), f"dbrs mongo-express {purpose}".encode(), hashlib.sha256).hexdigest()


def env(target):
    """The env file: basic-auth credentials, the database user's URL, and the 127.0.0.1 bind."""
    sec = target.secrets
    if sec is None:
        raise InputError("secrets.toml", "was not read", "run dbrs-install with the cluster's spec or bundle")
    user = _plain(sec.express_user, "secrets.toml: mongo_express.basic_auth_user")
    password = _plain(sec.express_password, "secrets.toml: mongo_express.basic_auth_password")
    db_password = _plain(sec.password(DB_USER), f"secrets.toml: passwords.{DB_USER}")
    return render(
        "mongo_express/mongo-express.env.j2",
        bind=BIND,
        port=target.spec.mongo_express.port,
        basic_user=user,
        basic_password=password,
        db_user=DB_USER,
        db_password=db_password,
        hosts=[m.address for m in target.spec.members if m.data_bearing],
        set_name=target.spec.cluster.name,
        cookie_secret=_derived(password, "cookie"),
        session_secret=_derived(password, "session"),
        tls_env=tls.express_env(tls.server_mode(target.spec.cluster.tls, target.tls_step), tls.ca_path(target.etc)),
    )


def unit(target, on_failure=None):
    return render(
        f"systemd/{UNIT}.j2",
        env_file=env_path(target),
        node=NODE,
        app=app_js(),
        prefix=PREFIX,
        port=target.spec.mongo_express.port,
        after=[f"dbrs-mongod@{m.name}.service" for m in target.host_members if m.data_bearing],
        on_failure=on_failure,
    )


def items(target, on_failure=None):
    """Packages and npm only on a live host with packages; under --root the files alone.

    Turned off on the primary-role member's host: the unit is stopped and
    disabled and its files go (the env file holds the basic-auth password).
    The npm tree in /opt/dbrs stays: it holds no secret.
    """
    if not wanted(target):
        if not target.has_primary:
            return []
        off = [Service(UNIT, enable=False, start=False, off=True)] if target.live else []
        return off + [Absent(env_path(target)), Absent(unit_path(UNIT))]
    out = []
    if target.packages:
        out += [Packages(DISTRO_PACKAGES), Dir("/opt/dbrs", 0o755), NpmPackage(NAME, VERSION, PREFIX)]
    elif target.live:
        out.append(NpmPackage(NAME, VERSION, PREFIX, check_only=True))
    out += [
        File(env_path(target), env(target), 0o600, secret=True, notify=(UNIT,)),
        File(unit_path(UNIT), unit(target, on_failure), 0o644, notify=(UNIT,)),
    ]
    return out


def services(target):
    if not wanted(target):
        return []
    return [Service(UNIT, start=target.start, needs=NpmPackage(NAME, VERSION, PREFIX).key)]
