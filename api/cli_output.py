"""The output convention of every `kgedit` command: results on stdout (one JSON document with
`--json`, readable lines or a table without), errors, progress and logs on stderr, files through
`-o/--output PATH`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

console = Console()
errors = Console(stderr=True)

AsJson = Annotated[bool, typer.Option("--json", help="print one JSON document on stdout")]
OutputPath = Annotated[Path | None, typer.Option("--output", "-o", help="write the result here")]


def fail(message: str) -> NoReturn:
    """Print an error on stderr (one line, never wrapped) and exit with status 2."""
    errors.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(2)


def read_json_file(path: Path, what: str = "valid JSON") -> Any:
    """Return the JSON document in `path`, or fail: no such file, or the file is not `what`."""
    if not path.is_file():
        fail(f"no such file: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        fail(f"{path} is not {what}: {str(exc).splitlines()[0]}")


def print_json(data: Any) -> None:
    """Print `data` as one JSON document on stdout (plain text: no colour, no wrapping)."""
    print(json.dumps(data, default=str, ensure_ascii=False))


def note(message: str) -> None:
    """Print a remark about the work (not its result) on stderr."""
    errors.print(message, soft_wrap=True)


def readable(value: Any) -> str:
    """Return a value as a reader writes it: `a 1, b 2` for a mapping, `x, y` for a list."""
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {readable(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple | set):
        return ", ".join(readable(v) for v in value) or "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def print_fields(data: Mapping[str, Any]) -> None:
    """Print a result's fields as `key: value` lines on stdout (nested values made readable)."""
    for key, value in data.items():
        console.print(f"{key.replace('_', ' ')}: {readable(value)}", markup=False, soft_wrap=True)


def result(data: Any, as_json: bool, line: str) -> None:
    """Print a result: `data` as JSON with `--json`, else the human `line` (plain text)."""
    if as_json:
        print_json(data)
    else:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
