"""`kgedit models calibrate NAME`: the model's edit point and settings from its own facts."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from api.cli_output import AsJson, console, fail, print_json, result
from workers.progress_bar import progress_bar


def _summary(calibration: dict[str, Any]) -> str:
    """Return the human lines of a stored calibration: the choice, its evidence, settings."""
    from editor.trace import TraceResult, format_table

    point = calibration["edit_point"]
    lines = [
        f"edit layer {calibration['edit_layer']}, {calibration['fact_token']} "
        f"(MLP peak: first subject token {point['first_peak']:.3f}, "
        f"last {point['last_peak']:.3f})",
        f"settings: {calibration['settings']}",
        f"sayable targets: tail NLL ≤ {calibration['say_nll']} nats/token",
        f"split: {calibration['split']}",
        "MLP indirect effect:",
        format_table(TraceResult(**calibration["trace"]), "mlp"),
    ]
    return "\n".join(lines)


def calibrate(
    name: str,
    queue: Annotated[
        bool, typer.Option("--queue", help="queue it on the model's worker instead of here")
    ] = False,
    show: Annotated[bool, typer.Option("--show", help="print the stored calibration")] = False,
    n_trace: Annotated[int | None, typer.Option(help="facts to trace (default 12)")] = None,
    n_dev: Annotated[int | None, typer.Option(help="dev edits per grid point (default 8)")] = None,
    samples: Annotated[int | None, typer.Option(help="noise samples per traced fact")] = None,
    as_json: AsJson = False,
) -> None:
    """Calibrate a registered model on its own graph facts and store the result with it."""
    from workers.calibration import execute_calibration, model_calibration, request_calibration
    from workers.errors import WorkersError

    options = {k: v for k, v in (("n_trace", n_trace), ("n_dev", n_dev), ("samples", samples))
               if v is not None}  # fmt: skip
    try:
        if show:
            stored = model_calibration(name)
            if stored is None:
                fail(f"model {name!r} has no calibration; run `kgedit models calibrate {name}`")
            result(stored, as_json, _summary(stored))
            return
        info = request_calibration(name, options=options, requested_by="cli", enqueue=queue)
        if queue:
            result(info.to_dict(), as_json, f"calibration {info.id} queued for {name}")
            return
        with progress_bar("calibrating", 1000) as update:
            info = execute_calibration(info.id, progress=lambda f, _m: update(int(f * 1000), 1000))
    except WorkersError as exc:
        fail(str(exc))
    if info.state != "succeeded":
        fail(f"calibration {info.state}: {info.error or info.message}")
    if as_json:
        print_json(info.to_dict())
        return
    console.print(_summary(info.result), markup=False, highlight=False)
