"""`dbrs-install`: make this host's members what the spec says; safe to run again.

The report streams: the members and preflight first, then each item the
moment it is settled, then the replica-set steps; `--json` prints one
document at the end instead.
"""

import sys

import click

from . import common
from .common import Reporter, emit_json, handle_errors


@click.command("dbrs-install", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--role", type=click.Choice(["primary", "secondary", "arbiter", "all"]),
              help="Install the member(s) with this role (default: the members whose host is this host).")
@click.option("--member", metavar="NAME", help="Install just this member.")
@click.option("--config", metavar="FILE", help="Cluster spec (default /etc/dbrs/cluster.toml); secrets from its folder. "
              "Another file is copied, with its secrets, over /etc/dbrs.")
@click.option("--bundle", metavar="FILE", help="Take spec and secrets from a bundle written by `dbrs init`.")
@click.option("--passphrase-file", metavar="FILE", help="File holding the bundle's passphrase.")
@click.option("--root", metavar="DIR", help="Read and write every host path under DIR: no packages, no systemctl, no chown.")
@click.option("--dry-run", is_flag=True, help="Show the diff of every file and the actions; change nothing.")
@click.option("--no-packages", is_flag=True, help="Do not touch apt (mongod is installed already).")
@click.option("--packages-from", metavar="DIR", help="Install MongoDB from the .deb files in DIR (air-gapped hosts).")
@click.option("--no-start", is_flag=True, help="Enable the units but do not start them (and skip the bootstrap).")
@click.option("--wait", "wait_s", type=click.FloatRange(min=0), default=600, show_default=True, metavar="SECONDS",
              help="On the primary's host: how long the bootstrap waits for the other members when the set "
                   "has something to do (a set that is already complete is not waited for).")
@click.option("--replace-secrets", is_flag=True,
              help="Install a bundle or spec whose keyfile differs from the one this host's running members use.")
@click.option("--purge-data", is_flag=True,
              help="Also delete the data and logs of members that left this host's spec (kept by default).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.version_option(package_name="dbrs", prog_name="dbrs-install")
@handle_errors
def main(role, member, config, bundle, passphrase_file, root, dry_run, no_packages, packages_from, no_start,
         wait_s, replace_secrets, purge_data, as_json):
    """Install this host's replica-set members: packages, mongod.conf and units,
    keyfile, OS tuning, firewall; then bootstrap the set on the primary.

    Without any spec it installs all three members on this host (try-it-out).
    """
    from .. import install

    the_set = None      # a staging tree (--root) has no members to ask
    if root is None:
        from ..replset import local as the_set
    opts = install.Options(role=role, member=member, config=config, bundle=bundle,
                           passphrase_file=passphrase_file, root=root, dry_run=dry_run,
                           packages=not no_packages, packages_from=packages_from, start=not no_start,
                           replace_secrets=replace_secrets, purge_data=purge_data)
    if root is None and not dry_run:
        import os

        if os.geteuid() != 0:
            raise install.InputError("dbrs-install", "changes the host and must run as root", "use sudo, or --root DIR / --dry-run")
    if as_json:
        result = install.run(opts, bootstrap=_bootstrap(wait_s, None), preview=_preview, the_set=the_set)
    else:
        reporter = Reporter()
        result = install.run(opts, bootstrap=_bootstrap(wait_s, reporter), on_plan=_head(dry_run),
                             on_item=_item, preview=_preview, progress=_slow(reporter), the_set=the_set)
    failed = [c for c in result.checks if c.level == "FAIL"]
    if as_json:
        emit_json({
            "members": [m.name for m in result.target.members],
            "origin": result.origin,
            "dry_run": dry_run,
            "preflight": [{"level": c.level, "name": c.name, "detail": c.detail} for c in result.checks],
            "items": [{"item": c.item.label(), "kind": c.item.kind, "status": c.status, "reasons": c.reasons}
                      for c in result.changes],
            "steps": [{"step": s[0], "status": s[1], "detail": s[2]} for s in result.steps],
            "summary": result.summary,
        })
    else:
        _tail(result, dry_run or bool(failed))
    if failed:
        click.echo("error: preflight failed; nothing was changed", err=True)
        sys.exit(1)


def _out(text):
    click.echo(text)
    sys.stdout.flush()


def _head(dry_run):
    """The members and the preflight, printed before anything changes."""

    def show(result):
        names = ", ".join(m.name for m in result.target.members) or "none on this host (its members left the spec)"
        where = {"default": "no spec found: the single-host default",
                 "bundle": "spec and secrets from the bundle"}.get(result.origin, f"spec {result.origin}")
        if result.copied_from:
            where += f"; copied with its keyfile and secrets to {result.target.spec_path}"
        _out(f"members: {names} ({where})")
        for check in result.checks:
            _out(f"preflight {check.line()}")

    return show


def _slow(reporter):
    """Say before an item that can take minutes (apt, npm, a key download) that it is under way."""

    from ..host import registry

    def before(change):
        if registry.handler(change.item).slow:
            reporter(f"{change.item.label()} ...")

    return before


def _item(change):
    _out(change.line())
    if change.changed:
        common.DONE.append(change.item.label())


def _tail(result, not_applied):
    """What was not streamed: a dry run's diffs and items, the replica-set step, the summary."""
    if not_applied:
        for text in result.diffs:
            click.echo(text, nl=not text.endswith("\n"))
        for change in result.changes:
            line = change.line()
            _out(line.replace("changed  ", "would change", 1) if change.changed else line)
    for step, status, detail in result.steps:
        _out(f"{status:9} {step}" + (f": {detail}" if detail else ""))
    s = result.summary
    _out(f"{s['changed']} {'would change' if not_applied else 'changed'}, {s['unchanged']} unchanged")


def _bootstrap(wait_s, progress):
    """The replica-set bootstrap that runs on the primary host after apply, then the reconfigure that brings the
    set's members to the spec (issue 13), as a list of (step, status, detail)."""

    def run(target):
        from .. import secrets
        from ..replset.bootstrap import bootstrap

        from ..replset.reconfigure import converge

        sec = secrets.load(target.spec_path, keyfile=True)
        result = bootstrap(target.spec, sec, wait_s=wait_s, progress=progress, wait_flag="dbrs-install --wait")
        detail = "; ".join(f"{step} {detail}" for step, status, detail in result.steps if status != "unchanged")
        status = "changed" if result.changed else "waiting" if result.waiting else "unchanged"
        return [("replica set", status, (detail + "; " if detail else "") + result.uri),
                converge(target.spec, sec, wait_s=wait_s, progress=progress)]

    return run


def _preview(target):
    """--dry-run on the primary's host: the replica-set steps the bootstrap would take (read-only queries)."""
    from ..errors import DbrsError
    from ..replset import reconfigure
    from ..replset.bootstrap import preview

    steps = [(f"replica set {step}", status, detail) for step, status, detail in preview(target.spec, target.secrets)]
    if steps[0][:2] != ("replica set initiate", "unchanged"):
        return steps
    try:
        planned = reconfigure.run(target.spec, target.secrets, dry_run=True).planned
    except DbrsError as e:
        return steps + [("replica set members", "unknown", str(e))]
    todo = [says for kind, says in planned if kind == "step"]
    return steps + [("replica set members", "would change", "; ".join(todo)) if todo
                    else ("replica set members", "unchanged", "the set's members match the spec")]
