"""The backup layer's rules, read from the code (issue #11): it never reaches up into the CLI or across into the
host layer, its modules import each other one way only, and no sibling import hides inside a function."""

import ast
from pathlib import Path

import installer

PKG = Path(installer.__file__).parent
BACKUP = PKG / "backup"
LAZY_OK = {"pymongo", "bson", "cryptography", "jinja2"}     # kept lazy so `dbrs --help` stays light
MAX_LINES = 500


def _imports(path):
    """(module imported, line, inside a function) for every import in `path`, relative ones resolved."""
    tree = ast.parse(path.read_text())
    pkg = ".".join(path.relative_to(PKG.parent).with_suffix("").parts[:-1])
    out = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                out.extend((a.name, child.lineno, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = pkg.split(".")[:len(pkg.split(".")) - child.level + 1]
                    base = ".".join(parts + ([child.module] if child.module else []))
                for a in child.names:
                    full = f"{base}.{a.name}"
                    out.append((full if _is_module(full) else base, child.lineno, in_function))
            visit(child, inner)

    visit(tree, False)
    return out


def _is_module(dotted):
    p = PKG.parent.joinpath(*dotted.split("."))
    return p.with_suffix(".py").exists() or (p / "__init__.py").exists()


def _backup_modules():
    return sorted(p for p in BACKUP.glob("*.py") if p.name != "__init__.py")


def test_backup_never_imports_the_cli_the_host_layer_or_the_install_step():
    bad = [f"{p.name}:{line} imports {mod}" for p in _backup_modules() for mod, line, _ in _imports(p)
           if mod.split(".")[:2] in (["installer", "cli"], ["installer", "host"], ["installer", "install"])]
    assert bad == []


def test_no_sibling_import_hides_inside_a_function():
    bad = [f"{p.name}:{line} imports {mod} inside a function" for p in _backup_modules()
           for mod, line, lazy in _imports(p)
           if lazy and mod.startswith("installer.backup")]
    assert bad == []


def test_the_backup_modules_import_each_other_without_a_cycle():
    graph = {p.stem: {m.split(".")[2] for m, _, _ in _imports(p) if m.startswith("installer.backup.")}
             for p in _backup_modules()}
    done, path = set(), []

    def walk(n):
        if n in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(n):] + [n]))
        if n in done:
            return
        path.append(n)
        for m in sorted(graph.get(n, ())):
            walk(m)
        path.pop()
        done.add(n)

    for n in graph:
        walk(n)


def test_no_backup_module_outgrows_one_noun():
    long = {p.name: n for p in _backup_modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_checks_see_what_they_check():
    """The walker resolves relative imports and sees imports inside functions (else the tests above pass on nothing)."""
    seen = {(m, lazy) for m, _, lazy in _imports(BACKUP / "full.py")}
    assert ("installer.backup.source", False) in seen and ("installer.tools", False) in seen
    assert any(m.startswith("installer.") and lazy for p in _backup_modules() for m, _, lazy in _imports(p))
