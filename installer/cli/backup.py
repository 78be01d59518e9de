"""`dbrs backup | backup list | backup verify | oplog | prune | restore | alert`: thin wrappers over the library."""

import contextlib
import re
import sys
import time

import click

from .common import config_option, emit_json, handle_errors
from .timearg import parse_time


def _spec(config):
    from .. import spec as specmod

    return specmod.load(config)


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
    from .. import backup as lib

    spec = _spec(config)
    progress = lib.Progress()
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
    from .. import backup as lib, catalog, restore, verification

    spec = _spec(config)
    ident = restore.identity(spec, state_file=catalog.state_path(config))
    fulls, bad_f = catalog.scan(spec.backup.dir, catalog.FULL, ident)
    slices, bad_s = catalog.scan(spec.backup.dir, catalog.OPLOG, ident)
    quarantined = catalog.quarantined(spec.backup.dir)
    window = restore.pitr_window(fulls, slices)
    problems = restore.chain_problems(fulls, slices)
    foreign = catalog.foreign_lines(spec.backup.dir, ident)
    if as_json:
        emit_json({
            "full": [dict(e.manifest, verification=verification.last(e.path)) for e in fulls],
            "oplog": [dict(e.manifest, verification=verification.last(e.path)) for e in slices],
            "pitr_window": None if window is None else {"from": catalog.ts_exact(window[0]),
                                                        "to": catalog.ts_exact(window[1])},
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
        source = f"{m['member']}@{m.get('host')}" if m.get("member") else "source unknown"
        oplog_to = f"oplog to {catalog.ts_iso(e.oplog_end)}" if e.oplog_end is not None else "no oplog times"
        click.echo(f"{e.name}  {m['finished']}  {lib.human(m['bytes']):>10}  {source}  "
                   f"{oplog_to}  {'encrypted' if m['encrypted'] else 'plain'}  "
                   f"{_verified(verification.last(e.path))}" + ("  (manifest rebuilt)" if m.get("rebuilt") else ""))
    if slices:
        gaps = sum(1 for s in slices if s.manifest.get("gap"))
        unverified = sum(1 for s in slices if not (verification.last(s.path) or {}).get("ok"))
        click.echo(f"{len(slices)} oplog slices, {catalog.ts_iso(slices[0].first)} .. {catalog.ts_iso(slices[-1].last)}"
                   + (f", {gaps} with a gap" if gaps else "")
                   + (f", {unverified} not verified yet" if unverified else ", all verified")
                   + f"; newest {_verified(verification.last(slices[-1].path))}")
    if window:
        click.echo(f"restore --to works from {catalog.ts_exact(window[0])} to {catalog.ts_exact(window[1])}")
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

    from .. import backup as lib, catalog, restore, secrets, verification
    from ..errors import DbrsError, InputError

    if name and all_:
        raise InputError("--all", "and NAME both pick backups", "use one of them")
    if rebuild and not name:
        raise InputError("--rebuild-manifest", "needs the NAME of a quarantined backup", "see `dbrs backup list`")
    spec = _spec(config)
    sec = secrets.load(config)
    key = lib.backup_key(sec)
    state_file = catalog.state_path(config)
    if rebuild:
        from .. import rebuild as rlib

        m = rlib.rebuild(spec.backup.dir, name, key, spec.cluster.name)
        click.echo(f"rebuilt the manifest of {m['name']}: {m['bytes']} bytes, sha256 {m['sha256'][:16]}…; "
                   "marked rebuilt (no oplog times: restore it by NAME, not with --to)")
        return
    ident = restore.identity(spec, state_file=catalog.state_path(config))
    results = verification.check_folder(spec.backup.dir, key, name=name, every=all_, ident=ident)
    if not all_ and not name and not any(r["kind"] == catalog.FULL and r["ok"] for r in results) and \
            not any(not r["ok"] for r in results):
        raise DbrsError(f"no full backup in {spec.backup.dir} to verify (run `dbrs backup`)")
    failed = sum(1 for r in results if not r["ok"])
    chain = []
    if all_:
        chain = restore.chain_problems(catalog.scan(spec.backup.dir, catalog.FULL, ident)[0],
                                       catalog.scan(spec.backup.dir, catalog.OPLOG, ident)[0])
    if drill and not failed:
        fulls = catalog.scan(spec.backup.dir, catalog.FULL)[0]
        target = [catalog.find(spec.backup.dir, name)] if name else fulls[-1:]
        for e in target:
            if e.kind == catalog.FULL:
                status, detail = restore.drill(e, key, sec.password("restore"))
                results.append({"name": e.name, "ok": True, "drill": status, "detail": detail})
    catalog.update_state(lambda s: s.__setitem__("last_verify", {
        "time": catalog.iso(time.time()), "checked": len(results), "failed": failed,
        "failures": [r["name"] for r in results if not r["ok"]]}), state_file)
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
    from .. import oplog as lib

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
    from .. import backup as lib, catalog, offsite, prune as lib_prune, secrets
    from ..errors import DbrsError

    spec = _spec(config)
    b = spec.backup
    # another cluster's files are never counted or deleted; backups waiting for their off-site copy stay
    ident = catalog.identity(b.dir, spec.cluster.name, state_file=catalog.state_path(config))
    hold = offsite.queued_names(spec) if spec.offsite else ()
    if catalog.busy(b.dir, catalog.FULL):
        click.echo("a backup is running: prune waits for it to finish (at most 5 min)", err=True)
    out = lib_prune.run(b.dir, b.retention_days, b.keep_min, lambda: lib.backup_key(secrets.load(config)),
                        dry_run=dry_run, ident=ident, hold=hold)
    d = out.decision
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
            remote = offsite.prune(spec, secrets.load(config), dry_run=dry_run,
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
    from .. import catalog

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
    from .. import backup as lib, restore as rlib, secrets
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
    if to:
        # mongorestore only inserts: without dropping, today's documents would stay and the
        # replayed oplog would land on top of them, giving neither today nor TIME.
        drop = True
    if name and len(name) > 255:
        raise InputError("NAME", f"{name[:_SHOW]!r}… is {len(name)} characters, no backup name is",
                         "see `dbrs backup list` for the names")
    if target and not from_offsite:
        raise InputError("--target", "only goes with --from-offsite", "add --from-offsite")
    rlib.check_ns_include(ns_include)
    when = parse_time(to) if to else None
    spec = _spec(config)
    sec = secrets.load(config)
    key = lib.backup_key(sec)
    if from_offsite:
        with _fetched(spec, sec, name, when, target) as fetched:
            _restore(fetched, sec, key, name, to, when, ns_include, drop, dry_run, yes, force_other_cluster,
                     base_name, cluster_id, config, " --from-offsite" + (f" --target {target}" if target else ""))
    else:
        _restore(spec, sec, key, name, to, when, ns_include, drop, dry_run, yes, force_other_cluster, base_name,
                 cluster_id, config, "")


@contextlib.contextmanager
def _fetched(spec, sec, name, when, target):
    """The spec pointed at a scratch folder holding the verified files the restore needs, fetched off-site
    (or linked from intact local copies); the folder sits in the backup folder, so links work, and goes after."""
    import shutil
    import tempfile

    from .. import catalog, offsite

    catalog.ensure_dirs(spec.backup.dir)
    into = tempfile.mkdtemp(prefix=".from-offsite-", dir=spec.backup.dir)
    try:
        offsite.fetch(spec, sec, into, names=[name] if name else None, to=when, target=target, progress=click.echo)
        yield offsite.restore_spec(spec, into)
    finally:
        shutil.rmtree(into, ignore_errors=True)


def _restore(spec, sec, key, name, to, when, ns_include, drop, dry_run, yes, force_other_cluster, base_name,
             cluster_id, config, where):
    from .. import catalog, restore as rlib, tools
    from ..errors import InputError

    ident = rlib.identity(spec, cluster_id, state_file=catalog.state_path(config))
    if to:
        fulls, slices = rlib.entries(spec, ident)
        plan = rlib.plan_verified(fulls, slices, when[0], key, inc=when[1], base_name=base_name)
        redo = f"`dbrs restore --to '{to}' --base {plan.base.name}{where} --yes`"
    else:
        try:
            entry = catalog.find(spec.backup.dir, name, ident)
        except InputError as not_ours:
            try:    # another cluster's backup named on purpose: refuse_other_cluster below says what to pass
                entry = catalog.find(spec.backup.dir, name)
            except InputError:
                raise not_ours from None
        if entry.kind != catalog.FULL:
            raise InputError("NAME", f"{entry.name} is an oplog slice", "name a full backup, or use --to TIME")
        rlib.check_ns_matches(entry, ns_include)
        plan = rlib.plan_name(entry)
        redo = f"`dbrs restore {entry.name}{' --drop' if drop else ''}{where} --yes`"
    rlib.refuse_other_cluster(spec, plan, force_other_cluster, ident)
    early = None if dry_run else rlib.Preflight(spec, plan, sec.password(rlib.USER))
    with rlib.prepare(plan, key) as prepared:
        click.echo(f"proved {1 + len(plan.slices)} file(s) against their manifests (every chunk, every oplog "
                   "entry); the base is proven again chunk by chunk as it is fed")
        for line in plan.lines():
            click.echo(line)
        excl = ", ".join(rlib.SYSTEM_DBS)
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
        mongorestore = early.result()
        with tools.signals_as_errors("the restore", "mongorestore was killed"):
            report = rlib.execute(spec, prepared, sec.password(rlib.USER), key, drop=drop, ns_include=ns_include,
                                  say=click.echo, redo=redo, mongorestore=mongorestore)
    click.echo(f"restore finished in {report.seconds:.1f} s")


@click.command("alert", hidden=True)
@click.argument("unit")
@config_option
@handle_errors
def alert(unit, config):
    """Record and report the failure of UNIT (run by dbrs-alert@UNIT.service)."""
    from .. import alert as lib

    from .. import catalog

    spec = _spec(config)
    ev, problems = lib.handle(spec, unit, state_file=catalog.state_path(config))
    click.echo(ev["message"])
    lib.raise_problems(problems)
