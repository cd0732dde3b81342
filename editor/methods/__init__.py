"""Registry of editing and unlearning methods; each lives in one small module of this package.

Unlearning methods (`kind="unlearn"`) register in the same table: their `apply` takes
`UnlearnRequest`s instead of `EditRequest`s and returns deltas the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from editor.errors import EditorError


@dataclass(frozen=True)
class EditMethod:
    """A registered method: its hyper-parameter class and `apply(model, tok, requests, hp, ...)`.

    `apply` returns `(deltas, infos)`: the applied deltas in order and one info dict each.
    A `batched` method edits all requests of one call as one batch (one delta); the others
    apply them one after another (one delta each). `context(model, tok, hp, model_key)`
    returns the method's context templates.
    """

    name: str
    hparams_cls: type
    apply: Callable[..., tuple[list[Any], list[dict[str, Any]]]]
    needs_second_moment: bool = False
    description: str = ""
    batched: bool = False
    context: Callable[..., list[str]] | None = None
    kind: str = "edit"  # "edit" (EditRequest) or "unlearn" (UnlearnRequest)


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
        known = ", ".join(names(None))
        raise EditorError(f"unknown method {name!r}; known: {known}") from None


def names(kind: str | None = "edit") -> list[str]:
    """Return the registered names of one kind ("edit", "unlearn"; None: all), sorted."""
    return sorted(n for n, m in _REGISTRY.items() if kind is None or m.kind == kind)


def method_layers(hparams: Any) -> tuple[int, ...]:
    """Return the layers a method's hyper-parameters edit (`layers`, else `layer`)."""
    layers = getattr(hparams, "layers", None)
    if layers is None:
        layers = (hparams.layer,)
    return tuple(int(x) for x in layers)


# Each module registers itself on import.
from editor.methods import (  # noqa: E402
    alphaedit,
    dike,
    ft,
    glame,
    gradient_unlearning,
    lti,
    memit,
    rocr,
    rome,
    uipe,
)

__all__ = [
    "EditMethod",
    "alphaedit",
    "dike",
    "ft",
    "get",
    "glame",
    "gradient_unlearning",
    "lti",
    "memit",
    "method_layers",
    "names",
    "register",
    "rocr",
    "rome",
    "uipe",
]
