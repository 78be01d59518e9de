"""`dbrs init`: write the spec and the secrets of a new cluster."""

import click

from .common import handle_errors


@click.command("init")
@click.option("--name", default="dbrs", show_default=True, help="Replica set name.")
@click.option("--primary", metavar="HOST[:PORT]", help="Host of the primary-role member.")
@click.option("--secondary", "secondaries", multiple=True, metavar="HOST[:PORT]", help="Host of a secondary (repeatable).")
@click.option("--arbiter", metavar="HOST[:PORT]", help="Host of the arbiter.")
@click.option("--allow", multiple=True, metavar="CIDR", help="Client network let through the firewall (repeatable).")
@click.option("--mongodb-version", default="8.0", show_default=True, help="7.0 or 8.0.")
@click.option("--write-concern", default="majority", show_default=True, help="majority or 1.")
@click.option("--backup-dir", default="/var/backups/dbrs", show_default=True, metavar="DIR")
@click.option("--mongo-express", is_flag=True, help="Run Mongo Express on the primary host (127.0.0.1 only).")
@click.option("--root", metavar="DIR", help="Write under DIR instead of / (staging, tests).")
@click.option("--passphrase-file", metavar="FILE", help="Bundle passphrase; generated and printed once if absent.")
@click.option("--force", is_flag=True, help="Replace an existing spec and all its secrets.")
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

    spec = cluster.spec_from_flags(name, primary, secondaries, arbiter, allow, mongodb_version,
                                   write_concern, backup_dir, mongo_express)
    passphrase = secrets.read_passphrase(passphrase_file) if passphrase_file else None
    root = os.path.abspath(root) if root else None
    written, passphrase, generated = cluster.init(root, spec, force=force, passphrase=passphrase,
                                                  live=root is None)
    prefix = root or ""
    for path in written:
        click.echo(f"wrote {prefix}{path}")
    if generated:
        click.echo("bundle passphrase (shown once; keep it safe, it opens bundle.dbrs):", err=True)
        click.echo(f"  {passphrase}", err=True)
