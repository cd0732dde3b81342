"""Seconds per edit of the v*/z optimisation's exact savings, each on its own and together.

MEMIT and AlphaEdit edit `--edits` EVOKE requests of the knowledge model as one batch, ROME
edits `--rome-edits` requests one after another, each method once per setting, in the same
run and from the same weights (reverted after each run):

* today: the plain optimisation (`v_cache` off, `v_batch_tokens` 0);
* cached: lower layers run once, output head only at the loss's positions (`v_cache`);
* batched: the requests' z optimised stacked (`v_batch_tokens`; MEMIT and AlphaEdit);
* all: both.

For each: seconds per edit (the whole method, statistics cached beforehand), as process CPU
time (one thread: what the work costs, little moved by other processes on a shared machine)
and as wall time; settings run interleaved in `--rounds` rounds and the round with the least
CPU time counts; the speed ratio to today; cos(δ_setting, δ_today) per request (min and
median), which the exact savings must keep ≥ 0.999. Writes bench/results/batch_edit.json and
the `batch-edit` block of docs/results/batch-edit.md.

    OMP_NUM_THREADS=1 .venv/bin/python bench/batch_edit.py [--edits 30] [--rome-edits 10]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import edit_bench_parser, machine, open_bench, publish, today
from editor.loading import state_checksum
from editor.sequence import call_method
from workers.edit_run import select_known_edits

# setting -> (v_cache, requests batched)
SETTINGS: dict[str, tuple[bool, bool]] = {
    "today": (False, False),
    "cached": (True, False),
    "batched": (False, True),
    "all": (True, True),
}
ROME_SETTINGS = ("today", "cached")


def _deltas(method: str, infos: list[dict[str, Any]]) -> list[torch.Tensor]:
    """Return each request's δ (d,) from a method's infos."""
    if method == "rome":
        return [(i["v_star"] - i["m0"]).float() for i in infos]
    return [t["delta"].float() for t in infos[0]["targets"]]


def _steps(method: str, infos: list[dict[str, Any]]) -> list[int]:
    """Return each request's number of optimisation steps."""
    if method == "rome":
        return [len(i["losses"]) for i in infos]
    return [len(t["losses"]) for t in infos[0]["targets"]]


def run_setting(setup: Any, method: str, requests: list, setting: dict[str, Any]) -> dict:
    """Edit `requests` with `method` under one setting; return seconds, δs and steps."""
    model, tok = setup.model, setup.tokenizer
    ready = setup.prepare(method, setting)  # statistics and templates cached after the first
    base = state_checksum(model)
    batches = [requests] if ready.method.batched else [[r] for r in requests]
    deltas, infos = [], []
    t0, c0 = time.perf_counter(), time.process_time()
    for batch in batches:
        d, i = call_method(ready.method, model, tok, batch, ready.hparams, **ready.resources)
        deltas += d
        infos += i
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    for delta in reversed(deltas):
        delta.revert(model)
    if state_checksum(model) != base:
        raise RuntimeError(f"{method}: reverting did not restore the weights")
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "deltas": _deltas(method, infos),
        "steps": _steps(method, infos),
    }


def compare(method: str, runs: dict[str, dict], n: int) -> list[dict]:
    """Return one row per setting: seconds per edit, ratio and cos(δ) against today."""
    today_run = runs["today"]
    rows = []
    for name, run in runs.items():
        cos = [
            float(torch.nn.functional.cosine_similarity(a, b, dim=0))
            for a, b in zip(run["deltas"], today_run["deltas"], strict=True)
        ]
        rows.append(
            {
                "method": method,
                "setting": name,
                "edits": n,
                "seconds_per_edit": run["seconds"] / n,
                "speed_ratio": today_run["seconds"] / run["seconds"],
                "cpu_seconds_per_edit": run["cpu_seconds"] / n,
                "cpu_speed_ratio": today_run["cpu_seconds"] / run["cpu_seconds"],
                "cos_min": min(cos),
                "cos_median": statistics.median(cos),
                "mean_steps": statistics.mean(run["steps"]),
            }
        )
    return rows


def main() -> None:
    """Run the benchmark and write its JSON and results-page table."""
    parser = edit_bench_parser(__doc__, 30)
    parser.add_argument("--rome-edits", type=int, default=10)
    parser.add_argument("--batch-tokens", type=int, default=8192)
    parser.add_argument("--methods", default="memit,alphaedit,rome")
    parser.add_argument("--rounds", type=int, default=2)
    args, console, setup = open_bench(parser)
    n_max = max(args.edits, args.rome_edits)
    edits = select_known_edits(setup.model, setup.tokenizer, setup.cases, n_max)
    rows: list[dict] = []
    for method in args.methods.split(","):
        n = args.rome_edits if method == "rome" else args.edits
        names = ROME_SETTINGS if method == "rome" else tuple(SETTINGS)
        run_setting(setup, method, edits[:1], {"v_cache": False})  # warm-up, not measured
        runs: dict[str, dict] = {}
        for round_ in range(args.rounds):  # settings interleaved; the fastest round counts
            for name in names:
                cache, batched = SETTINGS[name]
                setting: dict[str, Any] = {"v_cache": cache}
                if method != "rome":
                    setting["v_batch_tokens"] = args.batch_tokens if batched else 0
                run = run_setting(setup, method, edits[:n], setting)
                if name not in runs or run["cpu_seconds"] < runs[name]["cpu_seconds"]:
                    runs[name] = run
                console.print(f"{method} {name} round {round_}: {run['seconds'] / n:.3f} s/edit")
        rows += compare(method, runs, min(n, len(edits)))
    data = {
        "date": today(),
        "machine": machine(),
        "preset": args.preset,
        "batch_tokens": args.batch_tokens,
        "rounds": args.rounds,
        "load": os.getloadavg(),
        "rows": rows,
    }
    table = (
        f"Measured {data['date']} on {data['machine']}; `{args.preset}` model, EVOKE edits the "
        f"model knows; batches of at most {args.batch_tokens:,} padded tokens; least CPU time of "
        f"{args.rounds} interleaved rounds; load average at the end "
        f"{data['load'][0]:.1f} / {data['load'][1]:.1f} / {data['load'][2]:.1f}.\n\n"
        "| method | setting | edits | CPU s per edit | speed ratio (CPU) | wall s per edit "
        "| speed ratio (wall) | cos(δ) min / median | mean steps |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        + "".join(
            f"| {r['method']} | {r['setting']} | {r['edits']} | {r['cpu_seconds_per_edit']:.3f} "
            f"| {r['cpu_speed_ratio']:.2f}× | {r['seconds_per_edit']:.3f} "
            f"| {r['speed_ratio']:.2f}× | {r['cos_min']:.6f} / {r['cos_median']:.6f} "
            f"| {r['mean_steps']:.1f} |\n"
            for r in rows
        )
    )
    publish(console, "batch-edit", data, table, not args.no_results_page)


if __name__ == "__main__":
    main()
