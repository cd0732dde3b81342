"""Progress bars for long command-line steps (rich), shared by the CLI and the demo."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

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
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(description, total=total, info="")

        def update(done: int, total_: int, *info: float) -> None:
            text = f"loss {info[0]:.3f}" if info else ""
            bar.update(task, completed=done, total=total_, info=text)

        yield update
