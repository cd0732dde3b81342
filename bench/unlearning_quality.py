"""Unlearning quality on EVOKE-graph concepts: forget and retain rates per form, the form gap,
seconds per request, for ROCR, GA, GradDiff and NPO with and without UIPE; TOFU forget
quality and utility from `bench/tofu.py`'s results when they exist.

    python bench/unlearning_quality.py [--limit 40] [--preset tiny-forms] [--concepts 10]

Writes bench/results/unlearning_quality.json and the results-page table between
`<!-- unlearning-quality:start -->` and `<!-- unlearning-quality:end -->`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from tqdm.auto import tqdm

from bench.common import RESULTS, machine, today, update_results, write_json
from editor.loading import state_checksum
from kg.related import RelatedConfig
from kg.unlearn_forms import FORMS, FormConfig
from workers.unlearn_run import (
    EXTRAPOLATIONS,
    choose_alpha,
    concept_bench,
    run_extrapolation_sweep,
    run_unlearning,
)

GRAD = ("ga", "graddiff", "npo")


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def main() -> None:
    """Run every method on the same concepts and write the results."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--limit", type=int, default=40, help="EVOKE cases per file in the graph")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--concepts", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--related-cap", type=int, default=10, help="facts UIPE adds per concept")
    ap.add_argument("--min-known", type=int, default=4, help="known probes a form needs")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("KGEDIT_THREADS", "1")))
    ap.add_argument("--no-results-page", action="store_true")
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="re-read the last results, attach bench/tofu.py's, rewrite JSON and results page",
    )
    args = ap.parse_args()
    if args.report_only:
        data = json.loads((RESULTS / "unlearning_quality.json").read_text())
        tofu_path = RESULTS / "tofu.json"
        data["tofu"] = json.loads(tofu_path.read_text()) if tofu_path.is_file() else None
        write_json("unlearning_quality", data)
        update_results("unlearning-quality", readme_table(data))
        return
    torch.set_num_threads(args.threads)

    bench = concept_bench(args.limit, args.preset, args.concepts)
    store, facts, model, tok = bench.store, bench.facts, bench.model, bench.tokenizer
    base_sha, concepts = bench.base_sha, bench.concepts
    names = store.entity_names(c.redirect_to for c in concepts if c.redirect_to)
    forms = FormConfig()
    related = RelatedConfig(cap=args.related_cap)
    k = args.min_known
    grad = {"lr": args.lr, "epochs": args.epochs, "batch_size": args.batch_size}
    grad["warmup_epochs"] = 0.0
    results: dict[str, dict] = {}
    bar = tqdm(total=1 + 2 * len(GRAD), desc="methods")
    t0 = time.perf_counter()
    rocr = run_unlearning(
        model, tok, store, concepts, bench.prepare("rocr"), forms=forms, min_known=k
    )
    results["rocr"] = {"rates": rocr.rates, "seconds": rocr.seconds}
    bar.update()
    for method in GRAD:
        ready = bench.prepare(method, grad)
        plain = run_unlearning(model, tok, store, concepts, ready, forms=forms, min_known=k)
        results[method] = {"rates": plain.rates, "seconds": plain.seconds}
        bar.update()
        sweep = run_extrapolation_sweep(
            model, tok, store, concepts, ready, EXTRAPOLATIONS,
            forms=forms, related=related, min_known=k,
        )  # fmt: skip
        alpha = choose_alpha(sweep, base_retain=1.0)
        chosen = sweep[alpha] if alpha is not None else sweep[0.0]
        results[f"{method}+uipe"] = {
            "rates": chosen.rates,
            "seconds": chosen.seconds,
            "alpha": alpha,
            "sweep": {str(a): r.rates for a, r in sweep.items()},
        }
        bar.update()
    bar.close()
    assert state_checksum(model) == base_sha, "a method did not revert"
    tofu_path = RESULTS / "tofu.json"
    tofu = json.loads(tofu_path.read_text()) if tofu_path.is_file() else None
    data = {
        "date": today(),
        "machine": machine(),
        "load_average": os.getloadavg(),
        "preset": args.preset,
        "graph_cases": args.limit,
        "n_facts": len(facts),
        "concepts": [
            {"name": c.name, "anchor": names.get(c.redirect_to or "", None)} for c in concepts
        ],
        "grad_hparams": bench.prepare(GRAD[0], grad).hparams.to_dict(),
        "related_cap": args.related_cap,
        "min_known": k,
        "total_seconds": time.perf_counter() - t0,
        "methods": results,
        "tofu": tofu,
    }
    write_json("unlearning_quality", data)
    if not args.no_results_page:
        update_results("unlearning-quality", readme_table(data))


def readme_table(data: dict) -> str:
    """Return the results-page block of one run."""
    load = ", ".join(f"{x:.1f}" for x in data["load_average"])
    lines = [
        f"Measured {data['date']} on {data['machine']} (load average {load}); "
        f"`{data['preset']}` knowledge model on the first {data['graph_cases']} EVOKE cases "
        f"per file ({data['n_facts']} facts); {len(data['concepts'])} concepts (the subjects "
        "with the most facts), each unlearned from the base weights. Rates count probes the "
        "model answered before (answer beats 3 rivals).",
        "",
        "| method | " + " | ".join(f"forget {f}" for f in FORMS) + " | worst form | form gap "
        "| retain (all forms) | s / request |",
        "|---|" + "---|" * (len(FORMS) + 4),
    ]
    for name, res in data["methods"].items():
        rates = res["rates"]
        per = [_pct(rates["forms"].get(f, {}).get("forget_rate")) for f in FORMS]
        label = name
        if "alpha" in res:
            label += (
                f" (α={res['alpha']})" if res["alpha"] is not None else " (no α kept 90 %: α=0)"
            )
        secs = sum(res["seconds"]) / max(1, len(res["seconds"]))
        lines.append(
            f"| {label} | "
            + " | ".join(per)
            + f" | {rates.get('worst_form') or '–'} {_pct(rates.get('worst_forget'))} "
            f"| {_pct(rates.get('form_gap'))} | {_pct(rates.get('retain_rate'))} | {secs:.2f} |"
        )
    known = data["methods"]["rocr"]["rates"]["forms"]
    lines += [
        "",
        "Known before (forget probes answered by the base model / asked): "
        + ", ".join(f"{f} {known[f]['forget_known']}/{known[f]['forget_n']}" for f in known)
        + ".",
    ]
    tofu = data.get("tofu")
    if tofu:
        lines += ["", "TOFU (from `bench/tofu.py`, table below): forget quality / model utility."]
        lines += ["", "| split | " + " | ".join(next(iter(tofu["splits"].values()))) + " |"]
        lines.append("|---|" + "---|" * len(next(iter(tofu["splits"].values()))))
        for split, rows in tofu["splits"].items():
            cells = [
                f"{r['forget_quality']:.3g} / {r['model_utility']:.3f}"
                if "forget_quality" in r
                else "–"
                for r in rows.values()
            ]
            lines.append(f"| {split} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
