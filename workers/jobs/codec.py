"""Strict conversion between plain JSON data and the frozen dataclasses of `contracts`.

`to_plain` turns a dataclass (nested dataclasses, tuples, enums) into JSON-ready data;
`from_plain` reads it back, checking every field's type and refusing unknown fields, and
reports the path of the first problem (``requests[3].neighbours[0].prompt: expected a
string, got int``). Values are only ever data; nothing is evaluated.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from enum import Enum
from typing import Any, TypeVar, get_args, get_origin

from workers.errors import InvalidInputError

T = TypeVar("T")
_NONE = type(None)


def to_plain(value: Any) -> Any:
    """Return JSON-ready data (dicts, lists, str, numbers, bool, None) for `value`."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    return value


def _fail(path: str, message: str) -> InvalidInputError:
    """Return the error for a bad value at `path`."""
    return InvalidInputError(f"{path or 'payload'}: {message}")


def _kind(value: Any) -> str:
    """Return the JSON name of a value's type, for messages."""
    names = {str: "string", bool: "boolean", int: "integer", float: "number", _NONE: "null"}
    return names.get(type(value), "array" if isinstance(value, list) else type(value).__name__)


def _union(hint: Any, value: Any, path: str) -> Any:
    """Read a value of a union type: the first member that accepts it."""
    options = get_args(hint)
    if value is None:
        if _NONE in options:
            return None
        raise _fail(path, "must not be null")
    errors = []
    for option in options:
        if option is _NONE:
            continue
        try:
            return read_value(option, value, path)
        except InvalidInputError as exc:
            errors.append(str(exc))
    raise InvalidInputError(errors[0] if len(errors) == 1 else f"{path}: no allowed type matches")


def read_value(hint: Any, value: Any, path: str) -> Any:
    """Read `value` as type `hint`; raise `InvalidInputError` naming `path` when it is not."""
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return _union(hint, value, path)
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint):
        return from_plain(hint, value, path)
    if isinstance(hint, type) and issubclass(hint, Enum):
        try:
            return hint(value)
        except ValueError:
            allowed = ", ".join(str(m.value) for m in hint)
            raise _fail(path, f"{value!r} is not one of {allowed}") from None
    if origin is tuple or origin is list:
        if not isinstance(value, list):
            raise _fail(path, f"expected an array, got {_kind(value)}")
        item = get_args(hint)[0] if get_args(hint) else Any
        out = [read_value(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise _fail(path, f"expected an object, got {_kind(value)}")
        _, item = get_args(hint) or (str, Any)
        return {str(k): read_value(item, v, f"{path}.{k}") for k, v in value.items()}
    if hint is str:
        if not isinstance(value, str):
            raise _fail(path, f"expected a string, got {_kind(value)}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise _fail(path, f"expected a boolean, got {_kind(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(path, f"expected an integer, got {_kind(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(path, f"expected a number, got {_kind(value)}")
        return float(value)
    raise _fail(path, f"unsupported field type {hint!r}")


def from_plain(cls: type[T], data: Any, path: str = "") -> T:
    """Build a `cls` dataclass from plain data, refusing unknown fields and wrong types."""
    if not isinstance(data, dict):
        raise _fail(path, f"expected an object, got {_kind(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise _fail(path, f"unknown field(s) {', '.join(map(repr, unknown))}")
    kwargs = {}
    for name, field in fields.items():
        if name not in data:
            missing = (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            )
            if missing:
                raise _fail(path, f"missing field {name!r}")
            continue
        kwargs[name] = read_value(hints[name], data[name], f"{path}.{name}" if path else name)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise _fail(path, str(exc)) from None
