"""Tier-3 test bed: real systemd (PID 1) hosts booted with systemd-nspawn on a private bridge.

Why this shape (see DESIGN.md, "Facts measured on these machines", and shared/notes/nsphosts.sh):

- One debootstrapped Debian 12 rootfs, built once per recipe and cached; every host boots an overlay
  copy of it, so a boot costs ≈0.3 s and a host's writes survive its own reboot (upper dir kept).
- Each host gets its own network namespace; all of them hang on one bridge inside a dedicated "switch"
  namespace that has no uplink, so traffic never leaves the namespaces this module creates.
- The machine's PID 1 is not systemd, so each systemd-nspawn runs in a cgroup subtree of its own
  (``SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1``) and is not registered with machined.
- Every name this module creates (netns, cgroup dir, work dir) starts with ``dbrstb-<owner pid>-<n>``,
  so two runs never collide and leftovers of a killed run can be found and removed by name alone
  (``cleanup_stale``).

Public API: ``ensure_rootfs``, ``Testbed``, ``Host``, ``cleanup_stale``, ``leftovers``, ``TestbedError``.
"""

from __future__ import annotations

import atexit
import ctypes
import fcntl
import hashlib
import importlib
import importlib.util
import inspect
import io
import ipaddress
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import weakref
from pathlib import Path
from typing import Mapping, Sequence, Union

SUITE = "bookworm"
VARIANT = "minbase"
# Documented default only; the mirror actually used is read from this machine's apt sources.
# One image for every user of the bed (test_testbed, test_scenarios, tests/packaging): what a dbrs member
# host needs is part of the base recipe, so a run debootstraps once and no user's image evicts another's.
PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "iproute2", "python3", "python3-pip", "ca-certificates", "procps",
    "netcat-openbsd", "curl",
    # a member host: dbrs-install creates the mongodb user with adduser, runs nft, writes a logrotate
    # snippet, the product's venv needs python3-venv, and Mongo Express runs on the distribution's node.
    "adduser", "logrotate", "nftables", "python3-venv", "nodejs",
)  # testinfra needs only python3 (encoding probe), coreutils, systemctl and ss (iproute2).
# Units that only cost boot time or fail in a container without a network uplink.
MASKED_UNITS = (
    "systemd-networkd-wait-online.service", "apt-daily.timer", "apt-daily-upgrade.timer",
    "e2scrub_all.timer", "e2scrub_reap.service", "fstrim.timer", "dpkg-db-backup.timer",
    "systemd-timesyncd.service", "getty@tty1.service", "console-getty.service",
)
CACHE_DIR = Path(os.environ.get("DBRS_TESTBED_CACHE", "/var/cache/dbrs-testbed"))
WORK_ROOT = Path(os.environ.get("DBRS_TESTBED_WORK", "/var/tmp/dbrs-testbed"))
PREFIX = "dbrstb"
HOST_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "TERM": "dumb",
}
REQUIRED_TOOLS = ("systemd-nspawn", "debootstrap", "nsenter", "ip", "mount", "umount")
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


def wait_until(pred, timeout=30, step=0.3, what="condition"):
    """Poll `pred` until it returns something truthy (which is returned); AssertionError naming `what` after
    `timeout` seconds. Host scenarios wait on systemd, journals and sockets with it."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


class TestbedError(RuntimeError):
    """The test bed itself failed (build, boot, teardown), as opposed to the product under test."""

    __test__ = False  # not a pytest test class


class HostCommandError(subprocess.CalledProcessError):
    """A command inside a host exited non-zero; the message carries host name and stderr."""

    def __init__(self, host: str, returncode: int, cmd, output, stderr):
        super().__init__(returncode, cmd, output, stderr)
        self.host = host

    def __str__(self) -> str:
        err = self.stderr if isinstance(self.stderr, str) else (self.stderr or b"").decode(errors="replace")
        return f"[{self.host}] {self.cmd!r} exited {self.returncode}: {err.strip()[-2000:]}"


# ----------------------------------------------------------------------------------------- rootfs

def missing_tools() -> list[str]:
    """The host tools the bed needs and this machine lacks (empty list = all there)."""
    return [t for t in REQUIRED_TOOLS if shutil.which(t) is None]


def apt_mirror(suite: str = SUITE, apt_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this machine's apt uses for ``suite`` (so builds go where apt is allowed to).

    ``DBRS_TESTBED_MIRROR`` overrides; when no source lists the suite (e.g. on an Ubuntu machine) it is a
    TestbedError naming that variable, so the host tiers skip with the reason instead of guessing a host.
    """
    if os.environ.get("DBRS_TESTBED_MIRROR"):
        return os.environ["DBRS_TESTBED_MIRROR"]
    entries: list[tuple[list[str], list[str], list[str]]] = []  # (types, uris, suites)
    apt = Path(apt_dir)
    lists = [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]
    for f in lists:
        try:
            text = f.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            line = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()
            if len(line) >= 3:
                entries.append(([line[0]], [line[1]], [line[2]]))
    for f in sorted((apt / "sources.list.d").glob("*.sources")):
        try:
            text = f.read_text(errors="replace")
        except OSError:
            continue
        for stanza in re.split(r"\n\s*\n", text):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[0].isspace():
                    continue
                k, v = line.split(":", 1)
                fields[k.strip().lower()] = v.strip()
            if fields.get("enabled", "yes").lower() == "no":
                continue
            entries.append((fields.get("types", "").split(), fields.get("uris", "").split(),
                            fields.get("suites", "").split()))
    for types, uris, suites in entries:
        if "deb" in types and suite in suites and uris:
            return uris[0].rstrip("/")
    raise TestbedError(f"no apt source of this machine lists Debian {suite}; set DBRS_TESTBED_MIRROR to a "
                       "Debian mirror URL")


def _post_steps(root: Path) -> None:
    """Make the bare debootstrap tree a bootable, per-host-unique nspawn image."""
    # minbase has no /etc/hosts: without it "localhost" does not resolve inside the hosts.
    (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n")
    # Empty machine-id: each host gets its own on first boot; hostname comes from nspawn -M.
    (root / "etc/machine-id").write_text("")
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    (root / "etc/hostname").unlink(missing_ok=True)
    for unit in MASKED_UNITS:
        link = root / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    for d in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for p in (root / d).glob("*"):
            if p.is_file():
                p.unlink()


def recipe(extra_packages: Sequence[str] = ()) -> dict:
    """Everything that determines the rootfs; its hash names the cache dir."""
    return {
        "suite": SUITE,
        "variant": VARIANT,
        "packages": sorted(set(PACKAGES) | set(extra_packages)),
        "mirror": apt_mirror(),
        "post_steps": inspect.getsource(_post_steps),
        "masked": list(MASKED_UNITS),
    }


_RECIPE_DIR = re.compile(r"^[0-9a-f]{16}$")


def recipe_hash(rec: Mapping) -> str:
    return hashlib.sha256(json.dumps(rec, sort_keys=True).encode()).hexdigest()[:16]


def ensure_rootfs(extra_packages: Sequence[str] = (), log=None) -> Path:
    """Return the cached rootfs for the current recipe, building it (≈45-90 s) if needed.

    Built into a temp dir and renamed into place, so an interrupted build never leaves a tree that
    looks finished; a lock file keeps concurrent pytest processes from building at once.
    """
    rec = recipe(extra_packages)
    base = CACHE_DIR / recipe_hash(rec)
    final = base / "rootfs"
    if (final / ".dbrs-testbed-ok").exists():
        return final
    base.mkdir(parents=True, exist_ok=True)
    with open(base / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / ".dbrs-testbed-ok").exists():
            return final  # another process built it while we waited
        for old in base.glob("rootfs.tmp-*"):
            shutil.rmtree(old, ignore_errors=True)
        if final.exists():  # renamed but unmarked cannot happen; be safe anyway
            shutil.rmtree(final)
        tmp = base / f"rootfs.tmp-{os.getpid()}"
        (base / "recipe.json").write_text(json.dumps(rec, indent=1, sort_keys=True))
        logpath = base / "build.log"
        argv = ["debootstrap", f"--variant={VARIANT}", "--include=" + ",".join(rec["packages"]),
                SUITE, str(tmp), rec["mirror"]]
        if log:
            log(f"dbrs-testbed: building rootfs {final} (debootstrap, about a minute)")
        with open(logpath, "wb") as out:
            rc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}).returncode
        if rc != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            tail = logpath.read_text(errors="replace").splitlines()[-5:]
            raise TestbedError(f"debootstrap exited {rc} (log {logpath}): " + " | ".join(tail))
        _post_steps(tmp)
        (tmp / ".dbrs-testbed-ok").write_text(json.dumps(rec, sort_keys=True))
        os.rename(tmp, final)
        os.sync()
    _prune_cache(keep=base)
    return final


def _prune_cache(keep: Path) -> None:
    """Drop rootfs trees of older recipes (≈330 MB each) that no overlay uses and no build holds.

    Only recipe dirs (named by ``recipe_hash``): the other caches that share CACHE_DIR (the wheelhouse,
    the packaging tier's apt downloads) are not images and stay.
    """
    with open("/proc/mounts") as f:
        mounts = f.read()
    for d in CACHE_DIR.iterdir():
        if d == keep or not d.is_dir() or not _RECIPE_DIR.match(d.name) or str(d) + "/" in mounts:
            continue
        try:
            with open(d / "lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(d)
        except OSError:
            pass  # in use by another process: leave it


# ------------------------------------------------------------------------------- process helpers

def _stat(pid: int) -> tuple[str, str, int, int] | None:
    """(comm, state, ppid, starttime) of a pid, or None when gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1: raw.rindex(")")]
    rest = raw[raw.rindex(")") + 2:].split()
    return comm, rest[0], int(rest[1]), int(rest[19])


def _alive(pid: int) -> bool:
    """Running and not a zombie: powered-off nspawn processes linger as zombies here."""
    st = _stat(pid)
    return st is not None and st[1] != "Z"


def _children(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = _stat(int(d))
            if st and st[2] == pid:
                out.append(int(d))
    return out


def _cgroup_roots() -> list[Path]:
    """Hierarchies an nspawn must be placed in: the v2 one and systemd's named v1 one if present."""
    base = Path("/sys/fs/cgroup")
    roots = [base / h for h in ("unified", "systemd") if (base / h / "cgroup.procs").exists()]
    return roots or [base]


def _cgroup_pids(cg: Path) -> set[int]:
    pids: set[int] = set()
    for d, _dirs, files in os.walk(cg):
        if "cgroup.procs" in files:
            try:
                pids.update(int(x) for x in Path(d, "cgroup.procs").read_text().split())
            except OSError:
                pass
    return pids


def _rmdir_tree(cg: Path) -> None:
    for d, _dirs, _files in sorted(os.walk(cg), key=lambda t: -len(t[0])):
        try:
            os.rmdir(d)
        except FileNotFoundError:
            pass


def _mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path``, deepest first (from /proc/mounts)."""
    p = str(path).rstrip("/")
    out = []
    with open("/proc/mounts") as f:
        for line in f:
            mp = line.split()[1].replace("\\040", " ")
            if mp == p or mp.startswith(p + "/"):
                out.append(mp)
    return sorted(set(out), key=len, reverse=True)


def _netns_list() -> list[str]:
    try:
        return sorted(os.listdir("/run/netns"))
    except FileNotFoundError:
        return []


def _sh(argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise TestbedError(f"{' '.join(argv)} exited {p.returncode}: {p.stderr.strip()}")
    return p


_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _nspawn_preexec(cgroups: Sequence[Path]) -> None:
    """In the child before exec: own cgroup subtree; orderly shutdown if the test runner dies."""
    for cg in cgroups:
        with open(cg / "cgroup.procs", "w") as f:
            f.write(str(os.getpid()))
    # SIGTERM makes nspawn shut its container down cleanly (--kill-signal, RTMIN+3 with --boot).
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


# ------------------------------------------------------------------------------------------ hosts

def _nsenter_backend():
    """tests/infra/nsenter_backend.py, imported whether or not the repo root is on sys.path."""
    try:
        return importlib.import_module("tests.infra.nsenter_backend")
    except ImportError:
        name = "dbrs_nsenter_backend"
        if name not in sys.modules:
            path = Path(__file__).resolve().parents[1] / "infra" / "nsenter_backend.py"
            spec = importlib.util.spec_from_file_location(name, path)
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            spec.loader.exec_module(mod)
        return sys.modules[name]


class Host:
    """One booted systemd host of a Testbed. Commands run with ``nsenter -t LEADER -a``."""

    def __init__(self, bed: "Testbed", name: str, iface: ipaddress.IPv4Interface, index: int):
        self.bed = bed
        self.name = name
        self.ip = str(iface.ip)
        self.interface = iface
        self.index = index
        self.netns = f"{bed.id}-{name}"
        self.dir = bed.dir / name
        self.root = self.dir / "root"
        self.console_log = self.dir / "console.log"
        self.cgroups = [r / f"{bed.id}-{name}" for r in _cgroup_roots()]
        self._proc: subprocess.Popen | None = None
        self._leader: int | None = None
        self.boots = 0

    def __repr__(self) -> str:
        return f"<Host {self.name} {self.ip} {'running' if self.running else 'stopped'}>"

    # -- lifecycle
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _mount(self) -> None:
        if _mounts_under(self.root):
            return
        for d in ("upper", "work", "root"):
            (self.dir / d).mkdir(parents=True, exist_ok=True)
        _sh(["mount", "-t", "overlay", "overlay", "-o",
             f"lowerdir={self.bed.rootfs},upperdir={self.dir / 'upper'},workdir={self.dir / 'work'}",
             str(self.root)])

    def start(self, wait: bool = True, timeout: float | None = None) -> "Host":
        """Boot the host (again); the overlay upper dir is kept, so state survives a reboot.

        Call it from a thread that lives as long as the host: nspawn gets SIGTERM (orderly shutdown)
        when the thread that started it dies, so a killed test run does not leave hosts running.
        """
        if self.running:
            return self
        self._mount()
        for cg in self.cgroups:
            cg.mkdir(exist_ok=True)
        argv = ["systemd-nspawn", "-D", str(self.root), "-M", self.name, "--boot", "--keep-unit",
                "--register=no", f"--network-namespace-path=/run/netns/{self.netns}",
                "--capability=CAP_NET_ADMIN", "--console=read-only", "--link-journal=no",
                *self.bed.nspawn_args]
        with open(self.console_log, "ab") as log:
            log.write(f"\n--- boot {self.boots + 1} at {time.time():.3f}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"},
                start_new_session=True, preexec_fn=lambda: _nspawn_preexec(self.cgroups))
        (self.dir / "nspawn.pid").write_text(str(self._proc.pid))
        self._leader = None
        self.boots += 1
        if wait:
            self.wait_running(timeout)
        return self

    def _find_leader(self) -> int | None:
        if self._proc is None:
            return None
        if self._leader is not None:
            st = _stat(self._leader)
            if st and st[1] != "Z" and st[2] == self._proc.pid:
                return self._leader
        for pid in _children(self._proc.pid):
            st = _stat(pid)
            if st and st[0] == "systemd" and st[1] != "Z":
                self._leader = pid
                (self.dir / "leader").write_text(str(pid))
                return pid
        return None

    @property
    def leader(self) -> int:
        """PID (in our namespace) of the host's systemd; changes on every boot."""
        pid = self._find_leader()
        if pid is None:
            raise TestbedError(f"host {self.name} is not running")
        return pid

    def state(self) -> str:
        """``systemctl is-system-running`` output, or "" while systemd does not answer yet."""
        pid = self._find_leader()
        if pid is None:
            return ""
        p = subprocess.run(["nsenter", "-t", str(pid), "-a", "systemctl", "is-system-running"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, env=HOST_ENV)
        return p.stdout.strip()

    def wait_running(self, timeout: float | None = None) -> str:
        """Wait until systemd says running or degraded; return which. Raise with diagnostics if not."""
        deadline = time.monotonic() + (timeout or self.bed.boot_timeout)
        st = ""
        while time.monotonic() < deadline:
            if not self.running:
                raise TestbedError(f"host {self.name}: systemd-nspawn exited "
                                   f"({self._proc and self._proc.returncode}); console: {self._console_tail()}")
            st = self.state()
            if st in ("running", "degraded"):
                return st
            time.sleep(0.03)
        raise TestbedError(f"host {self.name} not up after {timeout or self.bed.boot_timeout}s "
                           f"(state {st!r}); console: {self._console_tail()}")

    def _console_tail(self, n: int = 15) -> str:
        try:
            return " | ".join(self.console_log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no console log)"

    def _signal_poweroff(self) -> bool:
        pid = self._find_leader()
        if pid is None:
            return False
        try:
            os.kill(pid, signal.SIGRTMIN + 4)  # systemd: poweroff
        except ProcessLookupError:
            return False
        return True

    def _wait_stopped(self, timeout: float) -> bool:
        if self._proc is None:
            return True
        try:
            # nspawn exits with the container's status: 0 only after systemd powered off by itself.
            clean = self._proc.wait(timeout) == 0
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            clean = False
        # Anything still in the host's cgroups (the payload if nspawn was killed) goes too.
        for _ in range(100):
            pids = set().union(*(_cgroup_pids(cg) for cg in self.cgroups if cg.exists()))
            pids = {p for p in pids if _alive(p)}
            if not pids:
                break
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)
        self._proc = None
        self._leader = None
        return clean

    def poweroff(self, timeout: float = 30) -> bool:
        """Orderly poweroff (SIGRTMIN+4 to systemd), killing after ``timeout``. True if systemd shut down
        cleanly (nspawn exited 0), False if it had to be killed."""
        if not self.running:
            self._proc = None
            return True
        self._signal_poweroff()
        return self._wait_stopped(timeout)

    def reboot(self, timeout: float | None = None) -> "Host":
        """Poweroff + start: a new boot (new PID 1, new journal boot id) on the same overlay."""
        self.poweroff()
        return self.start(timeout=timeout)

    # -- commands and files
    def _argv(self, argv: Sequence[str]) -> list[str]:
        if self.running:
            return ["nsenter", "-t", str(self.leader), "-a", "--", *argv]
        # A stopped host's files are still reachable: chroot resolves its symlinks inside its root.
        self._mount()
        return ["chroot", str(self.root), *argv]

    def run(self, cmd: Union[str, Sequence[str]], check: bool = True, input: Union[str, bytes, None] = None,
            timeout: float = 120, env: Mapping[str, str] | None = None,
            text: bool = True) -> subprocess.CompletedProcess:
        """Run ``cmd`` inside the host (a string goes through ``sh -c``); like ``subprocess.run``.

        stdout/stderr are str when ``text`` (default), bytes otherwise; ``check`` raises
        HostCommandError carrying the host's name and stderr.
        """
        argv = ["sh", "-c", cmd] if isinstance(cmd, str) else [str(a) for a in cmd]
        data = input.encode() if isinstance(input, str) else input
        p = subprocess.run(self._argv(argv), input=data if data is not None else b"",
                           capture_output=True, timeout=timeout, env={**HOST_ENV, **(env or {})})
        out, err = p.stdout, p.stderr
        if text:
            out, err = out.decode(errors="replace"), err.decode(errors="replace")
        if check and p.returncode != 0:
            raise HostCommandError(self.name, p.returncode, cmd, out, err)
        return subprocess.CompletedProcess(cmd, p.returncode, out, err)

    def write_file(self, path: str, data: Union[str, bytes], mode: int = 0o644) -> None:
        """Create/replace ``path`` inside the host (parents created), owned by root."""
        self.run(['sh', '-c', 'mkdir -p "$(dirname "$1")" && cat > "$1.tbtmp" && chmod "$2" "$1.tbtmp" '
                  '&& mv -f "$1.tbtmp" "$1"', "sh", path, f"{mode:o}"], input=data)

    def copy_in(self, src: Union[str, Path], dst: str) -> None:
        """Copy a local file or directory tree to ``dst`` inside the host, keeping modes."""
        src = Path(src)
        if src.is_dir():
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tar:
                tar.add(src, arcname=".", filter=lambda ti: (setattr(ti, "uid", 0), setattr(ti, "gid", 0),
                                                              setattr(ti, "uname", "root"),
                                                              setattr(ti, "gname", "root"), ti)[-1])
            self.run(['sh', '-c', 'mkdir -p "$1" && tar -C "$1" -xf -', "sh", dst], input=buf.getvalue())
        else:
            self.write_file(dst, src.read_bytes(), src.stat().st_mode & 0o7777)

    def read_file(self, path: str) -> bytes:
        return self.run(["cat", "--", path], text=False).stdout

    def testinfra(self):
        """A testinfra Host acting inside this host (follows reboots: the leader is looked up per call)."""
        return _nsenter_backend().get_host(lambda: self.leader)


# ---------------------------------------------------------------------------------------- testbed

_ids = itertools.count(1)
_live: "weakref.WeakSet[Testbed]" = weakref.WeakSet()
_sigterm_installed = False


def _sigterm(signum, frame):
    # Turn SIGTERM into the same unwinding as Ctrl-C, so context managers and pytest fixtures tear down.
    raise KeyboardInterrupt(f"signal {signum}")


def _install_sigterm() -> None:
    global _sigterm_installed
    if _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _sigterm)
    _sigterm_installed = True


@atexit.register
def _close_all() -> None:
    for bed in list(_live):
        bed.close()


class Testbed:
    """A set of hosts on one private bridge. Use as a context manager; ``close()`` is idempotent.

    >>> with Testbed() as tb:
    ...     hosts = tb.boot({"m1": "10.77.0.11", "m2": "10.77.0.12"})
    ...     hosts["m1"].run(["ping", "-c1", hosts["m2"].ip])
    """

    __test__ = False

    def __init__(self, rootfs: Path | None = None, boot_timeout: float = 60,
                 nspawn_args: Sequence[str] = ()):
        self.rootfs = Path(rootfs) if rootfs else ensure_rootfs()
        self.id = f"{PREFIX}-{os.getpid()}-{next(_ids)}"
        self.dir = WORK_ROOT / self.id
        self.switch = f"{self.id}-sw"
        self.boot_timeout = boot_timeout
        self.nspawn_args = list(nspawn_args)
        self.hosts: dict[str, Host] = {}
        self._closed = False

    def __enter__(self) -> "Testbed":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def _ensure_switch(self) -> None:
        if self.switch in _netns_list():
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        st = _stat(os.getpid())
        (self.dir / "owner").write_text(f"{os.getpid()} {st[3] if st else 0}\n")
        _live.add(self)
        _install_sigterm()
        _sh(["ip", "netns", "add", self.switch])
        _sh(["ip", "-n", self.switch, "link", "add", "br0", "type", "bridge"])
        _sh(["ip", "-n", self.switch, "link", "set", "br0", "up"])

    def boot(self, spec: Mapping[str, str], wait: bool = True) -> dict[str, Host]:
        """Boot hosts ``{name: "10.77.0.11[/24]"}`` in parallel; return them once all are up.

        Any host not named in a product's cluster spec is an outsider on the same bridge.
        """
        if self._closed:
            raise TestbedError("test bed already closed")
        new: dict[str, Host] = {}
        used = {h.ip for h in self.hosts.values()}
        for name, addr in spec.items():
            if not _NAME_RE.match(name) or name in self.hosts or name in new:
                raise ValueError(f"bad or duplicate host name {name!r}")
            iface = ipaddress.ip_interface(addr if "/" in addr else f"{addr}/24")
            if not (iface.version == 4 and iface.ip.is_private) or iface.ip.is_loopback \
                    or iface.ip.is_link_local or str(iface.ip) in used:
                raise ValueError(f"{name}: {addr} is not an unused private IPv4 test address")
            used.add(str(iface.ip))
            new[name] = Host(self, name, iface, len(self.hosts) + len(new))
        self._ensure_switch()
        for h in new.values():
            self.hosts[h.name] = h
            veth = f"v{h.index}"
            _sh(["ip", "netns", "add", h.netns])
            _sh(["ip", "-n", self.switch, "link", "add", veth, "type", "veth",
                 "peer", "name", "eth0", "netns", h.netns])
            _sh(["ip", "-n", self.switch, "link", "set", veth, "master", "br0", "up"])
            _sh(["ip", "-n", h.netns, "addr", "add", str(h.interface), "dev", "eth0"])
            _sh(["ip", "-n", h.netns, "link", "set", "eth0", "up"])
            _sh(["ip", "-n", h.netns, "link", "set", "lo", "up"])
            h.dir.mkdir(parents=True, exist_ok=True)
            h.start(wait=False)
        if wait:
            for h in new.values():
                h.wait_running()
        return new

    def capture(self, seconds: float, bpf: str = "tcp") -> bytes:
        """What crossed the bridge for ``seconds`` (tcpdump on br0, full packets), as pcap bytes."""
        if not shutil.which("tcpdump"):
            raise TestbedError("tcpdump is missing (apt install tcpdump)")
        out = self.dir / f"capture-{time.monotonic_ns()}.pcap"
        p = subprocess.Popen(["ip", "netns", "exec", self.switch, "tcpdump", "-i", "br0", "-s", "0", "-U", "-n",
                              "-w", str(out), bpf], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            time.sleep(seconds)
        finally:
            p.terminate()
            err = p.communicate(timeout=10)[1].decode(errors="replace")
        if not out.exists():
            raise TestbedError(f"tcpdump wrote nothing: {err[-500:]}")
        data = out.read_bytes()
        out.unlink()
        return data

    @staticmethod
    def plaintext_markers(pcap: bytes) -> list[str]:
        """Command names of MongoDB's member and client traffic that appear readable in a capture."""
        names = ("_standinHeartbeat", "_standinJoin", "replSetHeartbeat", "isWritablePrimary", "saslStart",
                 "saslContinue", "hello", "admin")
        return [n for n in names if n.encode() in pcap]

    def close(self) -> None:
        """Power off every host (in parallel), then remove mounts, netns, cgroups, processes, dirs."""
        if self._closed:
            return
        self._closed = True
        try:
            signalled = [h for h in self.hosts.values() if h.running and h._signal_poweroff()]
            for h in self.hosts.values():
                h._wait_stopped(20 if h in signalled else 0.1)
        finally:
            _destroy(self.id)
            _live.discard(self)


def _destroy(bed_id: str) -> list[str]:
    """Remove everything named ``bed_id`` — by name alone, so it also works for a killed run's leftovers."""
    problems = []
    cgs = [cg for r in _cgroup_roots() for cg in r.glob(f"{bed_id}-*")]
    for _ in range(200):
        pids = {p for cg in cgs for p in _cgroup_pids(cg) if _alive(p)}
        if not pids:
            break
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)
    bdir = WORK_ROOT / bed_id
    for mp in _mounts_under(bdir):
        if _sh(["umount", mp], check=False).returncode != 0:
            _sh(["umount", "-l", mp], check=False)
    for ns in _netns_list():
        if ns.startswith(bed_id + "-"):
            if _sh(["ip", "netns", "del", ns], check=False).returncode != 0:
                problems.append(f"netns {ns}")
    for cg in cgs:
        try:
            _rmdir_tree(cg)
        except OSError as e:
            problems.append(f"cgroup {cg}: {e}")
    if _mounts_under(bdir):
        problems.append(f"mounts under {bdir}")
    else:
        shutil.rmtree(bdir, ignore_errors=True)
    return problems


def _bed_ids() -> set[str]:
    """Ids of every bed with anything left on this machine (dir, netns, cgroup or mount)."""
    pat = re.compile(rf"^({PREFIX}-\d+-\d+)(?:-|$)")
    names = [p.name for p in WORK_ROOT.glob(f"{PREFIX}-*")] + _netns_list()
    names += [cg.name for r in _cgroup_roots() for cg in r.glob(f"{PREFIX}-*")]
    names += [Path(mp).relative_to(WORK_ROOT).parts[0] for mp in _mounts_under(WORK_ROOT)]
    return {m.group(1) for n in names if (m := pat.match(n))}


def _owner_alive(bed_id: str) -> bool:
    pid = int(bed_id.split("-")[1])
    st = _stat(pid)
    if st is None or st[1] == "Z":
        return False
    try:
        recorded = int((WORK_ROOT / bed_id / "owner").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return True  # cannot tell: leave it alone
    return recorded == st[3]


def cleanup_stale(include_live: bool = False) -> list[str]:
    """Remove leftovers of test beds whose owning process is gone (a killed run). Returns their ids.

    ``include_live=True`` also removes beds of running processes (manual recovery only).
    """
    removed = []
    for bed_id in sorted(_bed_ids()):
        if bed_id.startswith(f"{PREFIX}-{os.getpid()}-") and any(b.id == bed_id for b in _live):
            if not include_live:
                continue
        elif _owner_alive(bed_id) and not include_live:
            continue
        _destroy(bed_id)
        removed.append(bed_id)
    return removed


def leftovers(bed_id: str | None = None) -> dict[str, list[str]]:
    """What a bed (or all beds) left on the machine: mounts, netns, cgroup dirs, processes, dirs."""
    def ours(name: str) -> bool:
        return name == bed_id or name.startswith(f"{bed_id}-") if bed_id else name.startswith(f"{PREFIX}-")

    cgs = [cg for r in _cgroup_roots() for cg in r.iterdir() if cg.is_dir() and ours(cg.name)]
    procs = {p for cg in cgs for p in _cgroup_pids(cg) if _alive(p)}
    dirs = [p for p in WORK_ROOT.glob(f"{PREFIX}-*") if ours(p.name)] if WORK_ROOT.exists() else []
    # Processes whose command line names a bed's work dir (nspawn -D …), even outside its cgroups.
    mark = f"{WORK_ROOT}/{bed_id}/" if bed_id else f"{WORK_ROOT}/{PREFIX}-"
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid():
            try:
                cmd = Path(f"/proc/{d}/cmdline").read_bytes()
            except OSError:
                continue
            if mark.encode() in cmd and _alive(int(d)):
                procs.add(int(d))
    return {
        "mounts": [m for m in _mounts_under(WORK_ROOT) if ours(Path(m).relative_to(WORK_ROOT).parts[0])],
        "netns": [n for n in _netns_list() if ours(n)],
        "cgroups": [str(c) for c in cgs],
        "processes": [str(p) for p in sorted(procs)],
        "dirs": [str(p) for p in dirs],
    }
