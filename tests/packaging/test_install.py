"""The .deb on a real Debian 12 host: a fresh systemd-nspawn container of the test bed (no network to
the outside). Its Debian dependencies come from a flat apt repository this test assembles with
``apt-get download`` on the outer machine (only what the rootfs lacks) and copies in; the container's
own sources are switched off, so apt can resolve nothing from anywhere else.

One host, steps in order: install pulls dependencies and starts nothing → the commands work on
PyMongo ≥ 4 even with Debian's python3-pymongo 3.11 installed → renders the same files as a pip
install of the same tree → upgrade keeps /etc/dbrs → purge keeps data → an asked-for purge is refused
while a dbrs unit runs → an asked-for purge removes what it says and nothing else.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, SYSTEM_PATH

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
testbed = importlib.import_module("tests.hosts.testbed")
product = importlib.import_module("tests.hosts.product")

REPO_IN_HOST = "/srv/dbrs-apt"
# Installed next to dbrs to prove its private PyMongo wins over the distribution's 3.x.
ALSO = ("python3-pymongo",)
INIT = ["init", "--primary", "10.0.0.11", "--secondary", "10.0.0.12", "--arbiter", "10.0.0.13",
        "--allow", "10.0.0.0/24"]
SECRETS = ("keyfile", "secrets.toml", "backup.key", "bundle.dbrs", "ca.key", "ca.pem")  # generated anew by each init

_why_not = None
if os.geteuid() != 0:
    _why_not = "the package install test needs root (systemd-nspawn, netns, overlay mounts)"
elif testbed.missing_tools() or not shutil.which("apt-get") or not shutil.which("dpkg-scanpackages"):
    _why_not = ("the package install test needs " + ", ".join(testbed.missing_tools() or ["apt-get", "dpkg-scanpackages"])
                + " (apt: systemd-container debootstrap util-linux iproute2 dpkg-dev)")
pytestmark = pytest.mark.skipif(bool(_why_not), reason=_why_not or "")


def outer(*argv, cwd=None) -> str:
    r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env={"PATH": SYSTEM_PATH, "LC_ALL": "C"})
    assert r.returncode == 0, f"{' '.join(argv)}: {r.stderr[-2000:]}"
    return r.stdout


def installed_in(rootfs: Path) -> dict[str, str]:
    """{package: version} installed in the rootfs (from its dpkg status file)."""
    out, name, ver, ok = {}, None, None, False
    for line in (rootfs / "var/lib/dpkg/status").read_text().splitlines() + [""]:
        if line.startswith("Package: "):
            name = line.split()[1]
        elif line.startswith("Version: "):
            ver = line.split()[1]
        elif line.startswith("Status: "):
            ok = line.endswith(" installed")
        elif not line:
            if name and ok:
                out[name] = ver
            name, ver, ok = None, None, False
    return out


def apt_repository(deb: Path, rootfs: Path, dest: Path) -> None:
    """A flat repo with the .deb, plus every package of its dependency closure (and ``ALSO``) that the
    rootfs lacks or has at another version, downloaded by the outer machine's apt (cached)."""
    seeds = set(ALSO)
    for field in ("Depends", "Pre-Depends", "Recommends"):
        for alt in outer("dpkg-deb", "-f", str(deb), field).replace("\n", " ").split(","):
            if alt.strip():
                seeds.add(re.split(r"[ (:]", alt.split("|")[0].strip())[0])
    tree = outer("apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
                 "--no-breaks", "--no-replaces", "--no-enhances", *sorted(seeds))
    closure = {l.split(":")[0] for l in tree.splitlines() if l and not l[0].isspace() and not l.startswith("<")}
    show = outer("apt-cache", "show", "--no-all-versions", *sorted(closure))
    candidate = dict(re.findall(r"^Package: (\S+)\n(?:.*\n)*?Version: (\S+)", show, re.M))
    have = installed_in(rootfs)
    need = sorted(f"{p}={v}" for p, v in candidate.items() if have.get(p) != v)
    cache = product.CACHE_DIR / "packaging-apt" / hashlib.sha256(" ".join(need).encode()).hexdigest()[:16]
    if not (cache / ".ok").exists():
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        outer("apt-get", "download", *need, cwd=cache)
        (cache / ".ok").write_text("\n".join(need) + "\n")
    dest.mkdir(parents=True)
    for f in cache.glob("*.deb"):
        shutil.copy2(f, dest)
    shutil.copy2(deb, dest)
    (dest / "Packages").write_text(outer("dpkg-scanpackages", "-m", ".", cwd=dest))


def upgraded_copy(deb: Path, dest: Path) -> Path:
    """The same package with a higher version (dpkg-deb repack): exercises dpkg's real upgrade path."""
    tree = dest / "tree"
    outer("dpkg-deb", "-R", str(deb), str(tree))
    control = tree / "DEBIAN/control"
    version = re.search(r"^Version: (\S+)$", control.read_text(), re.M).group(1)
    control.write_text(control.read_text().replace(f"Version: {version}", f"Version: {version}+up1"))
    out = dest / f"dbrs_{version}+up1_all.deb"
    outer("dpkg-deb", "--root-owner-group", "-b", str(tree), str(out))
    return out


@pytest.fixture(scope="module")
def host(build, tmp_path_factory):
    testbed.cleanup_stale()
    rootfs = product.member_rootfs()
    wheels = product.wheelhouse()
    work = tmp_path_factory.mktemp("apt")
    apt_repository(build.deb, rootfs, work / "repo")
    (work / "up").mkdir()
    shutil.copy2(upgraded_copy(build.deb, work / "up"), work / "repo")
    with testbed.Testbed(rootfs=rootfs) as bed:
        h = bed.boot({"pkg": "10.77.0.61"})["pkg"]
        h.copy_in(work / "repo", REPO_IN_HOST)
        h.copy_in(wheels, "/var/tmp/wheels")
        h.run("mkdir -p /etc/apt/off && mv /etc/apt/sources.list /etc/apt/sources.list.d/* /etc/apt/off/ 2>/dev/null;"
              f" echo 'deb [trusted=yes] file:{REPO_IN_HOST} ./' > /etc/apt/sources.list.d/dbrs-test.list"
              " && apt-get -q -o Acquire::Languages=none update")
        h.deb = Path(REPO_IN_HOST) / build.deb.name
        yield h


def apt(host, *args, env=None):
    return host.run(["apt-get", "-q", "-y", *args], env={"DEBIAN_FRONTEND": "noninteractive", **(env or {})},
                    timeout=180)


def test_apt_installs_it_with_debian_dependencies_and_starts_nothing(host):
    r = apt(host, "install", str(host.deb), *ALSO)
    assert "dbrs" in host.run("dpkg-query -W -f '${Status} ${Package}\\n' dbrs").stdout
    assert "install ok installed" in host.run("dpkg-query -W -f '${Status}' dbrs").stdout, r.stdout
    assert host.run("ls /etc/systemd/system | grep -c '^dbrs' || true").stdout.strip() == "0"
    units = host.run(["systemctl", "list-units", "--all", "--plain", "--no-legend", "dbrs*"]).stdout
    assert units.strip() == ""
    # Byte-compiled for the host's Python by py3compile (postinst), removed again by py3clean.
    assert host.run("ls /usr/lib/dbrs/installer/__pycache__ | grep -c pyc").stdout.strip() != "0"


def test_commands_run_on_the_private_pymongo4(host):
    assert host.run(["dbrs", "--version"]).stdout.strip().endswith("0.1.0")
    assert "--role" in host.run(["dbrs-install", "--help"]).stdout
    # The interpreter and sys.path the launcher sets up, exactly (its lines before the import).
    prelude = host.run(["sed", "-n", "/^from /q;p", "/usr/bin/dbrs"]).stdout
    assert prelude.startswith("#!/usr/bin/python3 -I\n")
    probe = prelude + "import pymongo, bson; print(pymongo.version, pymongo.__file__, bson.__file__)\n"
    version, mod, bson = host.run(["/usr/bin/python3", "-I", "-"], input=probe).stdout.split()
    assert tuple(map(int, version.split(".")[:2])) >= (4, 4), version
    assert mod.startswith("/usr/lib/dbrs/") and bson.startswith("/usr/lib/dbrs/")
    # Debian's python3-pymongo stays what it is for everything else.
    system = host.run(["/usr/bin/python3", "-c", "import pymongo; print(pymongo.version)"]).stdout.strip()
    assert system.startswith("3."), system


def test_bash_completion_calls_back_into_the_installed_cli(host):
    out = host.run(["bash", "-c", "source /usr/share/bash-completion/completions/dbrs; "
                    "COMP_WORDS=(dbrs ba); COMP_CWORD=1; _dbrs_completion dbrs; echo ${COMPREPLY[@]}"]).stdout
    assert "backup" in out.split(), out


def tree(host, root: str) -> dict[str, str]:
    """{relative path: "mode sha256"} of every file and link under root."""
    out = host.run(["sh", "-c", 'cd "$1" && find . \\( -type f -o -type l \\) -printf "%P %m %y\\n" | sort', "sh", root]).stdout
    files = {}
    for line in out.splitlines():
        path, mode, kind = line.rsplit(" ", 2)
        digest = host.run(["sh", "-c", f'cd "$1" && {"readlink" if kind == "l" else "sha256sum"} -- "$2"', "sh",
                           root, path]).stdout.split()[0]
        files[path] = f"{mode} {kind} {digest}"
    return files


def test_renders_the_same_files_as_a_pip_install_of_the_same_tree(host):
    host.run("python3 -m venv /opt/pip && /opt/pip/bin/pip install -q --disable-pip-version-check --no-index "
             "--find-links /var/tmp/wheels dbrs", timeout=300)
    for cli, root in (("/usr/bin", "/tmp/deb"), ("/opt/pip/bin", "/tmp/pip")):
        host.run([f"{cli}/dbrs", *INIT, "--root", root])
    deb, pip = tree(host, "/tmp/deb"), tree(host, "/tmp/pip")
    assert deb.keys() == pip.keys()
    secret = [p for p in deb if Path(p).name in SECRETS]
    assert secret, sorted(deb)
    assert {p: v for p, v in deb.items() if p not in secret} == {p: v for p, v in pip.items() if p not in secret}
    # Same inputs (the deb's spec and secrets) for both installs, then every rendered file must match.
    host.run("rm -rf /tmp/pip && cp -a /tmp/deb /tmp/pip")
    for cli, root in (("/usr/bin", "/tmp/deb"), ("/opt/pip/bin", "/tmp/pip")):
        host.run([f"{cli}/dbrs-install", "--root", root, "--role", "primary"], timeout=120)
    deb, pip = tree(host, "/tmp/deb"), tree(host, "/tmp/pip")
    assert any("dbrs-mongod@" in p for p in deb), sorted(deb)
    # a member certificate is issued afresh by each install (a new key): its mode is what must match
    issued = [p for p in deb if Path(p).name == "member.pem"]
    assert issued, sorted(deb)
    assert {p: v.rsplit(" ", 1)[0] if p in issued else v for p, v in deb.items()} == \
        {p: v.rsplit(" ", 1)[0] if p in issued else v for p, v in pip.items()}


def etc_digest(host) -> str:
    return host.run("cd /etc/dbrs && find . -type f -printf '%P %m\\n' -exec sha256sum {} + | sort").stdout


def test_upgrade_keeps_the_configuration(host):
    host.run(["dbrs", *INIT])
    before = etc_digest(host)
    assert "secrets.toml" in before and "cluster.toml" in before
    new = next(p for p in host.run(["ls", REPO_IN_HOST]).stdout.split() if "+up1" in p)
    apt(host, "install", f"{REPO_IN_HOST}/{new}")
    assert host.run("dpkg-query -W -f '${Version}' dbrs").stdout.endswith("+up1")
    assert etc_digest(host) == before
    assert host.run(["dbrs", "--version"]).returncode == 0


STATE = ("/var/lib/dbrs/mongod1/marker", "/var/log/dbrs/mongod1/marker", "/var/backups/dbrs/marker")


def make_state(host) -> None:
    for f in STATE:
        host.run(["sh", "-c", 'mkdir -p "$(dirname "$1")" && echo data > "$1"', "sh", f])
    host.run("echo '[Unit]' > /etc/systemd/system/dbrs-mongod@.service && echo x > /etc/sysctl.d/60-dbrs.conf")


def exists(host, path) -> bool:
    return host.run(["test", "-e", path], check=False).returncode == 0


def test_purge_removes_the_package_and_keeps_config_secrets_data_backups(host):
    make_state(host)
    etc = etc_digest(host)
    r = apt(host, "purge", "dbrs")
    assert host.run("dpkg-query -W -f '${Status}' dbrs", check=False).stdout in ("", "unknown ok not-installed")
    assert not exists(host, "/usr/lib/dbrs") and not exists(host, "/usr/bin/dbrs")
    assert etc_digest(host) == etc
    for f in STATE + ("/etc/systemd/system/dbrs-mongod@.service", "/etc/sysctl.d/60-dbrs.conf"):
        assert exists(host, f), f
    assert "kept /etc/dbrs" in r.stdout + r.stderr


def test_asked_for_purge_is_refused_while_a_dbrs_unit_runs(host):
    apt(host, "install", str(host.deb))
    host.run(["systemd-run", "--unit=dbrs-probe", "sleep", "infinity"])
    try:
        r = apt(host, "purge", "dbrs", env={"DBRS_PURGE_DATA": "yes", "DBRS_PURGE_BACKUPS": "yes"})
    finally:
        host.run(["systemctl", "stop", "dbrs-probe"])
    assert "NOT removing" in r.stdout + r.stderr
    assert not exists(host, "/usr/lib/dbrs")
    for f in STATE + ("/etc/dbrs/secrets.toml",):
        assert exists(host, f), f


def test_asked_for_purge_removes_data_then_backups(host):
    apt(host, "install", str(host.deb))
    apt(host, "purge", "dbrs", env={"DBRS_PURGE_DATA": "yes"})
    for gone in ("/etc/dbrs", "/var/lib/dbrs", "/var/log/dbrs", "/etc/systemd/system/dbrs-mongod@.service",
                 "/etc/sysctl.d/60-dbrs.conf"):
        assert not exists(host, gone), gone
    assert exists(host, "/var/backups/dbrs/marker")
    apt(host, "install", str(host.deb))
    apt(host, "purge", "dbrs", env={"DBRS_PURGE_BACKUPS": "yes"})
    assert not exists(host, "/var/backups/dbrs")
    assert exists(host, "/etc/apt/sources.list.d/dbrs-test.list")  # nothing outside dbrs's own paths
