"""`dbrs bootstrap|status|uri|degrade|recover|stepdown`: the replica set from any member host.

pymongo and the spec loader are imported inside the commands so that
`dbrs --help` stays light.
"""

import os
import time
import sys


import click

from .common import Reporter, config_option, emit_json, handle_errors, load_spec


def _load(config):
    from .. import secrets

    loaded = load_spec(config)
    return loaded, secrets.load(config, keyfile=True)


def wait_option(default):
    return click.option("--wait", "wait_s", type=click.FloatRange(min=0), default=default, show_default=True,
                        metavar="SECONDS", help="How long to wait before giving up.")


def print_bootstrap(result):
    """What follows the steps (the reporter printed each as it finished): notes and connection strings."""
    for note in result.notes:
        click.echo(f"note {note}")
    click.echo(f"connect:      {result.uri}")
    click.echo(f"read scaling: {result.read_uri}")


@click.command("bootstrap")
@config_option
@wait_option(600)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def bootstrap(config, wait_s, as_json):
    """Initiate the set, create the users and set the default write concern (on the primary's host)."""
    from ..replset.bootstrap import bootstrap as run_bootstrap

    spec, secrets = _load(config)
    result = run_bootstrap(spec, secrets, wait_s=wait_s, progress=None if as_json else Reporter())
    if as_json:
        emit_json({"steps": [{"step": s, "status": st, "detail": d} for s, st, d in result.steps],
                   "uri": result.uri, "read_uri": result.read_uri, "notes": result.notes})
    else:
        print_bootstrap(result)


@click.command("status")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.option("--check", is_flag=True, help="Exit 1 when anything is unhealthy (for monitoring).")
@handle_errors
def status(config, as_json, check):
    """Members, lag, commit point, oplog window, write concern and what needs doing."""
    from ..backup import offsite, status
    from ..replset import operations
    from .render import render_status

    spec, secrets = _load(config)
    st = operations.read_status(spec, secrets)
    backups = status.status_summary(spec, os.path.dirname(os.path.abspath(config)))
    backup_problems = status.summary_problems(backups)
    from ..host import facts, firewall

    copies = offsite.status_summary(spec) if spec.offsite else None
    copy_problems = offsite.problems(copies) if copies else []
    firewall_problems = firewall.problems(*facts.firewall_state(config))
    from .. import certstore

    cert_lines, cert_problems = certstore.summary(spec, config, time.time())
    if as_json:
        doc = {**st.to_json(), "backups": {**backups, "problems": backup_problems},
               "firewall": {"problems": firewall_problems},
               "certificates": {"lines": cert_lines, "problems": cert_problems}}
        if copies is not None:
            doc["offsite"] = {**copies, "problems": copy_problems}
        emit_json(doc)
    else:
        click.echo(render_status(st))
        for line in status.render_summary(backups) + (offsite.render_summary(copies) if copies else []):
            click.echo(line)
        for line in firewall_problems:
            click.echo(f"WARN {line}")
        for line in cert_lines:
            click.echo(line)
    if check and (not st.ok or backup_problems or copy_problems or firewall_problems or cert_problems):
        sys.exit(1)


@click.command("uri")
@config_option
@click.option("--user", metavar="NAME", help="Put this user in the string (the password stays in secrets.toml).")
@handle_errors
def uri(config, user):
    """Print the connection string and its read-scaling variant."""
    from .. import spec as specmod, tls as tlsmod
    from ..replset import documents
    from ..errors import InputError

    spec = specmod.load(config)
    if user is not None and not user:
        raise InputError("--user", "is empty", "name a user, e.g. --user admin")
    if user is not None:
        _known_user(config, user)
    plain, read = documents.connection_strings(spec, user)
    click.echo(plain)
    click.echo(read)
    if tlsmod.clients_use_tls(tlsmod.client_mode(spec)):
        click.echo("note: tlsCAFile is where the CA sits on this host; for an application host, "
                   "`sudo dbrs tls client-bundle DIR` writes the CA (and optionally a client certificate) to copy "
                   "there, and prints the parameters with its paths", err=True)


def _known_user(config, user):
    """A string for a user secrets.toml does not hold could never log in: say so instead of printing it."""
    from .. import secrets as secretsmod
    from ..errors import InputError

    sec = secretsmod.load(config)
    if user not in sec.passwords and user not in sec.app_users:
        shown = user if len(user) <= 40 else user[:40] + "..."
        raise InputError("--user", f"{shown!r} is not a user of this cluster",
                         "see `dbrs user list`, or add it with `dbrs user add`")


@click.command("degrade")
@click.argument("member")
@config_option
@wait_option(60)
@handle_errors
def degrade(member, config, wait_s):
    """Take a down secondary's vote away (votes 0, priority 0) so majority writes succeed again."""
    from ..replset import operations

    spec, secrets = _load(config)
    click.echo(operations.degrade(spec, secrets, member, wait_s=wait_s))


@click.command("recover")
@click.argument("member")
@config_option
@wait_option(600)
@handle_errors
def recover(member, config, wait_s):
    """Give a degraded member its vote back, then (once caught up) its priority."""
    from ..replset import operations

    spec, secrets = _load(config)
    click.echo(operations.recover(spec, secrets, member, wait_s=wait_s, progress=Reporter()))


@click.command("stepdown")
@click.option("--secs", type=click.IntRange(min=1, max=3600), default=60, show_default=True,
              help="How long the old primary may not stand for election (1..3600; for longer work on it, "
                   "`dbrs degrade` it or stop its mongod).")
@config_option
@wait_option(60)
@handle_errors
def stepdown(secs, config, wait_s):
    """Step the primary down for maintenance and time the failover."""
    from ..replset import operations

    spec, secrets = _load(config)
    r = operations.stepdown(spec, secrets, secs=secs, wait_s=wait_s)
    click.echo(f"{r.old} stepped down; {r.new} is PRIMARY; the set had no primary for {r.no_primary_s:.1f} s")
