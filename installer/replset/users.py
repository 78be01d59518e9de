"""Application users: the database users an operator's applications log in as (`dbrs user ...`).

dbrs generates their passwords and keeps them in secrets.toml next to its
own; a password never goes through argv. Deciding is pure and tested on
data (`parse_role`, `check_name`, the command documents); the functions
that talk to the primary are short and converge when run again: a password
is written to secrets.toml *before* the server gets it, so an interrupted
add or rotate is finished by the next run with the same password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .. import generation, locks, secrets as secretsmod
from ..errors import DbrsError, InputError
from ..fsutil import write_file
from ..paths import INSTALL_LOCK, siblings
from .connection import cause, errors

# dbrs' own users (bootstrap creates them, secrets.toml [passwords] holds them): never touched here.
OWN = secretsmod.USERS
MECHANISMS = ["SCRAM-SHA-256"]
# MongoDB's built-in roles (docs: "Built-In Roles"); those in CLUSTER_ROLES exist only in the admin database.
DB_ROLES = ("read", "readWrite", "dbAdmin", "dbOwner", "userAdmin")
CLUSTER_ROLES = ("clusterAdmin", "clusterManager", "clusterMonitor", "hostManager", "backup", "restore",
                 "readAnyDatabase", "readWriteAnyDatabase", "userAdminAnyDatabase", "dbAdminAnyDatabase", "root",
                 "directShardOperations", "enableSharding")
INTERNAL_ROLES = ("__system", "__queryableBackup")
# Roles that can change users (dbrs' own included) or write system.users: an application holding one can lock
# dbrs out (docs: "Built-In Roles" -- root, userAdminAnyDatabase, restore; userAdmin and dbOwner on admin).
USER_POWER = {"root", "userAdminAnyDatabase", "restore", "userAdmin@admin", "dbOwner@admin"}
SYSTEM_DBS = ("local", "config")  # the oplog and the set's own state
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DB_BAD = set('/\\. "$*<>:|?')


@dataclass(frozen=True, order=True)
class Role:
    role: str
    db: str

    def doc(self):
        return {"role": self.role, "db": self.db}

    def __str__(self):
        return f"{self.role}@{self.db}"


def check_name(name, flag="NAME"):
    """A user name that is safe in a URI, in TOML and in a log line; not one of dbrs' own."""
    if name in OWN:
        raise InputError(flag, f"{name!r} is one of dbrs' own users ({', '.join(OWN)})",
                         "dbrs manages it; pick another name for an application user")
    if not _NAME_RE.match(name or ""):
        shown = name if len(name or "") <= 40 else name[:40] + "..."
        raise InputError(flag, f"{shown!r} is not a usable user name",
                         "use letters, digits, '.', '_' or '-', starting with a letter or digit, at most 64")
    return name


def parse_role(text, flag="--role"):
    """ROLE@DB -> Role, with MongoDB's built-in role names and database-name rules."""
    shown = text if len(text) <= 60 else text[:60] + "..."
    role, at, db = text.partition("@")
    if not at or not role or not db:
        raise InputError(flag, f"{shown!r} is not ROLE@DATABASE", "write e.g. --role readWrite@shop")
    if role in INTERNAL_ROLES:
        raise InputError(flag, f"{role!r} is internal to MongoDB", "grant a built-in role such as readWrite")
    if role not in DB_ROLES + CLUSTER_ROLES:
        known = ", ".join(DB_ROLES + CLUSTER_ROLES)
        import difflib

        close = difflib.get_close_matches(role, DB_ROLES + CLUSTER_ROLES, n=1)
        raise InputError(flag, f"{role!r} is not a built-in MongoDB role",
                         f"did you mean {close[0]}?" if close else f"use one of {known}")
    if len(db) > 63 or any(c in _DB_BAD for c in db):
        raise InputError(flag, f"{db!r} is not a database name", 'use at most 63 characters without /\\. "$*<>:|? or spaces')
    if role in CLUSTER_ROLES and db != "admin":
        raise InputError(flag, f"{role!r} exists only in the admin database", f"write --role {role}@admin")
    if role in USER_POWER or f"{role}@{db}" in USER_POWER:
        raise InputError(flag, f"{role}@{db} lets the application change users, dbrs' own included",
                         "grant readWrite@DB or read@DB; make an administrator by hand with mongosh if you must")
    if db in SYSTEM_DBS:
        raise InputError(flag, f"{db!r} holds the replica set's own data (the oplog, its state)",
                         "grant a role on the application's database")
    return Role(role, db)


def parse_roles(texts):
    if not texts:
        raise InputError("--role", "is required", "grant at least one role, e.g. --role readWrite@shop")
    roles = []
    for t in texts:
        r = parse_role(t)
        if r not in roles:
            roles.append(r)
    return roles


# ------------------------------------------------------------ documents (pure)

def create_command(name, password, roles):
    return {"createUser": name, "pwd": password, "roles": [r.doc() for r in roles], "mechanisms": MECHANISMS}


def password_command(name, password):
    return {"updateUser": name, "pwd": password, "mechanisms": MECHANISMS}


def drop_command(name):
    return {"dropUser": name}


def info_command(name=None):
    """usersInfo for one user of the admin database, or all of them."""
    return {"usersInfo": {"user": name, "db": "admin"} if name else 1}


def roles_of(user_doc):
    return sorted(Role(r["role"], r["db"]) for r in user_doc.get("roles", [])) if user_doc else []



@dataclass(frozen=True)
class Listed:
    name: str
    roles: tuple
    password: str  # "secrets.toml" | "missing" | "rotation unfinished" | "secrets.toml only"


def listing(users_info, sec):
    """What `dbrs user list` shows: every application user, and where its password is."""
    out = []
    seen = set()
    for u in users_info:
        if u.get("db") != "admin" or u["user"] in OWN:
            continue
        seen.add(u["user"])
        where = ("rotation unfinished" if u["user"] in sec.app_pending
                 else "secrets.toml" if u["user"] in sec.app_users else "missing")
        out.append(Listed(u["user"], tuple(roles_of(u)), where))
    for name in sorted(set(sec.app_users) - seen):
        out.append(Listed(name, (), "secrets.toml only"))
    return sorted(out, key=lambda x: x.name)


# ------------------------------------------------------------ doing

@dataclass(frozen=True)
class Outcome:
    name: str
    action: str           # created | unchanged | rotated | removed
    password: str = ""    # set when the operator must be given a (new) password
    note: str = ""


class Store:
    """secrets.toml of one cluster: read once, written atomically (root 0600) after every change."""

    def __init__(self, spec_path, sec):
        self.spec_path = spec_path
        self.sec = sec

    def save(self, **changes):
        self.sec = replace(self.sec, **changes)
        write_file("/", str(siblings(self.spec_path)["secrets"]), secretsmod.secrets_toml(self.sec), 0o600,
                   chown=False)


def _user(client, name):
    users = client.admin.command(info_command(name))["users"]
    return users[0] if users else None


def add(client, store, name, roles):
    """Create NAME with ROLES; a password left by an interrupted run is reused; exists with the same roles: no-op."""
    have = _user(client, name)
    if have is not None:
        if roles_of(have) != sorted(roles):
            raise InputError(name, "exists with roles " + ", ".join(map(str, roles_of(have))),
                             f"remove it first (`dbrs user remove {name}`) or grant exactly those roles")
        if name not in store.sec.app_users:
            raise InputError(name, "exists in the database but secrets.toml has no password for it",
                             f"take it over with `dbrs user rotate {name}`")
        return Outcome(name, "unchanged", note="its password is in secrets.toml")
    password = store.sec.app_users.get(name) or secretsmod.new_password()
    if name not in store.sec.app_users:
        store.save(app_users={**store.sec.app_users, name: password})
    try:
        client.admin.command(create_command(name, password, roles))
    except errors().PyMongoError as e:
        raise DbrsError(f"creating user {name} failed: {cause(e)} "
                        f"(its password is kept in secrets.toml; run the same command again)") from None
    return Outcome(name, "created", password)


def rotate(client, store, name):
    """A new password for NAME: kept as pending in secrets.toml first, so an interruption never loses it."""
    if _user(client, name) is None:
        raise InputError(name, "is not a user of the admin database", f"create it with `dbrs user add {name} --role ...`")
    password = store.sec.app_pending.get(name) or secretsmod.new_password()
    if name not in store.sec.app_pending:
        store.save(app_pending={**store.sec.app_pending, name: password})
    try:
        client.admin.command(password_command(name, password))
    except errors().PyMongoError as e:
        raise DbrsError(f"changing the password of {name} failed: {cause(e)} "
                        "(the new one is kept in secrets.toml; run the same command again)") from None
    pending = dict(store.sec.app_pending)
    pending.pop(name, None)
    store.save(app_users={**store.sec.app_users, name: password}, app_pending=pending)
    return Outcome(name, "rotated", password)


def remove(client, store, name):
    """Drop NAME from the database, then its password from secrets.toml."""
    have = _user(client, name)
    if have is None and name not in store.sec.app_users and name not in store.sec.app_pending:
        raise InputError(name, "is neither a user of the admin database nor in secrets.toml", "see `dbrs user list`")
    if have is not None:
        client.admin.command(drop_command(name))
    users, pending = dict(store.sec.app_users), dict(store.sec.app_pending)
    users.pop(name, None)
    pending.pop(name, None)
    store.save(app_users=users, app_pending=pending)
    return Outcome(name, "removed")


def list_users(client, sec):
    return listing(client.admin.command(info_command())["users"], sec)


def reseal(spec_path, sec, passphrase):
    """Seal bundle.dbrs again with today's secrets; the passphrase must open the bundle that is there."""
    return generation.reseal(spec_path, passphrase, sec)


def write_password_file(path, password):
    """The password alone in PATH, mode 0600, replaced atomically."""
    try:
        write_file("/", path, (password + "\n").encode(), 0o600, chown=False)
    except OSError as e:
        raise DbrsError(f"--password-file {path}: {e.strerror}; the password is kept in secrets.toml "
                        "([users]); copy it from there") from None


LOCK_WAIT_S = 30


def secrets_lock(wait=None):
    """dbrs-install's lock: it rewrites secrets.toml from what it read, so a user change must not interleave."""
    import os

    os.makedirs(os.path.dirname(INSTALL_LOCK), exist_ok=True)
    return locks.held(INSTALL_LOCK, "dbrs-install or dbrs user run", LOCK_WAIT_S if wait is None else wait)
