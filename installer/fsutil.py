"""Files on a host, written so a crash leaves the old file or the new one, never half of one.

One writer for the filesystem: a temporary in the same directory with the
final mode and owner, fsync, rename, fsync of the directory. `root` (from
`--root`) is applied here and in the fact readers, nowhere else.
"""

from __future__ import annotations

import grp
import os
import pwd
from pathlib import Path

from .errors import StepFailed


def under(root, path):
    """Host path `path` as seen inside `root` (`--root DIR`), as a real Path."""
    return Path(root) / str(path).lstrip("/") if root else Path(path)


def _ids(owner, group):
    try:
        return pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid
    except KeyError as e:
        raise StepFailed(f"chown {owner}:{group}", f"no such user or group ({e.args[0]})") from None


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(root, path, content, mode, owner="root", group="root", chown=True):
    """Atomically make `path` hold `content` with `mode` (and owner when chown)."""
    target = under(root, path)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(target)
    tmp = target.parent / f".{target.name}.{os.urandom(4).hex()}.dbrs-new"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, mode)
        if chown:
            os.fchown(fd, *_ids(owner, group))
        view = memoryview(content)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
        os.close(fd)
        fd = None
        os.replace(tmp, target)
    except BaseException:
        if fd is not None:
            os.close(fd)
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(target.parent)


STALE_S = 3600


def sweep_stale(target, now=None):
    """Remove temporaries of `target` that a killed run left (older than an hour, so never a live one)."""
    import time

    now = time.time() if now is None else now
    for p in target.parent.glob(f".{target.name}.*.dbrs-new"):
        try:
            if now - p.lstat().st_mtime > STALE_S:
                p.unlink()
        except FileNotFoundError:
            pass


def set_attrs(root, path, mode, owner, group, chown):
    p = under(root, path)
    os.chmod(p, mode)
    if chown:
        os.chown(p, *_ids(owner, group))


def make_dir(root, path, mode, owner, group, chown):
    p = under(root, path)
    if p.is_symlink() or (p.exists() and not p.is_dir()):
        raise StepFailed(f"dir {path}", "exists and is not a directory; move it away")
    p.mkdir(parents=True, exist_ok=True)
    set_attrs(root, path, mode, owner, group, chown)


def make_link(root, path, target):
    p = under(root, path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.dbrs-new")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, p)
    fsync_dir(p.parent)
