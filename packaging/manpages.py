"""Generate section-1 man pages from the CLI's own click definitions.

Every word comes from what ``--help`` prints (the command's help text, its
usage line and click's own option help records), so the pages never drift
from the code. Subcommands of a group get a subsection each. The date is
SOURCE_DATE_EPOCH (set by dpkg from debian/changelog) for reproducible builds.

usage: manpages.py [--path LIBDIR] --out DIR PYPROJECT
"""

from __future__ import annotations

import argparse
import inspect
import os
import time
from pathlib import Path

import click

from cliobjects import load


def esc(text: str) -> str:
    """Roff-escape running text: backslashes, and control characters at line starts."""
    text = text.replace("\\", "\\e")
    return "\n".join("\\&" + l if l[:1] in (".", "'") else l for l in text.split("\n"))


def opt(text: str) -> str:
    """Option names and usage: '-' is a real minus there (copy-pasteable)."""
    return esc(text).replace("-", "\\-")


def paragraphs(help_text: str) -> list[str]:
    """click's help text as roff: ``\\f`` ends it, ``\\b`` marks a block click does not rewrap."""
    text = inspect.cleandoc(help_text or "").split("\f", 1)[0]
    out = []
    for para in text.split("\n\n"):
        if not para.strip():
            continue
        if para.startswith("\b\n"):
            out.append(".PP\n.nf\n" + esc(para[2:]) + "\n.fi")
        else:
            out.append(".PP\n" + esc(" ".join(para.split())))
    return out


def usage(cmd: click.Command, ctx: click.Context) -> str:
    return " ".join(cmd.collect_usage_pieces(ctx))


def options(cmd: click.Command, ctx: click.Context) -> list[str]:
    out = []
    for param in cmd.get_params(ctx):
        rec = param.get_help_record(ctx)
        if rec:
            out.append(".TP\n.B " + opt(rec[0]) + "\n" + esc(" ".join(rec[1].split()) if rec[1] else ""))
    return out


def subcommands(group: click.Group, ctx: click.Context, level: int = 1) -> list[str]:
    out = []
    for name in group.list_commands(ctx):
        sub = group.get_command(ctx, name)
        if sub is None or sub.hidden:
            continue
        sctx = click.Context(sub, info_name=name, parent=ctx)
        out.append(".SS " + opt(sctx.command_path))
        out.append(".B " + opt(sctx.command_path) + "\n" + opt(usage(sub, sctx)))
        out += paragraphs(sub.help or sub.short_help or "")
        out += options(sub, sctx)
        if isinstance(sub, click.Group):
            out += subcommands(sub, sctx, level + 1)
    return out


def page(name: str, cmd: click.Command, version: str, date: str, others: list[str]) -> str:
    ctx = click.Context(cmd, info_name=name)
    short = cmd.get_short_help_str(limit=80).rstrip(".")
    lines = [
        f'.TH {opt(name.upper())} 1 "{date}" "dbrs {esc(version)}" "User Commands"',
        ".SH NAME", f"{opt(name)} \\- {esc(short)}",
        ".SH SYNOPSIS", ".B " + opt(name) + "\n" + opt(usage(cmd, ctx)),
        ".SH DESCRIPTION", *paragraphs(cmd.help or ""),
    ]
    opts = options(cmd, ctx)
    if opts:
        lines += [".SH OPTIONS", *opts]
    if isinstance(cmd, click.Group):
        lines += [".SH COMMANDS", *subcommands(cmd, ctx)]
    lines += [".SH SEE ALSO", ",\n".join(f".BR {opt(o)} (1)" for o in others + ["systemctl"])]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--path")
    ap.add_argument("--out", required=True)
    ap.add_argument("pyproject")
    a = ap.parse_args()
    commands = load(a.pyproject, a.path)
    import installer  # found through --path, as the commands were

    date = time.strftime("%Y-%m-%d", time.gmtime(int(os.environ.get("SOURCE_DATE_EPOCH", time.time()))))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, cmd in commands.items():
        others = [n for n in commands if n != name]
        (out / f"{name}.1").write_text(page(name, cmd, installer.__version__, date, others))


if __name__ == "__main__":
    main()
