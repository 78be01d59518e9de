"""Every Python package under installer/ ships: pyproject lists packages by hand, and a subpackage missing
there installs a dbrs that fails on its first import of it (the .deb and the wheel both build from the list)."""

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def unlisted(pyproject_text, root=REPO / "installer"):
    listed = set(tomllib.loads(pyproject_text)["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root.parent).parts) for p in root.rglob("__init__.py")}
    return sorted(found - listed)


def test_every_installer_package_is_in_pyproject():
    assert unlisted((REPO / "pyproject.toml").read_text()) == []


def test_a_subpackage_left_out_is_caught():
    text = (REPO / "pyproject.toml").read_text().replace('"installer.replset", ', "")
    assert unlisted(text) == ["installer.replset"]
