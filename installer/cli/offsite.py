"""`dbrs offsite push | list | verify | prune | fetch | status | credentials`: thin wrappers over installer.backup
(offsite: queue and push; remotes: list, verify, prune; retrieve: fetch)."""

import sys

import click

from .common import config_option, emit_json, handle_errors


def _load(config):
    from .. import spec as specmod
    from .. import secrets

    return specmod.load(config), secrets.load(config)


@click.group("offsite")
def offsite():
    """Copy backups to the [[offsite]] targets; list, verify, prune and fetch them there."""


@offsite.command("push")
@click.option("--target", metavar="NAME", help="Only this target.")
@click.option("--catch-up", is_flag=True, help="First queue every local backup no queue entry holds.")
@config_option
@handle_errors
def push(target, catch_up, config):
    """Copy every queued backup and slice to the targets (the dbrs-offsite timer runs this)."""
    from ..backup import offsite as lib, offsite_targets
    from ..errors import DbrsError

    spec, sec = _load(config)
    chosen = offsite_targets.targets_of(spec, target)      # exit 2 naming the problem: no targets, or an unknown one
    targets = [t.name for t in chosen] if target else None
    if catch_up:
        added = lib.catch_up(spec)
        click.echo(f"queued {len(added)} local file(s) no entry held")
    report = lib.push(spec, sec, targets=targets, progress=click.echo)
    if report.busy:
        click.echo(f"skipped: {report.busy}")
        return
    waiting = ", ".join(f"{t}: {n} waiting" for t, n in sorted(report.waiting.items()))
    click.echo(f"{len(report.copied)} file(s) copied; {waiting}")
    if report.failed:
        raise DbrsError(f"off-site copy failed for {', '.join(sorted(report.failed))}; the backups stay queued "
                        "and local (run `dbrs offsite push` once the target is back)")
    if report.lost:
        raise DbrsError(f"{len(report.lost)} backup(s) were gone locally before they were copied off-site "
                        "(local retention too short for the off-site lag?)")


@offsite.command("list")
@click.option("--target", metavar="NAME", help="Only this target.")
@click.option("--json", "as_json", is_flag=True, help="Print the remote files and manifests as JSON.")
@config_option
@handle_errors
def list_(target, as_json, config):
    """List the backups and slices on each target; files without a good manifest are marked."""
    from ..backup import catalog, offsite as lib, offsite_targets, rclone, remotes

    spec, sec = _load(config)
    data = {}
    for t in offsite_targets.targets_of(spec, target):
        with rclone.Session(t, sec, lib.spool_dirs(lib.spool_of(spec))["run"]) as s:
            data[t.name] = remotes.listing(spec, t, s)
    if as_json:
        emit_json({n: [{"kind": f.kind, "name": f.name, "bytes": f.size, "good": f.good, "manifest": f.manifest}
                       for f in files] for n, files in data.items()})
        return
    for name, files in data.items():
        fulls = [f for f in files if f.kind == catalog.FULL]
        slices = [f for f in files if f.kind == catalog.OPLOG and f.good]
        click.echo(f"off-site {name}: {len([f for f in fulls if f.good])} full backup(s), {len(slices)} oplog slice(s)")
        for f in fulls:
            tail = f"finished {f.manifest['finished']}" if f.good else "INCOMPLETE (no good manifest)"
            click.echo(f"  {f.name}  {lib.human(f.size):>10}  {tail}")
        for f in files:
            if f.kind == catalog.OPLOG and not f.good:
                click.echo(f"  {f.name}  INCOMPLETE (no good manifest)")
        if slices:
            click.echo(f"  slices {slices[0].manifest.get('finished')} .. {slices[-1].manifest.get('finished')}")


@offsite.command("verify")
@click.argument("names", nargs=-1)
@click.option("--target", metavar="NAME", help="Only this target.")
@click.option("--download", is_flag=True, help="Also authenticate every encrypted chunk (needs backup.key).")
@config_option
@handle_errors
def verify(names, target, download, config):
    """Check remote sizes and sha256 against the manifests (every byte is read from the target)."""
    from ..backup import remotes, source
    from ..errors import DbrsError

    spec, sec = _load(config)
    key = source.backup_key(sec) if download else None
    checks = remotes.verify(spec, sec, target=target, names=set(names) or None, download=download, key=key)
    for c in checks:
        click.echo(c.line())
    bad = [c for c in checks if not c.ok]
    if bad:
        raise DbrsError(f"{len(bad)} of {len(checks)} off-site file(s) failed verification")
    if not checks:
        click.echo("nothing on the target(s) yet")


@offsite.command("prune")
@click.option("--target", metavar="NAME", help="Only this target.")
@click.option("--dry-run", is_flag=True, help="Say what would go; delete nothing.")
@config_option
@handle_errors
def prune(target, dry_run, config):
    """Apply the retention to each target, never below keep_min good full backups there."""
    from ..backup import remotes

    spec, sec = _load(config)
    result = remotes.prune(spec, sec, target=target, dry_run=dry_run, progress=click.echo)
    for name, dropped in result.items():
        click.echo(f"off-site {name}: {len(dropped)} file(s) {'would go' if dry_run else 'deleted'}")


@offsite.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--to", "to", metavar="TIME", help="Fetch the full backup and slices `dbrs restore --to TIME` needs.")
@click.option("--target", metavar="NAME", help="Target to fetch from (default: the first).")
@click.option("--into", metavar="DIR", help="Backup folder to fill (default: [backup] dir).")
@config_option
@handle_errors
def fetch(names, to, target, into, config):
    """Download and verify backups for a restore; intact local copies are used instead and said so.

    Then run `dbrs restore NAME` or `dbrs restore --to TIME` as usual.
    """
    from ..backup import retrieve
    from ..errors import InputError
    from .timearg import parse_time

    if bool(names) == bool(to):
        raise InputError("fetch", "needs backup NAMEs or --to TIME (not both)", "see `dbrs offsite list`")
    spec, sec = _load(config)
    into = into or spec.backup.dir
    got = retrieve.fetch(spec, sec, into, names=list(names) or None, to=parse_time(to) if to else None,
                    target=target, progress=click.echo)
    remote = sum(1 for _, src in got if src != "local")
    click.echo(f"{len(got)} file(s) ready in {into} ({remote} downloaded, {len(got) - remote} local)")


@offsite.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.option("--check", is_flag=True, help="Exit 1 when a copy failed or waits longer than max_lag.")
@config_option
@handle_errors
def status(as_json, check, config):
    """The off-site lag of each target (no network: read from the queue and the last runs)."""
    from .. import spec as specmod
    from ..backup import offsite as lib

    spec = specmod.load(config)
    summary = lib.status_summary(spec)
    if as_json:
        emit_json(summary)
    else:
        for line in lib.render_summary(summary) or ["no [[offsite]] targets in the spec"]:
            click.echo(line)
    if check and lib.problems(summary):
        sys.exit(1)


@offsite.command("credentials")
@click.argument("target")
@click.option("--key-file", type=click.Path(dir_okay=False), help="SFTP: the private key (OpenSSH/PEM) to log in with.")
@click.option("--s3-keys-file", type=click.Path(dir_okay=False),
              help="S3: a file with two lines, the access key id and the secret access key.")
@click.option("--passphrase-file", metavar="FILE", help="Bundle passphrase: re-seal bundle.dbrs with the credentials.")
@config_option
@handle_errors
def credentials(target, key_file, s3_keys_file, passphrase_file, config):
    """Store a target's credentials in secrets.toml (root 0600) and, with --passphrase-file, in the bundle.

    Credentials are read from files, never from the command line.
    """
    from ..backup import offsite_targets

    written = offsite_targets.store_credentials(config, target, key_file=key_file, s3_keys_file=s3_keys_file,
                                    passphrase_file=passphrase_file)
    for path in written:
        click.echo(f"wrote {path}")
    if not passphrase_file:
        click.echo("WARN bundle.dbrs does not hold these credentials yet: re-run with --passphrase-file, or keep "
                   "them somewhere that survives the loss of every host", err=True)
