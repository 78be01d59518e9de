"""Put dbrs into test-bed hosts the way a user would: the built wheel in a venv, plus the stand-ins.

- ``wheelhouse()`` builds the wheel of this working tree and collects its dependencies as wheels, once
  per tree hash (cached under the test-bed cache dir), because the hosts have no network.
- ``member_rootfs()`` is the test bed's one rootfs (its base recipe holds what a member host needs).
- ``mongo_express_tree()`` is mongo-express 1.0.0 installed with dbrs's own npm argv outside the hosts
  (cached; the tree is copied into a host at ``/opt/dbrs/mongo-express``).
- ``install_product(host, wheels, mongodb_version)`` creates ``/opt/dbrs/venv``, installs dbrs from the
  wheelhouse with ``pip --no-index``, links ``/usr/local/bin/dbrs`` and ``dbrs-install``, and installs
  the stand-ins (``tests/standins/mongod`` at ``/usr/bin/mongod``, mongodump/mongorestore if present).

Nothing here changes how the product installs or runs; it only replaces what cannot exist on these
machines (MongoDB's packages) with stand-ins named as such.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .testbed import CACHE_DIR, PACKAGES, TestbedError, ensure_rootfs

REPO = Path(__file__).resolve().parents[2]
STANDINS = REPO / "tests" / "standins"
# What a member host needs (dbrs-install creates the mongodb user with adduser, runs nft, writes a
# logrotate snippet; the venv needs python3-venv; Mongo Express runs on node). All of it is in the test
# bed's base recipe (testbed.PACKAGES), so every user gets the same cached image.
MEMBER_PACKAGES = ("adduser", "logrotate", "nftables", "python3-venv", "nodejs")
VENV = "/opt/dbrs/venv"
WHEELS_IN_HOST = "/var/tmp/dbrs-wheels"
STANDIN_DIR = "/usr/lib/dbrs-standin"
# Patch release reported by the mongod stand-in for the spec's major.minor.
PATCH = {"7.0": "7.0.14", "8.0": "8.0.4"}
_BUILD_FILES = ("pyproject.toml", "README.md")
_BUILD_DIRS = ("installer", "templates")


def member_rootfs(log=None) -> Path:
    """The test bed's one rootfs: the member packages are part of its base recipe (no second image, so
    the bed's own tests and the member hosts never evict each other's cache)."""
    missing = set(MEMBER_PACKAGES) - set(PACKAGES)
    if missing:
        raise TestbedError(f"testbed.PACKAGES lacks the member packages {sorted(missing)}")
    return ensure_rootfs(log=log)


def _tree_files() -> list[Path]:
    files = [REPO / f for f in _BUILD_FILES if (REPO / f).exists()]
    for d in _BUILD_DIRS:
        files += sorted(p for p in (REPO / d).rglob("*")
                        if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc"))
    return files


def tree_hash() -> str:
    h = hashlib.sha256()
    for p in _tree_files():
        h.update(str(p.relative_to(REPO)).encode() + b"\0" + p.read_bytes() + b"\0")
    h.update(sys.version.split()[0].encode())
    return h.hexdigest()[:16]


def wheelhouse(log=None) -> Path:
    """A directory with the dbrs wheel of this tree and every dependency as a wheel (cached by tree hash)."""
    base = CACHE_DIR / "wheels"
    base.mkdir(parents=True, exist_ok=True)
    out = base / tree_hash()
    if (out / ".ok").exists():
        return out
    with open(base / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (out / ".ok").exists():
            return out
        if log:
            log(f"dbrs-hosts: building the dbrs wheel and its wheelhouse in {out}")
        shutil.rmtree(out, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix="wheelhouse-", dir=base))
        with tempfile.TemporaryDirectory() as src:
            # Build from a copy: an in-tree build would leave build/ and *.egg-info in the working tree.
            for p in _tree_files():
                dst = Path(src) / p.relative_to(REPO)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(p, dst)
            pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
            for argv in (pip + ["wheel", "--no-deps", "-w", str(tmp), src],):
                subprocess.run(argv, check=True, capture_output=True, text=True)
        built = next(tmp.glob("dbrs-*.whl"))
        # setuptools too: the README's `pip install .` builds from source, offline in the hosts.
        r = subprocess.run(pip + ["wheel", "-w", str(tmp), str(built), "setuptools>=61"], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"pip wheel of the dependencies failed: {r.stderr[-2000:]}")
        (tmp / ".ok").write_text(built.name + "\n")
        os.rename(tmp, out)
    for old in base.iterdir():  # keep the cache small: only the newest few trees
        if old.is_dir() and old != out and old.name != "lock" and not old.name.startswith("wheelhouse-"):
            if len(list(base.iterdir())) > 6:
                shutil.rmtree(old, ignore_errors=True)
    return out


def install_product(host, wheels: Path, mongodb_version: str = "8.0", hosts_file: dict | None = None) -> None:
    """The wheel into /opt/dbrs/venv, the CLI links, the stand-ins and /etc/hosts names."""
    host.copy_in(wheels, WHEELS_IN_HOST)
    host.run(f"python3 -m venv {VENV} && {VENV}/bin/pip install -q --disable-pip-version-check --no-index "
             f"--find-links {WHEELS_IN_HOST} dbrs && ln -sf {VENV}/bin/dbrs /usr/local/bin/dbrs && "
             f"ln -sf {VENV}/bin/dbrs-install /usr/local/bin/dbrs-install && rm -rf {WHEELS_IN_HOST}",
             timeout=300)
    install_standins(host, mongodb_version)
    if hosts_file:
        lines = "".join(f"{ip}\t{name}\n" for name, ip in hosts_file.items())
        host.run(["sh", "-c", "cat >> /etc/hosts"], input=lines)


def install_standins(host, mongodb_version: str = "8.0") -> None:
    """Stand-ins live in /usr/lib/dbrs-standin, linked from the paths the product runs (/usr/bin/mongod …)."""
    host.write_file(f"{STANDIN_DIR}/version", PATCH.get(mongodb_version, mongodb_version + ".0") + "\n", 0o644)
    links = []
    for tool in ("mongod", "mongodump", "mongorestore", "_standin_common.py", "tool_options.json"):
        if (STANDINS / tool).exists():
            mode = 0o644 if tool.endswith((".py", ".json")) else 0o755
            host.write_file(f"{STANDIN_DIR}/{tool}", (STANDINS / tool).read_bytes(), mode)
            if mode == 0o755:
                links.append(f"ln -sf {STANDIN_DIR}/{tool} /usr/bin/{tool}")
    host.run(" && ".join(links))


def source_tree(host, dst: str) -> None:
    """This working tree's build files at `dst` in the host, as `git clone` would leave them."""
    with tempfile.TemporaryDirectory() as tmp:
        for p in _tree_files():
            out = Path(tmp) / p.relative_to(REPO)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, out)
        host.copy_in(tmp, dst)


def offline_pip(host, wheels: Path) -> None:
    """pip in the host finds everything in the wheelhouse (the hosts have no network); set in
    /etc/pip.conf so the commands an operator types stay exactly as written."""
    host.copy_in(wheels, WHEELS_IN_HOST)
    host.write_file("/etc/pip.conf", f"[global]\nno-index = true\nfind-links = {WHEELS_IN_HOST}\n"
                    "disable-pip-version-check = true\n", 0o644)


def mongodb_repo_standin(host, version: str = "8.0") -> None:
    """What MongoDB's apt repository would have done, offline: its three packages marked installed by
    empty stand-in .debs (the binaries are the stand-ins of install_standins) and its key in place, so
    `dbrs-install` without --no-packages finds nothing to fetch. Test-bed only, named as stand-ins."""
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("mongodb-org-server", "mongodb-mongosh", "mongodb-database-tools"):
            d = Path(tmp) / name
            (d / "DEBIAN").mkdir(parents=True)
            (d / "DEBIAN" / "control").write_text(
                f"Package: {name}\nVersion: {PATCH.get(version, version)}-standin\nArchitecture: all\n"
                "Maintainer: dbrs tests <tests@dbrs.invalid>\n"
                "Description: dbrs test-bed stand-in for MongoDB's package (empty)\n")
            subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(d), f"{tmp}/{name}.deb"],
                           check=True, capture_output=True)
            host.write_file(f"/var/tmp/{name}.deb", Path(f"{tmp}/{name}.deb").read_bytes(), 0o644)
    host.run("dpkg -i /var/tmp/mongodb-org-server.deb /var/tmp/mongodb-mongosh.deb "
             "/var/tmp/mongodb-database-tools.deb && rm /var/tmp/mongodb-*.deb")
    host.write_file(f"/usr/share/keyrings/mongodb-server-{version}.asc",
                    "# dbrs test-bed stand-in for MongoDB's release key (nothing is fetched offline)\n", 0o644)


def sudo_standin(host) -> None:
    """The hosts are entered as root and minbase has no sudo: `sudo CMD` runs CMD (test bed only)."""
    host.write_file("/usr/local/bin/sudo", "#!/bin/sh\n# dbrs test-bed stand-in: already root\nexec \"$@\"\n", 0o755)


class Unavailable(Exception):
    """Something the test needs from outside (npm, its registry) is not reachable on this machine."""


def mongo_express_tree(log=None) -> Path:
    """``mongo-express@1.0.0`` installed outside the hosts (they have no network) with the very npm argv
    dbrs-install uses (``--ignore-scripts``), into the cache the unit tier uses too; the returned prefix is
    what ``/opt/dbrs/mongo-express`` holds on a member host. Raises ``Unavailable`` (one line) only when npm
    or its registry cannot be reached."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from installer.host import facts, mongo_express

    cache = Path(os.environ.get("DBRS_TEST_CACHE", Path.home() / ".cache/dbrs-tests")) / \
        f"{mongo_express.NAME}-{mongo_express.VERSION}"
    if facts.npm_version(None, str(cache), mongo_express.NAME) == mongo_express.VERSION:
        return cache
    if not shutil.which("npm"):
        raise Unavailable("npm is not installed on this machine (apt-get install npm)")
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache.parent / f".{cache.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if facts.npm_version(None, str(cache), mongo_express.NAME) == mongo_express.VERSION:
            return cache
        ping = subprocess.run(["npm", "ping"], capture_output=True, text=True, timeout=60)
        if ping.returncode != 0:
            raise Unavailable("npm registry unreachable: "
                              + (ping.stderr.strip().splitlines() or ["npm ping failed"])[-1])
        if log:
            log(f"dbrs-hosts: npm install {mongo_express.NAME}@{mongo_express.VERSION} into {cache}")
        # Into a temp prefix renamed into place: an interrupted install never looks finished.
        tmp = Path(tempfile.mkdtemp(prefix=f".{cache.name}-", dir=cache.parent))
        tmp.chmod(0o755)  # as npm leaves a prefix it creates: the unit's dynamic user must read it
        try:
            r = subprocess.run(mongo_express.npm_argv(mongo_express.NAME, mongo_express.VERSION, str(tmp)),
                               capture_output=True, text=True, timeout=600)
            if r.returncode != 0:
                raise RuntimeError(f"npm install of {mongo_express.NAME} failed: {r.stderr[-2000:]}")
            shutil.rmtree(cache, ignore_errors=True)
            os.rename(tmp, cache)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    assert facts.npm_version(None, str(cache), mongo_express.NAME) == mongo_express.VERSION
    return cache


def infra_checks():
    """tests/infra/checks.py (the testinfra checks shared with the Vagrant tier), imported by path."""
    import importlib.util

    name = "dbrs_infra_checks"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "tests" / "infra" / "checks.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


def standin_packages(host, version: str, dest: str) -> str:
    """MongoDB's three packages at `version` as stand-in .debs in `dest` inside the host, for
    `--packages-from` (issue 13's upgrade flow). The server's ships the version file the stand-in mongod
    reports (buildInfo, serverStatus), so installing it moves the "binary" as a real package would, and a
    restarted member answers with the new version. Test-bed only, named as stand-ins."""
    full = PATCH.get(version, version + ".0")
    host.run(["mkdir", "-p", dest])
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("mongodb-org-server", "mongodb-mongosh", "mongodb-database-tools"):
            d = Path(tmp) / name
            (d / "DEBIAN").mkdir(parents=True)
            (d / "DEBIAN" / "control").write_text(
                f"Package: {name}\nVersion: {full}-standin\nArchitecture: all\n"
                "Maintainer: dbrs tests <tests@dbrs.invalid>\n"
                f"Description: dbrs test-bed stand-in for MongoDB's package ({version})\n")
            if name == "mongodb-org-server":
                (d / STANDIN_DIR.lstrip("/")).mkdir(parents=True)
                (d / STANDIN_DIR.lstrip("/") / "version").write_text(full + "\n")
            deb = f"{tmp}/{name}_{full}-standin_all.deb"
            subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(d), deb], check=True, capture_output=True)
            host.write_file(f"{dest}/{Path(deb).name}", Path(deb).read_bytes(), 0o644)
    return full
