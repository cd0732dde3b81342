"""Seconds per ROME edit on the `small` knowledge model on CPU, split by step.

Steps: second-moment statistics (once per layer, measured cold here by bypassing the cache),
key (prefix-averaged k̄ and C⁻¹k̄), v* optimisation, and the rank-one solve. Each edit starts
from the base weights (reverted afterwards). Writes bench/results/edit_latency.json and the
results-page table between the `edit-latency` markers.

    .venv/bin/python bench/edit_latency.py [--edits 20] [--preset small]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import edit_bench_parser, machine, open_bench, publish, today
from editor.methods.rome import apply_rome
from editor.prepare import corpus_statements
from editor.stats import layer_second_moment
from workers.edit_run import select_known_edits


def main() -> None:
    """Run the benchmark and write its JSON and results-page table."""
    args, console, setup = open_bench(edit_bench_parser(__doc__, 20))
    model, tok = setup.model, setup.tokenizer
    ready = setup.prepare("rome")  # as the service prepares it
    hp, ctx = ready.hparams, ready.context_templates
    sm = ready.second_moment(hp.layer)

    t0 = time.perf_counter()
    layer_second_moment(
        model,
        tok,
        hp.layer,
        corpus_statements(setup.facts),
        n_samples=hp.mom2_n_samples,
        cache_dir=None,
    )
    stats_cold = time.perf_counter() - t0

    edits = select_known_edits(model, tok, setup.cases, args.edits)
    rows = []
    for request in edits:
        t0 = time.perf_counter()
        delta, info = apply_rome(model, tok, request, hp, sm, context_templates=ctx)
        total = time.perf_counter() - t0
        delta.revert(model)
        rows.append({**info["timings"], "total": total, "v_steps": len(info["losses"])})
    med = {k: statistics.median(r[k] for r in rows) for k in ("key", "v_star", "solve", "total")}
    steps = statistics.median(r["v_steps"] for r in rows)
    data = {
        "date": today(),
        "machine": machine(),
        "preset": args.preset,
        "layer": hp.layer,
        "edits": len(rows),
        "statistics_seconds_once": stats_cold,
        "statistics_keys": sm.count,
        "median_seconds": med,
        "median_v_steps": steps,
        "per_edit": rows,
    }
    table = (
        f"Measured {data['date']} on {data['machine']}; `{args.preset}` model, ROME at layer "
        f"{hp.layer}, median of {len(rows)} EVOKE edits (each from the base weights).\n\n"
        "| step | seconds |\n|---|---|\n"
        f"| second-moment statistics (once per layer, {sm.count:,} keys) "
        f"| {stats_cold:.2f} |\n"
        f"| key k̄ over {len(ctx)} context templates, C⁻¹k̄ | {med['key']:.3f} |\n"
        f"| v* optimisation (median {steps:.0f} steps) | {med['v_star']:.3f} |\n"
        f"| rank-one solve and apply | {med['solve']:.4f} |\n"
        f"| **total per edit** | **{med['total']:.3f}** |\n"
    )
    publish(console, "edit-latency", data, table, not args.no_results_page)


if __name__ == "__main__":
    main()
