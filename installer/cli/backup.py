"""`dbrs backup | backup list | backup verify | oplog | prune | restore | alert`: thin wrappers over the library."""

import re
import sys


import click

from .common import config_option, emit_json, handle_errors, load_spec
from .timearg import parse_time


def _spec(config):
    loaded = load_spec(config)
    return loaded


@click.group("backup", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@config_option
@click.pass_context
@handle_errors
def backup(ctx, as_json, config):
    """Take a full backup now (on the host whose member is the backup source).

    Other data-bearing hosts skip with the reason and exit 0, so the same
    timer runs everywhere.
    """
    if ctx.invoked_subcommand:
        return
    from ..backup import dump, full as lib

    spec = _spec(config)
    progress = dump.Progress()
    result = lib.run(spec, config, progress=progress)
    progress.done()
    if as_json:
        emit_json({"status": result.status, "reason": result.reason, "name": result.name, "path": result.path,
                   "manifest": result.manifest})
    else:
        click.echo(result.line())


@backup.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the manifests as JSON.")
@click.option("--offsite", is_flag=True, help="List what the off-site targets hold instead (`dbrs offsite list`).")
@config_option
@click.pass_context
@handle_errors
def list_(ctx, as_json, offsite, config):
    """List full backups and slices with their last verification, the point-in-time window,
    anything incomplete and what sits in quarantine."""
    if offsite:
        from . import offsite as off

        return ctx.invoke(off.list_, target=None, as_json=as_json, config=config)
    from ..backup import catalog, dump, status, times, verification

    spec = _spec(config)
    fulls, bad_f, slices, bad_s, quarantined, window, problems, foreign = status.listing(spec, config)
    if as_json:
        emit_json({
            "full": [dict(e.manifest.to_dict(), verification=verification.last(e.path)) for e in fulls],
            "oplog": [dict(e.manifest.to_dict(), verification=verification.last(e.path)) for e in slices],
            "pitr_window": None if window is None else {"from": times.ts_exact(window[0]),
                                                        "to": times.ts_exact(window[1])},
            "incomplete": [{"name": b.name, "kind": b.kind, "reason": b.reason} for b in bad_f + bad_s],
            "quarantined": quarantined,
            "chain_problems": problems,
            "foreign": foreign,
        })
        return
    if not fulls:
        click.echo(f"no full backups in {spec.backup.dir}")
    for e in fulls:
        m = e.manifest
        source = f"{m.member}@{m.host}" if m.member else "source unknown"
        oplog_to = f"oplog to {times.ts_iso(e.oplog_end)}" if e.oplog_end is not None else "no oplog times"
        click.echo(f"{e.name}  {m.finished}  {dump.human(m.bytes):>10}  {source}  "
                   f"{oplog_to}  {'encrypted' if m.encrypted else 'plain'}  "
                   f"{_verified(verification.last(e.path))}" + ("  (manifest rebuilt)" if m.rebuilt else ""))
    if slices:
        gaps = sum(1 for s in slices if s.manifest.gap)
        unverified = sum(1 for s in slices if not (verification.last(s.path) or {}).get("ok"))
        click.echo(f"{len(slices)} oplog slices, {times.ts_iso(slices[0].first)} .. {times.ts_iso(slices[-1].last)}"
                   + (f", {gaps} with a gap" if gaps else "")
                   + (f", {unverified} not verified yet" if unverified else ", all verified")
                   + f"; newest {_verified(verification.last(slices[-1].path))}")
    if window:
        click.echo(f"restore --to works from {times.ts_exact(window[0])} to {times.ts_exact(window[1])}")
    for b in bad_f + bad_s:
        if b.name.endswith(".partial") and catalog.busy(spec.backup.dir, b.kind):
            click.echo(f"in progress {b.name}: a run holds the lock (do not touch it)")
        else:
            click.echo(f"incomplete {b.name}: {b.reason}")
    for line in problems + foreign:
        click.echo(line)
    for q in quarantined:
        click.echo(f"quarantined {q['name']} ({q.get('time')}): {q.get('reason')}; in "
                   f"{spec.backup.dir}/{catalog.QUARANTINE}")


def _verified(rec):
    if rec is None:
        return "not verified yet"
    word = "verified" if rec["ok"] else "FAILED verification"
    return f"{word} {rec.get('time')} ({rec.get('how')})"


@backup.command("verify")
@click.argument("name", required=False)
@click.option("--all", "all_", is_flag=True, help="Every full backup and every slice.")
@click.option("--drill", is_flag=True, help="Also restore into a scratch mongod (when mongod is installed).")
@click.option("--rebuild-manifest", "rebuild", is_flag=True,
              help="Re-derive the lost manifest of the quarantined NAME from its bytes and put it back.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--offsite", is_flag=True, help="Check the off-site copies instead: remote sizes and sha256 against "
              "the manifests (`dbrs offsite verify`).")
@click.option("--download", is_flag=True, help="With --offsite: also authenticate every encrypted chunk.")
@config_option
@click.pass_context
@handle_errors
def verify(ctx, name, all_, drill, rebuild, as_json, offsite, download, config):
    """Read back NAME (default: the newest full backup), or --all, against the manifests.

    Cut-off, missing and stray files fail the run too; damaged files are
    moved to quarantine. --rebuild-manifest NAME brings back an archive
    whose manifest was lost (marked rebuilt: no oplog times, so NAME only).
    """
    from ..errors import InputError

    if download and not offsite:
        raise InputError("--download", "only goes with --offsite", "add --offsite")
    if offsite:
        if rebuild or drill or as_json:
            raise InputError("--offsite", "goes with NAME, --all or --download only", "drop the other options")
        from . import offsite as off

        return ctx.invoke(off.verify, names=(name,) if name else (), target=None, download=download, config=config)

    from .. import secrets
    from ..backup import source, verification
    from ..errors import DbrsError, InputError

    if name and all_:
        raise InputError("--all", "and NAME both pick backups", "use one of them")
    if rebuild and not name:
        raise InputError("--rebuild-manifest", "needs the NAME of a quarantined backup", "see `dbrs backup list`")
    spec = _spec(config)
    sec = secrets.load(config)
    key = source.backup_key(sec)
    if rebuild:
        from ..backup import rebuild as rlib

        m = rlib.rebuild(spec.backup.dir, name, key, spec.cluster.name)
        click.echo(f"rebuilt the manifest of {m.name}: {m.bytes} bytes, sha256 {m.sha256[:16]}…; "
                   "marked rebuilt (no oplog times: restore it by NAME, not with --to)")
        return
    results, failed, chain = verification.verify(spec, config, key, lambda: sec.password("restore"), name=name,
                                                 every=all_, drill=drill)
    if as_json:
        emit_json({"results": results, "failed": failed, "chain_problems": chain})
    else:
        for r in results:
            word = "ok    " if r["ok"] else "FAILED"
            if r.get("skipped"):
                word = "skip  "
            if "drill" in r:
                word = "drill " + r["drill"]
            click.echo(f"{word} {r['name']}: {r['detail']}")
        for line in chain:
            click.echo(f"FAILED {line}")
    if failed:
        raise DbrsError(f"{failed} of {len(results)} backup file(s) failed verification; do not restore from them")
    if chain:
        raise DbrsError(f"the oplog chain has {len(chain)} problem(s) (above); point-in-time restore will not cross them")


@click.command("oplog")
@click.option("--json", "as_json", is_flag=True)
@config_option
@handle_errors
def oplog(as_json, config):
    """Save the oplog entries since the last slice (point-in-time recovery)."""
    from ..backup import slices as lib

    result = lib.run(_spec(config), config)
    if as_json:
        emit_json({"status": result.status, "reason": result.reason, "name": result.name,
                   "manifest": result.manifest})
    else:
        click.echo(result.line())


@click.command("prune")
@click.option("--dry-run", is_flag=True, help="Show what would be deleted and stop.")
@click.option("--json", "as_json", is_flag=True)
@config_option
@handle_errors
def prune(dry_run, as_json, config):
    """Delete full backups past retention_days (keeping keep_min verified ones) and slices no kept backup needs.

    The backups it keeps in place of the deleted ones are read back first;
    one that fails goes to quarantine and the run fails (so it is alerted).
    """
    from .. import secrets
    from ..backup import prune as lib_prune, remotes, source
    from ..errors import DbrsError

    spec = _spec(config)
    b = spec.backup
    out = lib_prune.prune(spec, config, lambda: source.backup_key(secrets.load(config)), dry_run=dry_run,
                          waiting=lambda: click.echo("a backup is running: prune waits for it to finish (at most 5 "
                                                     "min)", err=True))
    d, hold = out.decision, out.held
    verb = "would delete" if dry_run else "deleted"
    if not as_json:
        for e in d.drop_full:
            click.echo(f"{verb} {e.name} (older than {b.retention_days} days)")
        if d.drop_slices:
            click.echo(f"{verb} {len(d.drop_slices)} oplog slices older than the oldest kept backup")
        for n, detail in out.quarantined:
            click.echo(f"{'would quarantine' if dry_run else 'quarantined'} {n}: {detail}")
        click.echo(f"kept {len(d.keep_full)} full backups and {len(d.keep_slices)} slices"
                   + (f"; read back {', '.join(out.verified)} before deleting" if out.verified else "")
                   + (f"; {len(hold)} waiting for their off-site copy" if hold else ""))
    remote, remote_error = {}, None
    if spec.offsite:
        # the same retention on every target, each keeping keep_min good backups of its own
        try:
            remote = remotes.prune(spec, secrets.load(config), dry_run=dry_run,
                                   progress=None if as_json else click.echo)
        except DbrsError as e:
            remote_error = e
    if as_json:
        emit_json({"dry_run": dry_run, "deleted_full": [e.name for e in d.drop_full],
                   "deleted_slices": [e.name for e in d.drop_slices],
                   "kept_full": [e.name for e in d.keep_full], "kept_slices": len(d.keep_slices),
                   "verified": out.verified, "quarantined": [n for n, _ in out.quarantined],
                   "offsite": remote})
    if out.quarantined:
        raise DbrsError(f"{len(out.quarantined)} backup(s) failed verification and "
                        f"{'would be' if dry_run else 'were'} quarantined, never counted: "
                        f"{catalog_shown(out.quarantined[0][0])}" + (" …" if len(out.quarantined) > 1 else ""))
    if remote_error is not None:
        raise DbrsError(f"off-site prune: {remote_error} (the local prune is done)")


def catalog_shown(name):
    from ..backup import catalog

    return catalog.shown(name)


_SHOW = 60                    # an argument is echoed at most this long



@click.command("restore")
@click.argument("name", required=False)
@click.option("--to", "to", metavar="TIME", help="Point in time (ISO 8601, e.g. 2026-11-28T10:15:00Z).")
@click.option("--ns-include", multiple=True, metavar="PATTERN", help="Only these namespaces (db.coll, db.*).")
@click.option("--drop", is_flag=True, help="Drop each collection before restoring it (always with --to).")
@click.option("--dry-run", is_flag=True, help="Verify and print the plan; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force-other-cluster", is_flag=True, help="Restore a backup taken of another cluster.")
@click.option("--base", "base_name", metavar="NAME", help="With --to: the full backup to replay from.")
@click.option("--cluster-id", metavar="ID", help="This cluster's replica set id, when the backup folder holds "
              "several clusters of this name and this host never took a backup.")
@click.option("--from-offsite", "from_offsite", is_flag=True,
              help="Take the files from the off-site target (intact local copies are used where they exist).")
@click.option("--target", metavar="NAME", help="With --from-offsite: which [[offsite]] target (default: the first).")
@config_option
@handle_errors
def restore(name, to, ns_include, drop, dry_run, yes, force_other_cluster, base_name, cluster_id, from_offsite,
            target, config):
    """Restore the full backup NAME, or the cluster as it was at --to TIME.

    TIME is ISO 8601 or @EPOCH; `…Z+3` names one oplog entry within its
    second, as `dbrs backup list` prints the window. No byte reaches
    mongorestore unproven; admin, config and local are never restored over.
    """
    from .. import secrets
    from ..backup import restore as rlib, retrieve, source
    from ..errors import InputError

    if base_name and not to:
        raise InputError("--base", "only goes with --to", "name the backup itself to restore it: dbrs restore NAME")
    if cluster_id is not None and not re.fullmatch(r"[0-9a-f]{24}", cluster_id):
        raise InputError("--cluster-id", f"{cluster_id[:40]!r} is not a replica set id",
                         "give the 24 hex digits `dbrs backup list` prints in a foreign: line")
    if bool(name) == bool(to):
        raise InputError("restore", "needs a backup NAME or --to TIME (not both)",
                         "see `dbrs backup list` for names and the point-in-time window")
    if to and ns_include:
        raise InputError("--ns-include", "cannot be combined with --to", "a point-in-time restore is of everything")
    drop = rlib.drops(to, drop)
    if name and len(name) > 255:
        raise InputError("NAME", f"{name[:_SHOW]!r}… is {len(name)} characters, no backup name is",
                         "see `dbrs backup list` for the names")
    if target and not from_offsite:
        raise InputError("--target", "only goes with --from-offsite", "add --from-offsite")
    rlib.check_ns_include(ns_include)
    when = parse_time(to) if to else None
    spec = _spec(config)
    sec = secrets.load(config)
    key = source.backup_key(sec)
    if from_offsite:
        with retrieve.fetched(spec, sec, name, when, target, say=click.echo) as fetched:
            _restore(fetched, sec, key, name, to, when, ns_include, drop, dry_run, yes, force_other_cluster,
                     base_name, cluster_id, config, " --from-offsite" + (f" --target {target}" if target else ""))
    else:
        _restore(spec, sec, key, name, to, when, ns_include, drop, dry_run, yes, force_other_cluster, base_name,
                 cluster_id, config, "")


def _restore(spec, sec, key, name, to, when, ns_include, drop, dry_run, yes, force_other_cluster, base_name,
             cluster_id, config, where):
    from .. import tools
    from ..backup import mongorestore, restore as rlib
    from ..errors import InputError

    plan, redo = rlib.choose(spec, config, key, name=name, to=to, when=when, ns_include=ns_include, drop=drop,
                             base_name=base_name, cluster_id=cluster_id, force_other_cluster=force_other_cluster,
                             where=where)
    early = None if dry_run else rlib.Preflight(spec, plan, sec.password(mongorestore.USER))
    with rlib.prepare(plan, key) as prepared:
        click.echo(f"proved {1 + len(plan.slices)} file(s) against their manifests (every chunk, every oplog "
                   "entry); the base is proven again chunk by chunk as it is fed")
        for line in plan.lines():
            click.echo(line)
        excl = ", ".join(mongorestore.SYSTEM_DBS)
        click.echo(f"into   {spec.cluster.name} ({', '.join(rlib.hosts_of(spec))}); never {excl}"
                   + ("; dropping each restored collection first" if drop else
                      "; without --drop documents already there are kept (mongorestore only inserts)")
                   + (f"; only {', '.join(ns_include)}" if ns_include else ""))
        if dry_run:
            click.echo("dry run: nothing restored")
            return
        if not yes:
            if not sys.stdin.isatty():
                raise InputError("--yes", "no terminal to confirm on", "pass --yes to restore without asking")
            click.confirm("Restore now?", abort=True)
        tool = early.result()
        with tools.signals_as_errors("the restore", "mongorestore was killed"):
            report = rlib.execute(spec, prepared, sec.password(mongorestore.USER), key, spec_path=config, drop=drop,
                                  ns_include=ns_include, say=click.echo, redo=redo, tool=tool)
    click.echo(f"restore finished in {report.seconds:.1f} s")


@click.command("alert", hidden=True)
@click.argument("unit")
@config_option
@handle_errors
def alert(unit, config):
    """Record and report the failure of UNIT (run by dbrs-alert@UNIT.service)."""
    from .. import alert as lib

    from ..backup import history

    spec = _spec(config)
    ev, problems = lib.handle(spec, unit, state_file=history.state_path(config))
    click.echo(ev["message"])
    lib.raise_problems(problems)
