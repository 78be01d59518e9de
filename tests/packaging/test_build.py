"""The built .deb itself: lintian clean, files where Debian expects them, dependencies that cover
pyproject.toml, man pages that list what --help lists."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from .conftest import REPO, SYSTEM_PATH

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SCRIPTS = sorted(PYPROJECT["project"]["scripts"])
VENDORED = {"pymongo"}  # private copy in /usr/lib/dbrs (debian/vendor-requirements.txt)


def sh(*argv, **kw) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True,
                          env={"PATH": SYSTEM_PATH, "LC_ALL": "C.UTF-8"}, **kw).stdout


@pytest.fixture(scope="module")
def listing(build) -> dict[str, str]:
    """{path: mode string} of the .deb's data."""
    out = {}
    for line in sh("dpkg-deb", "-c", str(build.deb)).splitlines():
        mode, path = line.split()[0], line.split(None, 5)[5].split(" -> ")[0]
        out[path.removeprefix(".")] = mode
    return out


@pytest.fixture(scope="module")
def extracted(build, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("x")
    sh("dpkg-deb", "-x", str(build.deb), str(d))
    return d


def test_lintian_reports_no_errors_and_no_warnings(build):
    r = subprocess.run(["lintian", "--fail-on", "error,warning", "--pedantic", str(build.changes)],
                       capture_output=True, text=True, env={"PATH": SYSTEM_PATH, "LC_ALL": "C.UTF-8"})
    bad = [l for l in r.stdout.splitlines() if l[:2] in ("E:", "W:")]
    assert r.returncode == 0 and not bad, r.stdout + r.stderr


def test_every_lintian_override_has_a_written_reason():
    lines = (REPO / "debian/dbrs.lintian-overrides").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.strip() and not line.startswith("#"):
            j = i - 1
            while j >= 0 and lines[j].strip() and not lines[j].startswith("#"):
                j -= 1  # several tags may share one reason block
            assert j >= 0 and lines[j].startswith("#"), f"override without a reason: {line}"


def test_commands_man_pages_and_completions_where_debian_expects_them(listing):
    for name in SCRIPTS:
        assert listing.get(f"/usr/bin/{name}", "").startswith("-rwxr-xr-x"), name
        assert f"/usr/share/man/man1/{name}.1.gz" in listing
        assert f"/usr/share/bash-completion/completions/{name}" in listing
        assert f"/usr/share/zsh/vendor-completions/_{name}" in listing
        assert f"/usr/share/fish/vendor_completions.d/{name}.fish" in listing


def test_private_directory_holds_dbrs_its_templates_and_pymongo4(listing):
    templates = sorted(str(p.relative_to(REPO / "templates")) for p in (REPO / "templates").rglob("*")
                       if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    for t in templates:
        assert f"/usr/lib/dbrs/installer/templates/{t}" in listing, t
    assert "/usr/lib/dbrs/installer/cli/__init__.py" in listing
    for table in sorted((REPO / "installer" / "data").glob("*.json")):  # the mongod option tables
        assert f"/usr/lib/dbrs/installer/data/{table.name}" in listing, table.name
    versions = [m.group(1) for p in listing if (m := re.match(r"/usr/lib/dbrs/pymongo-([\d.]+)\.dist-info/$", p))]
    assert len(versions) == 1 and tuple(map(int, versions[0].split("."))) >= (4, 4), versions
    # Nothing public: "installer" in dist-packages would clash with python3-installer.
    assert not [p for p in listing if "dist-packages" in p or "site-packages" in p]


def test_pure_python_nothing_compiled_nothing_started(listing, build):
    assert not [p for p in listing if p.endswith((".so", ".pyc", ".c")) or "__pycache__" in p]
    assert sh("dpkg-deb", "-f", str(build.deb), "Architecture").strip() == "all"
    # No packaged units (dbrs-install renders them per cluster) and no conffiles to go stale.
    assert not [p for p in listing if p.startswith(("/lib/systemd/", "/usr/lib/systemd/", "/etc/"))]
    assert "systemctl" not in (build.src / "debian/dbrs/DEBIAN/postinst").read_text()


def _dep_name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req, 1)[0].lower()


def _min_version(req: str) -> tuple[int, ...] | None:
    m = re.search(r">=\s*([\d.]+)", req.split(";")[0])
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


def test_depends_cover_every_runtime_dependency_of_pyproject(build):
    depends = sh("dpkg-deb", "-f", str(build.deb), "Depends")
    alts = [a.strip() for a in depends.split(",")]
    for req in PYPROJECT["project"]["dependencies"]:
        name = _dep_name(req)
        if name in VENDORED:
            continue
        deb = f"python3-{name}"
        found = [a for a in alts if re.search(rf"(^|\| ){re.escape(deb)}( \(|$| \|)", a)]
        assert found, f"{req}: no {deb} in Depends: {depends}"
        want = _min_version(req)
        m = re.search(rf"{re.escape(deb)} \(>= ([\d.]+)\)", found[0])
        assert m and (want is None or tuple(map(int, m.group(1).split("."))) >= want), (req, found[0])


@pytest.mark.parametrize("name", SCRIPTS)
def test_man_page_lists_every_option_of_help(name, extracted):
    """The page is generated from click's definitions; prove it matches what --help prints."""
    lib = extracted / "usr/lib/dbrs"
    launcher = (extracted / "usr/bin" / name).read_text().replace("/usr/lib/dbrs", str(lib))
    help_text = subprocess.run(["/usr/bin/python3", "-I", "-c", launcher, "--help"], capture_output=True,
                               text=True, env={"PATH": SYSTEM_PATH, "COLUMNS": "200"}).stdout
    options = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]+", help_text))
    assert "--help" in options and len(options) > 1, help_text
    page = subprocess.run(["zcat", str(extracted / f"usr/share/man/man1/{name}.1.gz")],
                          capture_output=True, text=True, check=True).stdout.replace("\\-", "-")
    assert not [o for o in options if o not in page]
    r = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z",
                        str(extracted / f"usr/share/man/man1/{name}.1.gz")],
                       capture_output=True, text=True, env={"PATH": SYSTEM_PATH, "LC_ALL": "C.UTF-8"})
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr


def test_maintainer_scripts_parse_as_posix_sh(build):
    scripts = sorted((build.src / "debian/dbrs/DEBIAN").glob("p*"))
    assert {p.name for p in scripts} >= {"postinst", "prerm", "postrm"}
    for p in scripts:
        subprocess.run(["sh", "-n", str(p)], check=True)
