"""The layering of installer/ (ARCHITECTURE.md), enforced from the code itself.

Every import is read from the AST, those inside functions included, and resolved to a
module of this package; the rules below are the ones ARCHITECTURE.md states.
"""

import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "installer"

LEAVES = {"errors", "paths", "fsutil", "locks", "render", "tools", "secrets", "systemd", "machine"}
SPEC_LEVEL = {"spec", "spec_fields", "spec_checks", "mongod_options", "pki", "tls", "generation", "upgrade",
              "rotation"}
# Who may import whom, by layer. A layer may import itself and everything listed.
ALLOWED = {
    "leaf": {"leaf"},
    "spec": {"leaf", "spec"},
    "host": {"leaf", "spec", "host"},
    "replset": {"leaf", "spec", "replset"},
    "backup": {"leaf", "spec", "replset", "backup"},
    "action": {"leaf", "spec", "host", "replset", "backup", "action"},
    "cli": {"leaf", "spec", "host", "replset", "backup", "action", "cli"},
}
LAZY_OK = {"pymongo", "bson", "jinja2", "cryptography"}


def _modules():
    for path in sorted(PKG.rglob("*.py")):
        parts = path.relative_to(PKG.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def layer(mod):
    parts = mod.split(".")[1:]
    if not parts:
        return "action"
    if parts[0] in {"host", "replset", "backup", "cli"}:
        return parts[0]
    if parts[0] in LEAVES:
        return "leaf"
    if parts[0] in SPEC_LEVEL:
        return "spec"
    return "action"


def _resolve(mod, path, node):
    """Modules of this package that `node` imports, as dotted names."""
    is_pkg = path.name == "__init__.py"
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    out = []
    if isinstance(node, ast.Import):
        out = [a.name for a in node.names]
    else:
        if node.level:
            anchor = base[: len(base) - (node.level - 1)]
            target = ".".join(anchor + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        out = [target]
        for a in node.names:
            out.append(f"{target}.{a.name}")
    return out


def graph():
    mods = dict(_modules())
    edges = {m: set() for m in mods}
    lazy = []
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            names = _resolve(mod, path, node)
            hits = {n for n in names if n in mods and n != mod}
            edges[mod] |= hits
            if hits and node.col_offset > 0 and layer(mod) != "cli":
                lazy.append((mod, node.lineno, sorted(hits)))
    return mods, edges, lazy


def test_no_import_cycle():
    _, edges, _ = graph()
    index, low, stack, on, sccs, n = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    for v in edges:
        if v not in index:
            strong(v)
    # a package importing its own children (and the children the package) is not a cycle we mean
    real = [c for c in sccs if not all(x.startswith(min(c, key=len) + ".") or x == min(c, key=len) for x in c)]
    assert not real, f"import cycles: {real}"


def test_layers_import_only_downward():
    _, edges, _ = graph()
    bad = []
    for mod, targets in edges.items():
        for t in targets:
            if layer(t) not in ALLOWED[layer(mod)] and t != "installer":
                bad.append(f"{mod} ({layer(mod)}) imports {t} ({layer(t)})")
    assert not bad, "\n".join(sorted(bad))


def test_no_sibling_import_hidden_in_a_function():
    """Only the CLI edge defers its imports (so `dbrs --help` loads the parser alone)."""
    _, _, lazy = graph()
    assert not lazy, "\n".join(f"{m}:{line} imports {t} inside a function" for m, line, t in lazy)


def test_modules_stay_readable():
    long = [f"{m}: {len(p.read_text().splitlines())} lines" for m, p in _modules()
            if len(p.read_text().splitlines()) > 440]
    assert not long, "\n".join(long)


def test_the_checks_see_what_they_check():
    """The walker resolves relative imports and marks the ones inside functions (else the tests above pass on nothing)."""
    mod, path = "installer.backup.full", PKG / "backup" / "full.py"
    top, inner = ast.parse("from ..replset import connection\ndef f():\n    from . import catalog\n").body
    assert _resolve(mod, path, top) == ["installer.replset", "installer.replset.connection"]
    lazy = inner.body[0]
    assert lazy.col_offset > 0 and _resolve(mod, path, lazy)[-1] == "installer.backup.catalog"
    assert layer("installer.backup.full") == "backup" and layer("installer.host.apply") == "host"
    assert layer("installer.fsutil") == "leaf" and layer("installer.install") == "action"
    mods, edges, _ = graph()
    assert "installer.replset.connection" in edges["installer.backup.source"]


def test_every_module_imports():
    """A merge that moves a name (compare went from host.items to host.registry) broke a module only its own
    command loads: every module must import, in a fresh interpreter so no earlier import hides it."""
    names = sorted(name for name, _ in _modules())
    code = "import importlib, sys\nbad = []\nfor n in sys.argv[1:]:\n    try:\n        importlib.import_module(n)\n" \
           "    except Exception as e:\n        bad.append(f'{n}: {type(e).__name__}: {e}')\nprint('\\n'.join(bad))"
    r = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True, cwd=PKG.parent, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "", r.stdout + r.stderr
