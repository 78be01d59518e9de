#!/usr/bin/env python3
"""Generate dbrs' table of mongod options from MongoDB's own IDL option definitions.

mongod declares every config-file option in `configs:` blocks and every
server parameter in `server_parameters:` blocks of its `*.idl` files. This
reads those blocks and writes the JSON table `installer/data/` ships, so
dbrs refuses what mongod would refuse before anything on a host changes.

    # from a clone of mongodb/mongo, at a release tag (every *.idl under src/mongo):
    tools/mongod_options/generate.py --git-dir mongo/.git --ref r8.0.4 --version 8.0 \
        --out installer/data/mongod-options-8.0.json
    # from a folder laid out like the repository (src/mongo/...):
    tools/mongod_options/generate.py --dir /tmp/idl --version 8.0 --provenance files.json --out ...

Dev tool only (needs PyYAML); never imported by dbrs.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

# arg_vartype of a `configs:` entry -> the table's type
ARG_TYPES = {
    "Switch": "bool", "Bool": "bool", "Int": "int", "Long": "int", "Unsigned": "int", "UnsignedLongLong": "int",
    "Double": "float", "String": "string", "StringVector": "string_list", "StringMap": "map",
}


def cpp_type(vartype):
    """A server parameter's cpp_vartype -> the table's type ("any" when only the C++ code knows)."""
    if not vartype:
        return "any"
    t = vartype.lower()
    if "vector" in t:
        return "string"
    if "bool" in t:
        return "bool"
    if "double" in t:
        return "float"
    if re.search(r"int|long|size_t|unsigned", t):
        return "int"
    if "string" in t:
        return "string"
    return "any"


def _width(vartype):
    """An integer's width and sign beyond the default 32-bit signed int dbrs assumes: {"bits": 64}, {"min": 0}."""
    t = (vartype or "").lower()
    if not re.search(r"int|long|size_t|unsigned", t) or "vector" in t:
        return {}
    out = {"bits": 64} if re.search(r"long|int64|size_t", t) else {}
    if "unsigned" in t or "uint" in t or "size_t" in t:
        out["min"] = 0
    return out


def _as_list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _bounds(validator):
    out = {}
    if isinstance(validator, dict):
        for key, name in (("gte", "min"), ("lte", "max")):
            if isinstance(validator.get(key), (int, float)) and not isinstance(validator.get(key), bool):
                out[name] = validator[key]
    return out


def _release_build(entry):
    """Entries compiled only into debug builds or switched off are not in a released mongod."""
    cond = entry.get("condition") or {}
    if cond.get("expr") is False or cond.get("expr") == "false":
        return False
    return "kDebugBuild" not in str(cond.get("constexpr", ""))


def collect(doc, table):
    """Add one IDL document's yaml options and startup server parameters to `table`."""
    defaults = ((doc.get("global") or {}).get("configs") or {})
    default_source = _as_list(defaults.get("source"))
    for name, entry in (doc.get("configs") or {}).items():
        entry = entry or {}
        source = _as_list(entry.get("source")) or default_source or ["cli", "ini", "yaml"]
        if "yaml" not in source or "." not in name and name != "setParameter":
            continue
        if not _release_build(entry):
            continue
        kind = ARG_TYPES.get(entry.get("arg_vartype"), "any")
        table["options"][name] = {"type": kind, **_width(entry.get("arg_vartype")),
                                  **_bounds(entry.get("validator"))}
        for old in _as_list(entry.get("deprecated_name")):
            table["deprecated"][old] = name
    for name, entry in (doc.get("server_parameters") or {}).items():
        entry = entry or {}
        if "startup" not in _as_list(entry.get("set_at")) or not _release_build(entry):
            continue
        table["server_parameters"][name] = {"type": cpp_type(entry.get("cpp_vartype")),
                                            **_width(entry.get("cpp_vartype")),
                                            **_bounds(entry.get("validator"))}


def from_git(git_dir, ref):
    commit = subprocess.run(["git", "--git-dir", git_dir, "rev-parse", ref], check=True,
                            capture_output=True, text=True).stdout.strip()
    names = subprocess.run(["git", "--git-dir", git_dir, "ls-tree", "-r", "--name-only", commit, "src/mongo"],
                           check=True, capture_output=True, text=True).stdout.split()
    for path in sorted(n for n in names if n.endswith(".idl") and "/test" not in n and "_test" not in n):
        text = subprocess.run(["git", "--git-dir", git_dir, "show", f"{commit}:{path}"], check=True,
                              capture_output=True, text=True).stdout
        yield path, commit, text


def from_dir(root, provenance):
    root = Path(root)
    for p in sorted(root.rglob("*.idl")):
        path = str(p.relative_to(root))
        yield path, provenance.get(path, "unknown"), p.read_text()


def build(files, version, repository, ref):
    table = {"mongodb": version, "generated_by": "tools/mongod_options/generate.py",
             "source": {"repository": repository, "ref": ref, "files": {}},
             "options": {}, "deprecated": {}, "server_parameters": {}}
    for path, commit, text in files:
        doc = yaml.safe_load(text) or {}
        before = (len(table["options"]), len(table["server_parameters"]))
        collect(doc, table)
        if (len(table["options"]), len(table["server_parameters"])) != before:
            table["source"]["files"][path] = commit
    for key in ("options", "deprecated", "server_parameters"):
        table[key] = dict(sorted(table[key].items()))
    return table


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--git-dir", help="a mongodb/mongo git directory")
    src.add_argument("--dir", help="a folder holding src/mongo/**.idl")
    ap.add_argument("--ref", help="tag or commit (with --git-dir), e.g. r8.0.4")
    ap.add_argument("--provenance", help="JSON {path: commit} for --dir")
    ap.add_argument("--note", default="", help="free text kept in source.note")
    ap.add_argument("--drop", action="append", default=[], metavar="KEY=REASON",
                    help="leave an option out that the sources read are known to be stale about (kept in the table)")
    ap.add_argument("--version", required=True, choices=("7.0", "8.0"))
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if args.git_dir:
        if not args.ref:
            ap.error("--ref is required with --git-dir")
        files = from_git(args.git_dir, args.ref)
        ref = args.ref
    else:
        prov = json.loads(Path(args.provenance).read_text()) if args.provenance else {}
        files = from_dir(args.dir, prov)
        ref = args.ref or "stored versions (see files)"
    table = build(files, args.version, "mongodb/mongo", ref)
    if args.note:
        table["source"]["note"] = args.note
    for item in args.drop:
        key, _, reason = item.partition("=")
        table["options"].pop(key, None)
        table["source"].setdefault("dropped", {})[key] = reason
    Path(args.out).write_text(json.dumps(table, indent=1) + "\n")
    print(f"{args.out}: {len(table['options'])} options, {len(table['server_parameters'])} startup parameters "
          f"from {len(table['source']['files'])} files", file=sys.stderr)


if __name__ == "__main__":
    main()
