"""Audit scoring throughput on the `small` knowledge model (probes per second, CPU).

The probe set is the audit's own: every probe kind derived from the graph for the first
`--edits` EVOKE edits, plus the whole-graph sample of `--sample` facts. The headline counts
the teacher-forced probes (every kind but stepwise multi-hop and fluency, which generate):
both metrics of each probe (P(expected) > P(rivals) and exact greedy match) come from one
packed forward pass. The full mix, generation included, is timed too, and so is the
one-row-per-pair scorer of the edit runner (`probe_success`) on the same probes, in the same
process, as the baseline. Each setting is timed `--repeats` times after a warm-up; the best
and the median are reported, with the load average (the machine is shared). bfloat16
autocast is reported with its agreement with float32 on every probe's outcome.

    nice -n 10 .venv/bin/python bench/audit_throughput.py [--edits 100] [--sample 1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from bench.common import machine, open_bench, today, update_results, write_json
from editor.probe_scoring import ScoringConfig, probe_success, score_probes
from kg.probes import ProbeConfig, audit_probes, sample_probes
from kg.view import GraphView

GENERATING = {"multi_hop_stepwise", "fluency"}


def _time(fn, repeats: int) -> list[float]:
    """Return the wall-clock seconds of `repeats` calls of `fn`."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    """Measure and write bench/results/audit_throughput.json and the results-page block."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--edits", type=int, default=100)
    parser.add_argument("--sample", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-results-page", action="store_true")
    load_before = os.getloadavg()[0]
    args, console, setup = open_bench(parser)
    model, tok = setup.model, setup.tokenizer
    view = GraphView(setup.store)
    t0 = time.perf_counter()
    changes = audit_probes(view, setup.cases[: args.edits], ProbeConfig())
    touched = {e for c in changes for e in c.entities.values()}
    probes = [p for c in changes for p in c.probes]
    probes += sample_probes(view, args.sample, 0, touched)
    derive_s = time.perf_counter() - t0
    forced = [p for p in probes if str(p.kind) not in GENERATING]
    console.print(
        f"{len(probes)} probes ({len(forced)} teacher-forced) for {len(changes)} edits "
        f"and {args.sample} sample facts, derived in {derive_s:.2f} s"
    )
    results: list[dict] = []
    outcomes: dict[str, list[tuple]] = {}
    for threads in args.threads:
        torch.set_num_threads(threads)
        for dtype in ("float32", "bfloat16"):
            config = ScoringConfig(dtype=dtype)
            score_probes(model, tok, forced[:300], config)  # warm-up
            scores: list = []
            secs = _time(
                lambda c=config, out=scores: out.append(score_probes(model, tok, forced, c)),
                args.repeats,
            )
            outcomes[dtype] = [(s.success, s.exact_match) for s in scores[-1]]
            results.append(_row("packed, teacher-forced kinds", threads, dtype, len(forced), secs))
            console.print(results[-1])
        secs = _time(lambda: score_probes(model, tok, probes), 1)
        results.append(
            _row("packed, full mix with generation", threads, "float32", len(probes), secs)
        )
        console.print(results[-1])
        base = forced[:3000]
        secs = _time(lambda b=base: probe_success(model, tok, b), 1)
        results.append(_row("baseline: one row per pair", threads, "float32", len(base), secs))
        console.print(results[-1])
    agree_success = sum(a[0] == b[0] for a, b in zip(*outcomes.values(), strict=True))
    agree_exact = sum(a[1] == b[1] for a, b in zip(*outcomes.values(), strict=True))
    best = max(
        (
            r
            for r in results
            if r["setting"].startswith("packed, teacher") and r["dtype"] == "float32"
        ),
        key=lambda r: r["best_probes_per_s"],
    )
    data = {
        "date": today(),
        "machine": machine(),
        "load_average_before": load_before,
        "load_average": os.getloadavg(),
        "niceness": os.nice(0),
        "probes": len(probes),
        "teacher_forced": len(forced),
        "edits": len(changes),
        "sample": args.sample,
        "derive_seconds": derive_s,
        "bf16_agreement": {
            "success": agree_success / len(forced),
            "exact_match": agree_exact / len(forced),
        },
        "results": results,
        "headline_float32": best,
    }
    write_json("audit_throughput", data)
    lines = [
        f"Measured {data['date']} on {data['machine'].rsplit(',', 1)[0]} (load average "
        f"{load_before:.1f} before the run, {data['load_average'][0]:.1f} at its end with its "
        f"own threads; niceness {data['niceness']}); "
        f"`small` model; {len(probes):,} audit probes of {len(changes)} EVOKE edits and "
        f"{args.sample:,} sample facts ({len(forced):,} teacher-forced). Best of "
        f"{args.repeats} runs (median in brackets).",
        "",
        "| scorer | threads | dtype | probes | probes/s |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['setting']} | {r['threads']} | {r['dtype']} | {r['n']:,} | "
            f"**{r['best_probes_per_s']:,.0f}** ({r['median_probes_per_s']:,.0f}) |"
        )
    lines += [
        "",
        f"bfloat16 agrees with float32 on {data['bf16_agreement']['success']:.2%} of probe "
        f"outcomes and {data['bf16_agreement']['exact_match']:.2%} of exact matches.",
    ]
    if not args.no_results_page:
        update_results("audit-throughput", "\n".join(lines))
    console.print("\n".join(lines))


def _row(setting: str, threads: int, dtype: str, n: int, secs: list[float]) -> dict:
    """Return one result row: best and median probes per second."""
    return {
        "setting": setting,
        "threads": threads,
        "dtype": dtype,
        "n": n,
        "seconds": secs,
        "best_probes_per_s": n / min(secs),
        "median_probes_per_s": n / statistics.median(secs),
    }


if __name__ == "__main__":
    main()
