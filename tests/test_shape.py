"""The package's shape (docs/architecture.md, docs/contributing.md): no module over 400
lines, no import circles, and each layer imports only what its ``__init__`` allows.

Imports are read from the source (every ``import`` and ``from ... import``, at module
level, in functions and under ``TYPE_CHECKING`` alike: each is an edge), so a cycle is
found even when it is broken at run time by importing late."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "argonfs"
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The argonfs modules ``name`` imports: for ``from a import b``, ``a.b`` when that is
    a module, else ``a``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                out.add(sub if sub in MODULES else source)
    return {m for m in out if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles() -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan's)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return found


def test_no_module_is_over_400_lines() -> None:
    long = {str(path.relative_to(ROOT.parent)): n for path in MODULES.values() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_no_import_circles() -> None:
    assert _cycles() == []


def test_the_graph_sees_imports() -> None:
    """The checks above would pass on an empty graph: the reader must see the edges."""
    assert "argonfs.store.engine.versions" in GRAPH["argonfs.store.repo.documents"]
    assert "argonfs.store.repo.repository" in GRAPH["argonfs.store"]


# (layer, what it must not import): the rules each layer's __init__ states
RULES = [
    ("argonfs.store.db", ["argonfs.store.engine", "argonfs.store.repo", "argonfs.codec", "argonfs.naming"]),
    ("argonfs.store.engine", ["argonfs.store.repo", "argonfs.naming"]),
    ("argonfs.store", ["argonfs.fs", "argonfs.remote", "argonfs.capture", "argonfs.cli", "argonfs.ml", "argonfs.daemon", "argonfs.console"]),
    ("argonfs.console", ["argonfs.cli", "argonfs.fs", "argonfs.daemon", "argonfs.ml"]),
    ("argonfs.codec", ["argonfs.store", "argonfs.fs", "argonfs.remote"]),
    ("argonfs.naming", ["argonfs.store", "argonfs.fs", "argonfs.remote"]),
    ("argonfs.snapshot", ["argonfs.store", "argonfs.fs", "argonfs.remote"]),
]


@pytest.mark.parametrize(("layer", "forbidden"), RULES, ids=[layer for layer, _ in RULES])
def test_layers_import_downwards(layer: str, forbidden: list[str]) -> None:
    def within(module: str, package: str) -> bool:
        return module == package or module.startswith(package + ".")

    broken = sorted((m, dep) for m, deps in GRAPH.items() if within(m, layer) for dep in deps if any(within(dep, f) for f in forbidden))
    assert broken == []
