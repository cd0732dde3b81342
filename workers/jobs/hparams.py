"""Hyper-parameter overrides checked at submission: known names, field types, declared bounds.

A job's `hparams` override fields of its method's hyper-parameter dataclass. Each value must
have the field's type (read with the same strict reader as the rest of the payload) and lie
within the field's bounds, so a bad override is a 422 naming the field instead of an error in
the worker, and no override can make a loop run for days. Bounds are declared by field name
below; every other number must be finite and in `DEFAULT_BOUNDS`.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any

from editor.shapes import PRESET_KEY, SHAPES_BY_NAME
from workers.errors import InvalidInputError
from workers.jobs.codec import read_value

DEFAULT_BOUNDS = (0, 1_000_000)
MAX_STEPS = 10_000
MAX_TEXT = 10_000

# (lowest, highest) of the fields whose value sizes a loop or indexes the model.
BOUNDS: dict[str, tuple[float, float]] = {
    "v_num_grad_steps": (1, MAX_STEPS),
    "num_steps": (1, MAX_STEPS),
    "krd_steps": (1, MAX_STEPS),
    "epochs": (1, MAX_STEPS),
    "warmup_epochs": (0, MAX_STEPS),
    "batch_size": (1, 4096),
    "krd_batch_size": (1, 4096),
    "max_length": (1, 100_000),
    "mom2_n_samples": (1, 10_000_000),
    "subgraph_size": (1, MAX_STEPS),
    "gnn_layers": (1, 64),
    "gnn_dropout": (0, 1),
    "layer": (0, 1000),
    "layers": (0, 1000),
    "mid_layer": (0, 1000),
    "repr_layer": (0, 1000),
    "context_template_length_params": (1, 1000),
}


def _numbers(value: Any) -> list[float]:
    """Return every number inside a value (tuples and lists flattened; bools are not numbers)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _numbers(v)]
    return []


def _texts(value: Any) -> list[str]:
    """Return every string inside a value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _texts(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    return []


def check_value(name: str, hint: Any, value: Any) -> None:
    """Raise `InvalidInputError` naming `name` unless `value` has type `hint` and its bounds."""
    read_value(hint, value, f"hparams.{name}")
    low, high = BOUNDS.get(name, DEFAULT_BOUNDS)
    for number in _numbers(value):
        if not math.isfinite(number) or not low <= number <= high:
            raise InvalidInputError(f"hparams.{name}: {number!r} is outside {low}..{high}")
    for text in _texts(value):
        if len(text) > MAX_TEXT or not text.isprintable():
            raise InvalidInputError(
                f"hparams.{name}: texts must be printable and at most {MAX_TEXT} characters"
            )


def check_hparams(cls: type, overrides: dict[str, Any]) -> None:
    """Refuse overrides that are not fields of `cls`, or of the wrong type, or out of bounds."""
    if not isinstance(overrides, dict):
        raise InvalidInputError("hparams must be an object")
    overrides = dict(overrides)
    preset = overrides.pop(PRESET_KEY, None)
    if preset is not None and preset not in SHAPES_BY_NAME:
        raise InvalidInputError(
            f"hparams.{PRESET_KEY}: {preset!r} is not a known preset ({', '.join(SHAPES_BY_NAME)})"
        )
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise InvalidInputError(
            f"hparams: {', '.join(map(repr, unknown))} not in {cls.__name__} "
            f"(fields: {', '.join(sorted(fields))})"
        )
    hints = typing.get_type_hints(cls)
    for name, value in overrides.items():
        check_value(name, hints[name], value)
