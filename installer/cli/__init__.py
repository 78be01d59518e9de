"""The `dbrs` command: a thin layer that parses, calls the library and prints.

Subcommands are imported only when run, so `dbrs --help` loads click and
nothing heavy (no pymongo, jinja2 or cryptography).
"""

import importlib

import click

from .. import __version__

# name -> (module under installer.cli, attribute, one-line help for `dbrs --help`)
COMMANDS = {
    "init": ("init", "init", "Write a new cluster spec, keyfile, secrets and bundle."),
    "backup": ("backup", "backup", "Take a full backup; list and verify backups."),
    "oplog": ("backup", "oplog", "Save an oplog slice for point-in-time restore."),
    "prune": ("backup", "prune", "Delete backups past their retention."),
    "restore": ("backup", "restore", "Restore a backup, or the cluster as of a point in time."),
    "alert": ("backup", "alert", "Record and report a failed dbrs unit (used by dbrs-alert@)."),
    "bootstrap": ("cluster", "bootstrap", "Initiate the replica set, create users, set the write concern."),
    "status": ("cluster", "status", "Show the replica set's health and what needs doing."),
    "uri": ("cluster", "uri", "Print the connection strings (no password)."),
    "degrade": ("cluster", "degrade", "Take a down secondary's vote away so majority writes succeed."),
    "recover": ("cluster", "recover", "Give a degraded member its vote and priority back."),
    "stepdown": ("cluster", "stepdown", "Step the primary down and time the failover."),
    "user": ("user", "user", "Application users: add, list, remove, rotate their passwords."),
    "offsite": ("offsite", "offsite", "Copy backups off-site; list, verify, prune and fetch them there."),
    "upgrade": ("upgrade", "upgrade", "Rolling MongoDB upgrade, host by host, then the FCV."),
    "tls": ("tls", "tls", "The cluster CA's certificates: days left, files for application hosts."),
    "member": ("member", "member", "Add, remove or replace a member in the spec (then `dbrs reconfigure`)."),
    "reconfigure": ("member", "reconfigure", "Bring the set's members to the spec, one safe reconfig at a time."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)

    def format_commands(self, ctx, formatter):
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dbrs")
def main():
    """Run a MongoDB replica set on plain systemd hosts.

    Install members with `sudo dbrs-install --role primary|secondary|arbiter`.
    """
