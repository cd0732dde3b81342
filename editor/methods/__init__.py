"""Registry of editing methods; each method lives in one small module of this package."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from editor.errors import EditorError


@dataclass(frozen=True)
class EditMethod:
    """A registered method: its hyper-parameter class and `apply(model, tok, requests, hp, ...)`.

    `apply` returns `(deltas, infos)`: the applied deltas in order and one info dict each.
    """

    name: str
    hparams_cls: type
    apply: Callable[..., tuple[list[Any], list[dict[str, Any]]]]
    needs_second_moment: bool = False
    description: str = ""


_REGISTRY: dict[str, EditMethod] = {}


def register(method: EditMethod) -> EditMethod:
    """Add a method to the registry (its name must be new) and return it."""
    if method.name in _REGISTRY and _REGISTRY[method.name] is not method:
        raise EditorError(f"edit method {method.name!r} is already registered")
    _REGISTRY[method.name] = method
    return method


def get(name: str) -> EditMethod:
    """Return the method called `name`, or raise `EditorError` listing the known names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise EditorError(f"unknown edit method {name!r}; known: {', '.join(names())}") from None


def names() -> list[str]:
    """Return the registered method names, sorted."""
    return sorted(_REGISTRY)


from editor.methods import rome  # noqa: E402  (registers itself)

__all__ = ["EditMethod", "get", "names", "register", "rome"]
