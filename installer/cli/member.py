"""`dbrs member add|remove|replace` (edit the spec, raise its generation, re-seal the bundle) and
`dbrs reconfigure` (bring the set's members to the spec, one safe reconfig at a time)."""

import click

from .common import Reporter, config_option, handle_errors, load_spec


def _wait_option(fn):
    return click.option("--wait", "wait_s", type=click.FloatRange(min=0), default=1800, show_default=True,
                        metavar="SECONDS", help="How long to wait for initial syncs and commits before giving up.")(fn)


@click.command("reconfigure")
@click.option("--dry-run", is_flag=True, help="Print the steps and change nothing.")
@_wait_option
@config_option
@handle_errors
def reconfigure(dry_run, wait_s, config):
    """Add, remove and replace members to match the spec, one safe reconfig at a time (resumable)."""
    from .. import secrets as secretsmod
    from ..replset import reconfigure as rc

    spec = load_spec(config)
    result = rc.run(spec, secretsmod.load(config, keyfile=True), wait_s=wait_s, dry_run=dry_run,
                    progress=None if dry_run else Reporter())
    if dry_run:
        n = 0
        for kind, says in result.planned:
            if kind == "step":
                n += 1
                click.echo(f"step {n}: {says}")
            else:
                click.echo(f"  then wait: {says}")
        click.echo(f"after {n} step(s): {result.concern}" if n else "nothing to do: the set's members match the spec")
        for note in result.notes:
            click.echo(f"note {note}")
        click.echo("nothing was changed (--dry-run)")
        return
    for note in result.notes:
        click.echo(f"note {note}")
    click.echo(f"the set's members match the spec ({len(result.steps)} reconfig step(s)); {result.concern}"
               if result.steps else "nothing to do: the set's members match the spec")


@click.group("member")
def member():
    """Change the spec's members (then install the new host and run `dbrs reconfigure`)."""


def _passphrase_option(fn):
    return click.option("--passphrase-file", metavar="FILE",
                        help="The bundle's passphrase: re-seal bundle.dbrs with the changed spec.")(fn)


def _edit(config, passphrase_file, edit):
    """Apply `edit(spec_text) -> (new_text, what)` to the spec file, re-seal, and say what to run where."""
    from .. import spec_edit

    outcome = spec_edit.change(config, passphrase_file, edit)
    click.echo(f"{outcome.what}; spec generation {outcome.generation} written to {config}")
    if outcome.bundle:
        click.echo(f"re-sealed {outcome.bundle}")
    else:
        click.echo("note: bundle.dbrs still holds the old spec (an older generation, which hosts now refuse); "
                   "re-seal it with `sudo dbrs member seal --passphrase-file FILE` before installing a host from it",
                   err=True)
    for line in outcome.next_steps:
        click.echo(f"next: {line}")


@member.command("add")
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@click.option("--host", "hosts", multiple=True, required=True, metavar="HOST[:PORT]",
              help="Where each new member runs, in the order of the names (repeat for each).")
@click.option("--role", type=click.Choice(["secondary", "arbiter"]), default="secondary", show_default=True)
@click.option("--remove", "remove", multiple=True, metavar="OTHER",
              help="Remove OTHER in the same change (PSA -> PSS: add the secondary, --remove the arbiter).")
@_passphrase_option
@config_option
@handle_errors
def add(names, hosts, role, remove, passphrase_file, config):
    """Add members NAME... (one --host each) to the spec; the voter count must stay odd."""
    from .. import spec_edit
    from ..errors import InputError

    if len(names) != len(hosts):
        raise InputError("--host", f"{len(hosts)} given for {len(names)} name(s)", "give one --host per NAME, in order")
    _edit(config, passphrase_file, spec_edit.adding(list(zip(names, hosts)), role, remove))


@member.command("remove")
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@_passphrase_option
@config_option
@handle_errors
def remove(names, passphrase_file, config):
    """Remove members NAME... from the spec (their data stays on their hosts); the voter count must stay odd."""
    from .. import spec_edit

    _edit(config, passphrase_file, spec_edit.removing(*names))


@member.command("replace")
@click.argument("name")
@click.option("--host", required=True, metavar="HOST[:PORT]", help="The new host of member NAME.")
@_passphrase_option
@config_option
@handle_errors
def replace(name, host, passphrase_file, config):
    """Move member NAME to a new host (a dead host's replacement): it resyncs there, then votes again."""
    from .. import spec_edit

    _edit(config, passphrase_file, spec_edit.replacing(name, host))


@member.command("seal")
@click.option("--passphrase-file", required=True, metavar="FILE", help="The passphrase `dbrs init` printed.")
@config_option
@handle_errors
def seal(passphrase_file, config):
    """Re-seal bundle.dbrs with this host's spec and secrets (after a change made without --passphrase-file)."""
    from .. import spec_edit

    path = spec_edit.reseal(config, passphrase_file)
    click.echo(f"re-sealed {path}" if path else "unchanged bundle.dbrs: it holds this spec and these secrets already")
