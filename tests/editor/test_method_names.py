"""No registered method is named outside its own module and the registry.

A method is one plug-in (`editor.methods.EditMethod`): everything the service needs to know
about it is declared in its module's registration. So the packages that run methods
(contracts, kg, workers, api, kgedit and the rest of editor) must not name one, neither as a string
literal nor inside an identifier (`apply_rome`, `if method == "dike"`, `REBUILDERS =
{"alphaedit": ...}`); defaults come from `default_method(kind)`. Tests and benchmarks may name
methods: tests check methods one by one, benchmarks compare named methods.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import editor.methods as registry

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("contracts", "kg", "workers", "api", "editor", "kgedit")
# Where a method may be named, each with its reason.
ALLOWED = {
    # the registry declares the default methods
    "editor/methods/registry.py": "the registry",
    # the one import line that registers every method module
    "editor/methods/__init__.py": "the registry's import list",
}


def _method_modules() -> set[str]:
    """Return the repository paths of the modules that define a registered method."""
    out = set()
    for name in registry.names(None):
        module = sys.modules[registry.get(name).apply.__module__]
        out.add(Path(module.__file__).resolve().relative_to(REPO).as_posix())
    return out


def _tokens(identifier: str) -> list[str]:
    """Return the lower-case words of an identifier (snake_case, CamelCase, dotted)."""
    words = []
    for part in re.split(r"[._]+", identifier):
        words += re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", part)
    return [w.lower() for w in words]


def _names_in(identifier: str, methods: list[str]) -> list[str]:
    """Return the methods whose words appear in order, adjacent, inside the identifier."""
    words = _tokens(identifier)
    hits = []
    for method in methods:
        need = method.split("-")
        if any(words[i : i + len(need)] == need for i in range(len(words))):
            hits.append(method)
    return hits


def _identifiers(node: ast.AST) -> list[str]:
    """Return the identifiers a node introduces or refers to."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.arg):
        return [node.arg]
    if isinstance(node, ast.alias):
        return [node.name, node.asname or ""]
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""]
    if isinstance(node, ast.keyword):
        return [node.arg or ""]
    return []


def scan(source: str, methods: list[str]) -> list[tuple[int, str, str | None]]:
    """Return (line, what, enclosing top-level function) for each place a method is named."""
    tree = ast.parse(source)
    hits = []
    for top in tree.body:
        owner = top.name if isinstance(top, ast.FunctionDef | ast.ClassDef) else None
        for node in ast.walk(top):
            if isinstance(node, ast.Constant) and node.value in methods:
                hits.append((node.lineno, repr(node.value), owner))
            for ident in _identifiers(node):
                for method in _names_in(ident, methods):
                    hits.append((getattr(node, "lineno", top.lineno), f"{ident} ({method})", owner))
    return hits


def test_the_scanner_finds_literals_and_identifiers() -> None:
    methods = ["rome", "lti-rome", "dike"]
    source = (
        'def apply_rome(x):\n    return x == "dike"\n'
        "from editor.methods.lti import LtiRomeHyperParams\n"
        "chromed = 'romeo'\n"
    )
    found = [(line, owner) for line, _, owner in scan(source, methods)]
    assert (1, "apply_rome") in found and (2, "apply_rome") in found
    assert any(line == 3 for line, _ in found)
    assert not any(line == 4 for line, _ in found)  # words, not substrings


def test_no_method_is_named_outside_its_module_and_the_registry() -> None:
    methods = registry.names(None)
    own = _method_modules()
    assert len(own) >= 8
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel in own or rel in ALLOWED:
                continue
            for line, what, owner in scan(path.read_text(encoding="utf-8"), methods):
                if f"{rel}:{owner}" not in ALLOWED:
                    found.append(f"{rel}:{line}: {what}")
    assert not found, "methods named outside their modules:\n" + "\n".join(found)
