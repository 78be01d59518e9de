"""`dbrs upgrade --to VERSION | --set-fcv VERSION`: a rolling MongoDB upgrade, one host at a time.

Run `dbrs upgrade --to 8.0` on each host in turn; it reads the live set and
either upgrades this host's members or says which host goes next. Then, once
every member runs the new binary, `dbrs upgrade --set-fcv 8.0` (one-way).
"""

import os
import sys

import click

from .common import Reporter, config_option, emit_json, handle_errors, load_spec


@click.command("upgrade")
@click.option("--to", "to", metavar="VERSION", help="Move this host's members to this MongoDB series (e.g. 8.0).")
@click.option("--set-fcv", "fcv", metavar="VERSION",
              help="Set the feature compatibility version once every member runs VERSION (one-way in practice).")
@click.option("--dry-run", is_flag=True, help="Say what this host would do; change nothing.")
@click.option("--packages-from", metavar="DIR", help="Take the new version's .deb files from DIR (air-gapped hosts).")
@click.option("--passphrase-file", metavar="FILE",
              help="The bundle's passphrase: re-seal bundle.dbrs with the upgraded spec (on the host that holds it).")
@click.option("--yes", is_flag=True, help="With --set-fcv: do not ask for confirmation.")
@click.option("--wait", "wait_s", type=click.FloatRange(min=1), default=600, show_default=True, metavar="SECONDS",
              help="How long to wait for each restarted member to be healthy and caught up.")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def upgrade(to, fcv, dry_run, packages_from, passphrase_file, yes, wait_s, config, as_json):
    """Rolling MongoDB upgrade: secondaries and arbiter first, the primary last after a step-down."""
    from .. import secrets as secretsmod
    from ..errors import InputError

    from ..upgrade import DBRS_SERIES

    for flag, value in (("--to", to), ("--set-fcv", fcv)):
        if value is not None and not value.strip():
            raise InputError(flag, "is empty", "give one of " + ", ".join(DBRS_SERIES) + f", e.g. {flag} 8.0")
    if to is None and fcv is None:
        raise InputError("--to", "is missing", f"give --to {'|'.join(DBRS_SERIES)} to upgrade this host's members, "
                         "or --set-fcv VERSION once every member runs it")
    if to is not None and fcv is not None:
        raise InputError("--set-fcv", "cannot go with --to", f"first `dbrs upgrade --to {to[:10]}` on each host "
                         "(accepted: " + ", ".join(DBRS_SERIES) + "), then `dbrs upgrade --set-fcv` once")
    if packages_from and not os.path.isdir(packages_from):
        raise InputError("--packages-from", f"{packages_from[:200]} is not a directory", "point it at a folder of .deb files")
    if not dry_run and os.geteuid() != 0:
        raise InputError("dbrs upgrade", "changes the host and must run as root", "use sudo, or --dry-run")
    from .. import upgrade as plan

    plan.check_version("--to" if to else "--set-fcv", to or fcv)   # before asking the set anything
    spec, secrets = load_spec(config), secretsmod.load(config, keyfile=True)
    if to:
        plan.check_jump(spec.cluster.mongodb_version, to)   # the spec's series: a downgrade is said before connecting
    if fcv:
        return _set_fcv(spec, secrets, fcv, dry_run, yes, as_json)
    passphrase = None
    if passphrase_file:
        from .. import secrets as secretsmod, upgrade_run

        passphrase = secretsmod.read_passphrase(passphrase_file)
        upgrade_run.open_bundle(config, passphrase)     # a wrong passphrase is refused before anything changes
    return _upgrade(spec, secrets, config, to, dry_run, packages_from, wait_s, as_json, passphrase)


def _local_names(spec):
    from .. import machine

    here = machine.this_host()
    return {m.name for m in spec.members if machine.is_local(m.host, here)}


def _upgrade(spec, secrets, config, to, dry_run, packages_from, wait_s, as_json, passphrase=None):
    from .. import upgrade, upgrade_run
    from ..errors import InputError

    local = _local_names(spec)
    if not local:
        raise InputError("--config", "no member of the spec lives on this host", "run dbrs upgrade on a member's host")
    reporter = None if as_json else Reporter()
    if dry_run:
        decision, done = upgrade_run.run(spec, secrets, to, local, None, progress=reporter, dry_run=True)
    else:
        from .. import install, locks

        # dbrs-install's lock: an install planning from the old version must not run while packages move
        os.makedirs(os.path.dirname(install.INSTALL_LOCK), exist_ok=True)
        with locks.held(install.INSTALL_LOCK, "dbrs upgrade"):
            decision, done = upgrade_run.run(spec, secrets, to, local, upgrade_run.Host(spec, packages_from),
                                             progress=reporter, wait_s=wait_s)
    if decision.status == "not yet":
        raise InputError("--to", decision.message, "run it here again after them; nothing was changed")
    spec_changed = resealed = False
    if not dry_run:
        here = [m for m in spec.members if m.name in local]
        if all(upgrade.series(upgrade_run.build_version(m)) == to for m in here):
            spec_changed = upgrade_run.set_spec_version(config, to)
            resealed = passphrase is not None and upgrade_run.reseal(config, passphrase)
    if as_json:
        emit_json({"status": decision.status, "message": decision.message,
                   "steps": [s.text() for s in decision.steps], "done": [s.text() for s in done],
                   "spec_changed": spec_changed, "bundle_resealed": resealed})
        return
    if decision.status == "upgrade":
        for s in decision.steps if dry_run else done:
            click.echo(f"{'would change' if dry_run else 'changed  '} {s.text()}")
    else:
        click.echo(f"unchanged upgrade: {decision.message}")
    if spec_changed:
        click.echo(f'changed   spec {config}: mongodb_version = "{to}"')
        click.echo(f"note: run `sudo dbrs-install` on this host to apply {to}'s OS tuning", err=True)
    if resealed:
        click.echo("changed   bundle.dbrs: re-sealed with the upgraded spec")
    elif spec_changed and passphrase is None:
        click.echo(f"note: bundle.dbrs (where `dbrs init` ran) still says {spec.cluster.mongodb_version}: a host "
                   "installed from it would get the old version's repository and pin; re-seal it there with "
                   f"`sudo dbrs upgrade --to {to} --passphrase-file FILE`", err=True)
    if decision.status == "upgrade" and not dry_run:
        click.echo(f"next: run `sudo dbrs upgrade --to {to}` on the next host (it says whether it is its turn)")


def _set_fcv(spec, secrets, to, dry_run, yes, as_json):
    from .. import upgrade, upgrade_run
    from ..replset import connection
    from ..errors import DbrsError, InputError

    view = upgrade_run.read_view(spec, secrets, set())
    cmd = upgrade.decide_fcv(view, to)
    if cmd is None:
        click.echo(f"unchanged feature compatibility version {to}")
        return
    if dry_run:
        click.echo(f"would change feature compatibility version {view.fcv} -> {to}")
        return
    if not yes:
        if not sys.stdin.isatty():
            raise InputError("--set-fcv", f"raises the feature compatibility version to {to}, which is one-way in "
                             "practice (going back needs MongoDB's support)", "confirm with --yes")
        click.confirm(f"Raise the feature compatibility version {view.fcv} -> {to}? Going back needs MongoDB's "
                      "support; check your applications against it first.", abort=True)
    primary, _ = connection.find_primary(spec)
    if primary is None:
        raise DbrsError("no member is PRIMARY; see `dbrs status`")
    with connection.connect(primary.name, primary.host, primary.port, user="admin", password=secrets.password("admin")) as c:
        c.command(cmd)
        got = c.command({"getParameter": 1, "featureCompatibilityVersion": 1})["featureCompatibilityVersion"]
    if got.get("version") != to or got.get("targetVersion"):
        raise DbrsError(f"the feature compatibility version is {got} after setting {to}; run it again")
    if as_json:
        emit_json({"fcv": to, "changed": True})
    else:
        click.echo(f"changed   feature compatibility version {view.fcv} -> {to} (one-way in practice)")
