"""Each package of dentrix_zoho imports only downward: no import cycle among its modules.

The graph is read from the source with ``ast`` (every ``import`` and ``from ... import``, at
module level or inside a function, since a lazy import still ties the two modules together).
"""

from __future__ import annotations

import ast
from pathlib import Path

import dentrix_zoho

ROOT = Path(dentrix_zoho.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    found: set[str] = set()
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {n for n in names if n in modules and n != here}
    return found


def import_graph() -> dict[str, set[str]]:
    paths = sorted(ROOT.rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    return {_module_name(p): _imports(p, modules) for p in paths}


def cycles_within_packages(graph: dict[str, set[str]]) -> list[list[str]]:
    """Cycles among the modules of one package (a package's ``__init__`` re-exporting its modules is
    the package's face, not a layer, so edges into and out of ``__init__`` are left out)."""
    def package_of(name: str) -> str:
        return name.rpartition(".")[0]

    inits = {name for name in graph if any(other.startswith(name + ".") for other in graph)}
    edges = {m: {t for t in targets if t not in inits and package_of(t) == package_of(m)}
             for m, targets in graph.items() if m not in inits}
    found: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                found.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


# Cycles known today, each to be untangled by the module's owner; a new one fails the test, and so
# does a listed one that is gone (so the list cannot go stale).
KNOWN_CYCLES: set[frozenset[str]] = set()


def test_no_import_cycle_within_any_package() -> None:
    cycles = {frozenset(c) for c in cycles_within_packages(import_graph())}
    new = cycles - KNOWN_CYCLES
    assert not new, "import cycles: " + "; ".join(" -> ".join(sorted(c)) for c in new)
    assert not KNOWN_CYCLES - cycles, f"untangled, take off KNOWN_CYCLES: {KNOWN_CYCLES - cycles}"


def test_the_cycle_finder_sees_a_cycle() -> None:
    graph = {"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "p.d": {"p.a"}}
    assert cycles_within_packages(graph) == [["p.a", "p.b", "p.c", "p.a"]]


def test_lazy_imports_count() -> None:
    graph = import_graph()
    # owners.py imports shaped.py inside a function: still an edge.
    assert "dentrix_zoho.load.shaped" in graph["dentrix_zoho.load.owners"]
