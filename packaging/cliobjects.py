"""The CLI's click objects, found through pyproject.toml's [project.scripts].

Man pages, completions and launchers are all derived from the same entry
points, so adding a command to pyproject.toml is the only step needed.
"""

from __future__ import annotations

import importlib
import sys
import tomllib
from pathlib import Path


def entry_points(pyproject: str | Path) -> dict[str, tuple[str, str]]:
    """{command: (module, attribute)} from [project.scripts]."""
    data = tomllib.loads(Path(pyproject).read_text())
    out = {}
    for name, target in data["project"]["scripts"].items():
        module, _, attr = target.partition(":")
        out[name] = (module.strip(), attr.strip())
    return out


def load(pyproject: str | Path, path: str | None = None) -> dict:
    """{command: click.Command}; ``path`` (the built private directory) goes first on sys.path."""
    import click

    if path:
        sys.path.insert(0, path)
    commands = {}
    for name, (module, attr) in entry_points(pyproject).items():
        obj = getattr(importlib.import_module(module), attr)
        if not isinstance(obj, click.Command):
            raise SystemExit(f"{name}: {module}:{attr} is not a click command; man pages and completion "
                             "are generated from click's own definitions")
        commands[name] = obj
    return commands
