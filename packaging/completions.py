"""Generate bash, zsh and fish completion scripts with click's own shell-completion support.

The scripts call the installed command back (``_DBRS_COMPLETE=bash_complete dbrs``),
so completions follow the installed CLI, including lazily loaded subcommands.

usage: completions.py [--path LIBDIR] --out DIR PYPROJECT
  -> DIR/bash/NAME, DIR/zsh/_NAME, DIR/fish/NAME.fish
"""

from __future__ import annotations

import argparse
from pathlib import Path

from click.shell_completion import get_completion_class

from cliobjects import load

FILENAMES = {"bash": "{}", "zsh": "_{}", "fish": "{}.fish"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--path")
    ap.add_argument("--out", required=True)
    ap.add_argument("pyproject")
    a = ap.parse_args()
    for name, cmd in load(a.pyproject, a.path).items():
        var = "_{}_COMPLETE".format(name.replace("-", "_").upper())  # click's default for prog_name
        for shell, pattern in FILENAMES.items():
            d = Path(a.out) / shell
            d.mkdir(parents=True, exist_ok=True)
            src = get_completion_class(shell)(cmd, {}, name, var).source()
            (d / pattern.format(name)).write_text(src if src.endswith("\n") else src + "\n")


if __name__ == "__main__":
    main()
