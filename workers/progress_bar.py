"""Progress bars for long CLI steps (rich), drawn on stderr so stdout keeps only the result."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[..., None]]:
    """Yield `update(done, total, *info)`, which moves a rich progress bar."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total, info="")

        def update(done: int, total_: int, *info: float) -> None:
            text = f"loss {info[0]:.3f}" if info else ""
            bar.update(task, completed=done, total=total_, info=text)

        yield update
