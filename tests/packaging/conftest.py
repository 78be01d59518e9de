"""Packaging tier: build the .deb from this working tree once per session, for the build-output
tests (lintian, file layout) and the install test in a systemd-nspawn Debian 12 host.

Everything is skipped with one reason line where it cannot run: the build needs dpkg-buildpackage,
lintian and debian/control's Build-Depends; the install test also needs root and the test bed tools.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def _unbuildable() -> str | None:
    missing = [t for t in ("dpkg-buildpackage", "dpkg-checkbuilddeps", "lintian", "dpkg-deb")
               if shutil.which(t, path=SYSTEM_PATH) is None]
    if missing:
        return f"packaging tests need {', '.join(missing)} (apt: dpkg-dev lintian)"
    r = subprocess.run(["dpkg-checkbuilddeps"], cwd=REPO, capture_output=True, text=True,
                       env={**os.environ, "PATH": SYSTEM_PATH})
    if r.returncode != 0:
        return "packaging tests need the Build-Depends of debian/control: " + r.stderr.strip().splitlines()[-1]
    return None


_REASON = _unbuildable()


def pytest_collection_modifyitems(config, items):
    """Mark everything here ``packaging``; skip it all with one reason when the build cannot run."""
    here = str(Path(__file__).parent) + os.sep
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.packaging)
            if _REASON:
                item.add_marker(pytest.mark.skip(reason=_REASON))


def pytest_configure(config):
    config.addinivalue_line("markers", "packaging: builds the .deb (lintian, layout) and installs it in nspawn")


@dataclass
class Build:
    src: Path          # the copy of the tree that was built
    deb: Path
    changes: Path
    log: str


def tree_files() -> list[str]:
    """Tracked and untracked-but-not-ignored files: what a checkout of this tree would hold."""
    r = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                       cwd=REPO, capture_output=True, check=True)
    return sorted({f for f in r.stdout.decode().split("\0") if f and (REPO / f).is_file()})


@pytest.fixture(scope="session")
def build(tmp_path_factory) -> Build:
    """dpkg-buildpackage -us -uc -b on a copy of the tree (outputs land next to the copy, never in
    the repo's parent), with a python3 that always fails first on PATH: debian/rules must not use it."""
    base = tmp_path_factory.mktemp("deb")
    src = base / "dbrs"
    for f in tree_files():
        dst = src / f
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, dst)
    decoy = base / "decoy-bin"
    decoy.mkdir()
    for name in ("python3", "python3.11", "python"):
        (decoy / name).write_text("#!/bin/sh\necho 'decoy python3 on PATH was used' >&2\nexit 97\n")
        (decoy / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{decoy}:{os.environ.get('PATH', SYSTEM_PATH)}"}
    r = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    log = r.stdout + r.stderr
    assert r.returncode == 0, "dpkg-buildpackage failed:\n" + log[-4000:]
    debs = sorted(base.glob("dbrs_*_all.deb"))
    changes = sorted(base.glob("dbrs_*.changes"))
    assert len(debs) == 1 and len(changes) == 1, sorted(p.name for p in base.iterdir())
    return Build(src=src, deb=debs[0], changes=changes[0], log=log)
