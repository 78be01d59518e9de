"""`dbrs user add|list|remove|rotate|seal`: application users, with passwords dbrs generates and keeps.

A password is never taken from or put into argv: dbrs generates it, keeps it
in secrets.toml and prints it once (or writes it to --password-file, 0600).
"""

import os
import sys

import click

from .common import config_option, emit_json, handle_errors, load_spec


def _password_file_option(fn):
    return click.option("--password-file", metavar="FILE",
                        help="Write the password here (mode 0600) instead of printing it.")(fn)


def _passphrase_option(fn):
    return click.option("--passphrase-file", metavar="FILE",
                        help="The bundle's passphrase: re-seal bundle.dbrs with the new secrets.")(fn)


def _check_password_file(path):
    from ..errors import InputError

    if path is None:
        return None
    path = os.path.abspath(path)
    if os.path.isdir(path):
        raise InputError("--password-file", f"{path} is a directory", "name a file")
    if not os.path.isdir(os.path.dirname(path)):
        raise InputError("--password-file", f"{os.path.dirname(path)} does not exist", "create the folder first")
    return path


def _prepare(config, password_file=None, passphrase_file=None):
    """Everything checked before a change: spec, secrets, output file, passphrase (it must open the bundle)."""
    from .. import secrets
    from ..paths import siblings

    spec = load_spec(config)
    sec = secrets.load(config, keyfile=True)
    out = _check_password_file(password_file)
    passphrase = None
    if passphrase_file is not None:
        from pathlib import Path

        from ..errors import InputError

        passphrase = secrets.read_passphrase(passphrase_file)
        bundle = siblings(config)["bundle"]
        try:
            secrets.open_bundle(Path(bundle).read_bytes(), passphrase, where=str(bundle))
        except OSError as e:
            raise InputError("--passphrase-file", f"{bundle}: {e.strerror}",
                             "re-seal on the host that holds bundle.dbrs") from None
    return spec, sec, out, passphrase


def _primary_client(spec, sec):
    from ..replset import connection

    return connection.connect_member(connection.primary(spec), "admin", sec.password("admin"))


def _sealed(path):
    click.echo(f"re-sealed {path}" if path else "unchanged bundle.dbrs: it holds this spec and these secrets already")


def _finish(config, store, outcome, out, passphrase):
    from ..replset import users

    if outcome.password:
        if out:
            users.write_password_file(out, outcome.password)
            click.echo(f"{outcome.action} {outcome.name}: password written to {out} (0600)")
        else:
            click.echo(f"{outcome.action} {outcome.name}: password {outcome.password}")
            click.echo("  (shown once; it is also kept in secrets.toml. Connect with `dbrs uri --user "
                       f"{outcome.name}`)")
    else:
        click.echo(f"{outcome.action} {outcome.name}" + (f": {outcome.note}" if outcome.note else ""))
    if outcome.action == "unchanged":
        return
    if passphrase:
        _sealed(users.reseal(config, store.sec, passphrase))
    else:
        click.echo("note: bundle.dbrs still holds the secrets from before; re-seal it with "
                   "`sudo dbrs user seal --passphrase-file FILE` before installing a host from it", err=True)


@click.group("user")
def user():
    """Application users: add, list, remove, rotate passwords (kept in secrets.toml)."""


@user.command("add")
@click.argument("name")
@click.option("--role", "roles", multiple=True, metavar="ROLE@DB",
              help="A built-in role on a database, e.g. readWrite@shop (repeatable).")
@_password_file_option
@_passphrase_option
@config_option
@handle_errors
def add(name, roles, password_file, passphrase_file, config):
    """Create user NAME (in the admin database) with a generated password."""
    from ..replset import connection, users

    users.check_name(name)
    wanted = users.parse_roles(roles)
    with users.secrets_lock():
        spec, sec, out, passphrase = _prepare(config, password_file, passphrase_file)
        store = users.Store(config, sec)
        with _primary_client(spec, sec) as c, connection.talking(c.who, f"user add {name}"):
            outcome = users.add(c.client, store, name, wanted)
        _finish(config, store, outcome, out, passphrase)


@user.command("rotate")
@click.argument("name")
@_password_file_option
@_passphrase_option
@config_option
@handle_errors
def rotate(name, password_file, passphrase_file, config):
    """Give user NAME a new generated password."""
    from ..replset import connection, users

    users.check_name(name)
    with users.secrets_lock():
        spec, sec, out, passphrase = _prepare(config, password_file, passphrase_file)
        store = users.Store(config, sec)
        with _primary_client(spec, sec) as c, connection.talking(c.who, f"user rotate {name}"):
            outcome = users.rotate(c.client, store, name)
        _finish(config, store, outcome, out, passphrase)


@user.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_passphrase_option
@config_option
@handle_errors
def remove(name, yes, passphrase_file, config):
    """Drop user NAME; applications logging in as it stop working."""
    from ..replset import connection, users
    from ..errors import InputError

    users.check_name(name)
    spec, sec, _, passphrase = _prepare(config, None, passphrase_file)
    if not yes:
        if not sys.stdin.isatty():
            raise InputError("--yes", "is needed without a terminal", f"pass --yes to remove {name}")
        click.confirm(f"remove user {name}? Applications logging in as {name} will fail", abort=True)
    with users.secrets_lock():
        sec = _prepare(config)[1]  # again, under the lock
        store = users.Store(config, sec)
        with _primary_client(spec, sec) as c, connection.talking(c.who, f"user remove {name}"):
            outcome = users.remove(c.client, store, name)
        _finish(config, store, outcome, None, passphrase)


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the users as JSON.")
@config_option
@handle_errors
def list_(as_json, config):
    """Application users with their roles and where their password is."""
    from ..replset import connection, users

    spec, sec, _, _ = _prepare(config)
    with _primary_client(spec, sec) as c, connection.talking(c.who, "user list"):
        rows = users.list_users(c.client, sec)
    if as_json:
        emit_json([{"user": r.name, "roles": [str(x) for x in r.roles], "password": r.password} for r in rows])
        return
    if not rows:
        click.echo("no application users (add one with `dbrs user add NAME --role readWrite@DB`)")
    for r in rows:
        hint = {"missing": f" (run `dbrs user rotate {r.name}` to give dbrs a password for it)",
                "rotation unfinished": f" (run `dbrs user rotate {r.name}` again)",
                "secrets.toml only": f" (not in the database: run `dbrs user add {r.name} --role ...` or remove it)"}
        click.echo(f"{r.name:20} {', '.join(map(str, r.roles)) or '-':40} password: {r.password}"
                   + hint.get(r.password, ""))


@user.command("seal")
@click.option("--passphrase-file", required=True, metavar="FILE", help="The passphrase `dbrs init` printed.")
@config_option
@handle_errors
def seal(passphrase_file, config):
    """Re-seal bundle.dbrs with the secrets of this host (after user changes)."""
    from ..replset import users

    with users.secrets_lock():
        _, sec, _, passphrase = _prepare(config, None, passphrase_file)
        _sealed(users.reseal(config, sec, passphrase))
