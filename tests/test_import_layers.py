"""The package layers hold and no module imports itself round a circle.

Layers, lowest first: `contracts`; `kg` and `editor` (which never import each other);
`workers`; `api`; `kgedit`, the Python API (docs/python.md). A module may import its own
package or a lower layer only. Every import counts, including those inside functions and
under `TYPE_CHECKING`, so a circle cannot hide behind a function-local import.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYER = {"contracts": 0, "kg": 1, "editor": 1, "workers": 2, "api": 3, "kgedit": 4}


def _modules() -> dict[str, Path]:
    """Return {dotted module name: file} for every module of the layered packages."""
    out = {}
    for package in LAYER:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Return the project modules that the module `name` imports anywhere in its file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import sub` names the submodule when there is one
            targets = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
            targets = targets or [base]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import a.b.c` of a non-module name
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    """Return the import graph of the layered packages' modules."""
    modules = _modules()
    return {name: _imported(name, path, modules) for name, path in modules.items()}


def _layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Return `a -> b` for every import of a higher layer or across kg/editor."""
    bad = []
    for source, targets in graph.items():
        top = source.split(".")[0]
        for target in sorted(targets):
            other = target.split(".")[0]
            if other != top and LAYER[other] >= LAYER[top]:
                bad.append(f"{source} -> {target}")
    return bad


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        """Number `node`, visit its successors and pop a component rooted at it."""
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def test_the_scanner_sees_function_local_and_relative_imports(tmp_path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pkg.b import g\n    return g\n")
    (pkg / "b.py").write_text("from . import a\nfrom .a import f as g\n")
    modules = {"pkg": pkg / "__init__.py", "pkg.a": pkg / "a.py", "pkg.b": pkg / "b.py"}
    graph = {name: _imported(name, path, modules) for name, path in modules.items()}
    assert graph == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}}
    assert _cycles(graph) == [["pkg.a", "pkg.b"]]
    assert _layer_violations({"kg.x": {"editor.y"}, "api.z": {"kg.x"}}) == ["kg.x -> editor.y"]


def test_no_module_imports_a_higher_layer_or_across_kg_and_editor() -> None:
    assert _layer_violations(_graph()) == []


def test_no_import_circles() -> None:
    assert _cycles(_graph()) == []
