"""`dbrs init`: write the spec and the secrets of a new cluster."""

import click

from .. import spec_fields
from ..errors import DbrsError, InputError
from .common import handle_errors


def _default(section, key):
    """The field table's default of a key: `dbrs init` and a hand-written cluster.toml agree by construction."""
    return spec_fields.by_name(spec_fields.SECTIONS[section])[key].default


def _help(text, section, key):
    return f"{text}  [default: {_default(section, key)}]"


def _single(values, flag, default=None):
    """click keeps only the last of a repeated option; a second --primary is a mistake, not an edit."""
    if len(values) > 1:
        shown = ", ".join(values)
        raise InputError(flag, f"given {len(values)} times ({shown})", f"give {flag} once")
    return values[0] if values else default


@click.command("init")
@click.option("--name", multiple=True, metavar="NAME", help=_help("Replica set name.", "cluster", "name"))
@click.option("--primary", multiple=True, metavar="HOST[:PORT]", help="Host of the primary-role member.")
@click.option("--secondary", "secondaries", multiple=True, metavar="HOST[:PORT]", help="Host of a secondary (repeatable).")
@click.option("--arbiter", multiple=True, metavar="HOST[:PORT]", help="Host of the arbiter.")
@click.option("--allow", multiple=True, metavar="CIDR", help="Client network let through the firewall (repeatable).")
@click.option("--mongodb-version", multiple=True, metavar="VERSION", help=_help("7.0 or 8.0.", "cluster", "mongodb_version"))
@click.option("--write-concern", multiple=True, metavar="W", help=_help("majority or 1.", "cluster", "write_concern"))
@click.option("--backup-dir", multiple=True, metavar="DIR", help=_help("Where the backups go.", "backup", "dir"))
@click.option("--mongo-express", is_flag=True, help="Run Mongo Express on the primary host (127.0.0.1 only).")
@click.option("--root", multiple=True, metavar="DIR", help="Write under DIR instead of / (staging, tests).")
@click.option("--passphrase-file", multiple=True, metavar="FILE",
              help="Bundle passphrase (at least 12 characters); generated and printed once if absent.")
@click.option("--force", is_flag=True, help="Replace an existing spec and all its secrets (the old backup.key is kept).")
@handle_errors
def init(name, primary, secondaries, arbiter, allow, mongodb_version, write_concern, backup_dir,
         mongo_express, root, passphrase_file, force):
    """Write /etc/dbrs/cluster.toml, keyfile, secrets.toml, backup.key and bundle.dbrs.

    With no member flags: all three members on this host (ports 27017-27019).
    Copy bundle.dbrs to the other hosts and run
    `dbrs-install --bundle bundle.dbrs --passphrase-file F --role ROLE` there.
    """
    import os

    from .. import cluster, secrets
    from ..host import facts, firewall

    name = _single(name, "--name", _default("cluster", "name"))
    primary = _single(primary, "--primary")
    arbiter = _single(arbiter, "--arbiter")
    mongodb_version = _single(mongodb_version, "--mongodb-version", _default("cluster", "mongodb_version"))
    write_concern = _single(write_concern, "--write-concern", _default("cluster", "write_concern"))
    backup_dir = _single(backup_dir, "--backup-dir", _default("backup", "dir"))
    root = _single(root, "--root")
    passphrase_file = _single(passphrase_file, "--passphrase-file")
    if root is not None and not root.strip():
        raise InputError("--root", "is empty", "give a directory, or leave --root out to write /")
    spec = cluster.spec_from_flags(name, primary, secondaries, arbiter, allow, mongodb_version,
                                   write_concern, backup_dir, mongo_express)
    for warning in firewall.warnings(spec):
        click.echo(f"warning: {warning}", err=True)
    passphrase = None
    if passphrase_file:
        passphrase = secrets.read_passphrase(passphrase_file, min_length=secrets.MIN_PASSPHRASE)
        warning = secrets.loose_mode_warning(passphrase_file)
        if warning:
            click.echo(f"warning: {warning}", err=True)
    root = os.path.abspath(root) if root else None
    live = root is None
    running = facts.running_members() if live else []

    def announce(text):
        try:
            click.echo("bundle passphrase (shown once; keep it safe, it opens bundle.dbrs):", err=True)
            click.echo(f"  {text}", err=True)
        except OSError as e:
            raise DbrsError(f"cannot show the generated bundle passphrase ({e.strerror}); nothing was written: "
                            "run again with a writable stderr, or pass --passphrase-file FILE") from None

    try:
        written, passphrase, generated = cluster.init(root, spec, force=force, passphrase=passphrase,
                                                      live=live, running=running, announce=announce)
    except OSError as e:
        raise DbrsError(f"writing the cluster files failed: {e.filename or ''}: {e.strerror}; "
                        "free space or fix permissions there, then run again with --force") from None
    prefix = root or ""
    try:
        for path in written:
            note = "  (the replaced backup key, kept: backups made with it need it)" if ".replaced-" in path else ""
            click.echo(f"wrote {prefix}{path}{note}")
    except OSError as e:
        # Python would report the unflushed stdout again at exit, with a traceback-like line.
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        raise DbrsError(f"cannot write to stdout ({e.strerror}); the cluster files were written in "
                        f"{prefix}/etc/dbrs") from None
