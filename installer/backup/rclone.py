"""rclone, the transfer tool behind the off-site copies: its config, its argv, its errors.

rclone reads the target's credentials from a config file written for one
run (root 0600 in a 0700 folder under the spool, removed afterwards and
swept after a crash) and named with `--config`; credentials never go into
argv or the environment, and the child gets a scrubbed environment (no
RCLONE_* from ours, HOME pointing into the private folder).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import DbrsError, InputError
from ..render import render

SECRET_KEYS = {"access_key_id", "secret_access_key", "key_pem"}
NEEDS = {"s3": ("access_key_id", "secret_access_key"), "sftp": ("key_pem",), "path": ()}
# Retries are rclone's: whole operation 3x, each HTTP/SSH call 5x, idle connections time out.
COMMON = ("--retries", "3", "--low-level-retries", "5", "--contimeout", "15s", "--timeout", "2m",
          "--ask-password=false", "--stats", "0")
_LOG_PREFIX = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\s+((ERROR|NOTICE|INFO|DEBUG|CRITICAL)\s*:\s*)?")
# What an operator should do about the errors that mean "the target turned us away".
_HINTS = (
    (re.compile(r"read-only file system", re.I),
     "the target folder is not writable here: is the disk mounted, read-write?"),
    (re.compile(r"Forbidden|AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|status code: 40[13]"),
     "check the target's credentials in secrets.toml and its access policy"),
    (re.compile(r"unable to authenticate|no supported methods remain|permission denied", re.I),
     "check the key in secrets.toml and the account on the server"),
    (re.compile(r"knownhosts|host key mismatch|key is unknown", re.I),
     "the server's host key is not the one pinned in host_key; check it with ssh-keyscan before trusting it"),
    (re.compile(r"no space left|remaining disk space|quota|EntityTooLarge|InsufficientStorage", re.I),
     "the target is full: free space there or raise its quota"),
)
MAX_ERROR = 300


class RemoteError(DbrsError):
    """rclone failed against a target; the message names the target."""


def credentials(target, sec):
    """The target's credentials from secrets.toml; InputError naming the missing key."""
    creds = dict((getattr(sec, "offsite", None) or {}).get(target.name, {}))
    for key in NEEDS[target.type]:
        if not creds.get(key):
            raise InputError(f"secrets.toml: offsite.{target.name}.{key}", "is missing",
                             f"add it with `dbrs offsite credentials {target.name} ...`")
    return creds


def render_config(target, creds, known_hosts=None):
    return render("rclone/rclone.conf.j2", t=target, creds=creds, known_hosts=known_hosts or "")


def redacted_config(target):
    """The config as it may be shown: every credential is ***."""
    masked = {k: "***" for k in NEEDS[target.type]}
    return render_config(target, masked, "KNOWN_HOSTS").decode()


def root_of(target, cluster):
    """Where this cluster's backups live on the target, as an rclone path."""
    if target.type == "s3":
        parts = [target.bucket] + [p for p in target.prefix.strip("/").split("/") if p] + [cluster]
        return f"{target.name}:" + "/".join(parts)
    base = target.path.rstrip("/") or "."
    return f"{target.name}:{base}/{cluster}"


def one_line(stderr, target_name):
    """rclone's last error line, without its timestamp, bounded, naming the target."""
    lines = [_LOG_PREFIX.sub("", ln).strip() for ln in (stderr or "").splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower() or "failed" in ln.lower()] or lines or ["no output"]
    text = errors[-1]
    if len(text) > MAX_ERROR:
        text = text[:MAX_ERROR] + "…"
    hint = next((h for rx, h in _HINTS if rx.search(stderr or "")), None)
    return f"off-site {target_name}: {text}" + (f" ({hint})" if hint else "")


class Session:
    """One target's rclone config on disk for the length of a `with` block."""

    def __init__(self, target, sec, run_dir, binary=None):
        self.target = target
        self.binary = binary or shutil.which("rclone")
        if not self.binary:
            raise DbrsError("rclone is not installed; install it with `apt-get install rclone`")
        self.creds = credentials(target, sec)
        self.run_dir = Path(run_dir)
        self.dir = None

    def __enter__(self):
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix=f"rclone-{os.getpid()}-", dir=self.run_dir))
        known = None
        if self.target.type == "sftp":
            known = self.dir / "known_hosts"
            host = self.target.host if self.target.port == 22 else f"[{self.target.host}]:{self.target.port}"
            _write_private(known, f"{host} {self.target.host_key}\n".encode())
        self.conf = self.dir / "rclone.conf"
        _write_private(self.conf, render_config(self.target, self.creds, known))
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)
        return False

    def argv(self, *args, bwlimit=False):
        out = [self.binary, "--config", str(self.conf), *COMMON]
        if bwlimit and self.target.bwlimit != "off":
            out += ["--bwlimit", self.target.bwlimit]
        return out + list(args)

    def env(self):
        return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(self.dir), "LANG": "C.UTF-8",
                "TMPDIR": str(self.dir)}

    def run(self, *args, bwlimit=False, timeout=None, ok_codes=(0,)):
        try:
            r = subprocess.run(self.argv(*args, bwlimit=bwlimit), capture_output=True, env=self.env(),
                               timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise RemoteError(f"off-site {self.target.name}: rclone {args[0]} took longer than {timeout} s") from None
        if r.returncode not in ok_codes:
            raise RemoteError(one_line(r.stderr.decode(errors="replace"), self.target.name))
        return r

    def popen(self, *args):
        return subprocess.Popen(self.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env(),
                                stdin=subprocess.DEVNULL)

    # -- the few operations dbrs uses
    def copyto(self, src, dst):
        self.run("copyto", str(src), str(dst), bwlimit=True)

    def lsjson(self, path):
        """Every file under `path` ([] when the folder does not exist yet)."""
        r = self.run("lsjson", "-R", "--files-only", "--no-mimetype", path, ok_codes=(0, 3))
        if r.returncode == 3:   # directory not found
            return []
        return json.loads(r.stdout or b"[]")

    def copy_manifests(self, path, into):
        self.run("copy", "--include", "*.manifest.json", path, str(into), ok_codes=(0, 3))

    def deletefile(self, path):
        self.run("deletefile", path)


def _write_private(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def sweep(run_dir):
    """Remove config folders (they hold credentials) whose dbrs process is gone, e.g. after SIGKILL."""
    try:
        names = os.listdir(run_dir)
    except FileNotFoundError:
        return
    for n in names:
        parts = n.split("-")
        if len(parts) < 3 or parts[0] != "rclone" or not parts[1].isdigit():
            continue
        if not os.path.exists(f"/proc/{parts[1]}"):
            shutil.rmtree(os.path.join(run_dir, n), ignore_errors=True)
