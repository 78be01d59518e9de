"""Off-site copies brought back for a restore: each file checked against its manifest before it gets its final
name; an intact local copy is linked instead of downloaded."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil

from . import catalog, offsite, offsite_targets, pitr, rclone, remotes
from .manifest import Manifest
from ..errors import DbrsError


def _local_intact(spec, name):
    """The local good backup NAME if its stored bytes still match its manifest, else None."""
    try:
        e = catalog.find(spec.backup.dir, name)
        got, n = _file_sha256(e.path)
    except (DbrsError, OSError):
        return None
    return e if (n, got) == (e.bytes, e.manifest.sha256) else None


def _file_sha256(path):
    sha, n = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(offsite.READ_BLOCK), b""):
            sha.update(block)
            n += len(block)
    return sha.hexdigest(), n


def plan_fetch(spec, files, names=None, to=None, ident=None):
    """The remote files a restore needs: NAMES, or the full backup and slices for `--to` (TIME, INC). Pure."""
    good = [f for f in remotes.own_files(files, ident or catalog.Identity(spec.cluster.name)) if f.good]
    if names:
        by = {f.name: f for f in good}
        missing = [n for n in names if n not in by]
        if missing:
            raise DbrsError(f"{', '.join(missing)}: not on the off-site target (see `dbrs offsite list`)")
        return [by[n] for n in names]
    t, inc = to if isinstance(to, tuple) else (to, None)
    fulls = sorted((f.entry for f in good if f.kind == catalog.FULL), key=lambda e: e.oplog_start or 0)
    slices = sorted((f.entry for f in good if f.kind == catalog.OPLOG), key=lambda e: e.last or 0)
    plan = pitr.plan_pitr(fulls, slices, t, inc)
    wanted = [plan.base.name] + [s.name for s in plan.slices]
    by = {f.name: f for f in good}
    return [by[n] for n in wanted]


def fetch(spec, sec, into_dir, *, names=None, to=None, target=None, prefer_local=True, spool=None, progress=None):
    """Put the files a restore needs into `into_dir` (the backup-folder layout), verified.

    A file whose local copy is intact is linked or copied from the local
    backup folder; any other is downloaded and its sha256 and size checked
    against its manifest before it gets its final name. Returns
    [(name, source)] where source is "local" or the target's name; point
    the restore at `into_dir` as its backup folder.
    """
    spool = spool or offsite.spool_of(spec)
    say = progress or (lambda line: None)
    t = offsite_targets.target_named(spec, target)
    try:
        catalog.ensure_dirs(into_dir)
        _sweep_fetching(into_dir)
        with rclone.Session(t, sec, offsite.spool_dirs(spool)["run"]) as s:
            return _fetch(spec, t, s, into_dir, names, to, prefer_local, say)
    except OSError as e:
        raise DbrsError(f"fetch into {into_dir} failed: {e.strerror or e} ({getattr(e, 'filename', '') or ''}); "
                        "free space there or pass --into DIR") from None


def restore_spec(spec, into_dir):
    """The spec with `into_dir` as its backup folder: what `dbrs restore --from-offsite` hands the restore code."""
    from dataclasses import replace

    return replace(spec, backup=replace(spec.backup, dir=str(into_dir)))


def _sweep_fetching(into_dir):
    """Downloads a killed fetch left (hidden `.NAME.fetching`: no backup scan or clean-up takes them)."""
    for kind in catalog.SUFFIX:
        d = catalog.kind_dir(into_dir, kind)
        for n in os.listdir(d):
            if n.startswith(".") and n.endswith(offsite.FETCHING):
                os.unlink(d / n)


def _fetch(spec, t, s, into_dir, names, to, prefer_local, say):
    """fetch() with the rclone session open."""
    sources = []
    files = remotes.listing(spec, t, s)
    for f in plan_fetch(spec, files, names, to, catalog.identity(spec.backup.dir, spec.cluster.name)):
        dst = catalog.kind_dir(into_dir, f.kind) / f.name
        local = _local_intact(spec, f.name) if prefer_local else None
        if local is not None:
            _link_or_copy(local.path, dst)
            sources.append((f.name, "local"))
            say(f"local    {f.name} (intact in {spec.backup.dir})")
        else:
            part = dst.with_name(f".{f.name}{offsite.FETCHING}")
            s.run("copyto", offsite.remote_path(spec, t, f.kind, f.name), str(part))
            got, n = _file_sha256(part)
            if n != f.typed.bytes or got != f.typed.sha256:
                part.unlink()
                raise DbrsError(f"{f.name} on off-site {t.name}: sha256/size do not match its manifest; "
                                "this copy cannot be trusted (try another target or `dbrs offsite verify`)")
            os.chmod(part, 0o600)
            os.replace(part, dst)
            sources.append((f.name, t.name))
            say(f"off-site {f.name} (from {t.name}, {offsite.human(n)}, sha256 matches)")
        catalog.write_manifest(dst, Manifest.from_dict(f.manifest))
    return sources


def _link_or_copy(src, dst):
    if os.path.abspath(src) == os.path.abspath(dst):
        return
    if os.path.exists(dst):
        os.unlink(dst)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@contextlib.contextmanager
def fetched(spec, sec, name, when, target, say=None):
    """The spec pointed at a scratch folder holding the verified files the restore needs, fetched off-site
    (or linked from intact local copies); the folder sits in the backup folder, so links work, and goes after."""
    import tempfile

    catalog.ensure_dirs(spec.backup.dir)
    into = tempfile.mkdtemp(prefix=".from-offsite-", dir=spec.backup.dir)
    try:
        fetch(spec, sec, into, names=[name] if name else None, to=when, target=target, progress=say)
        yield restore_spec(spec, into)
    finally:
        shutil.rmtree(into, ignore_errors=True)
