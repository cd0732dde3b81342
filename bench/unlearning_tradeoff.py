"""Forget/retain trade-off of plain GA, GradDiff and NPO as they train longer, on the concepts
of `bench/unlearning_quality.py`: the curve UIPE's extrapolation must beat to raise forgetting
"at equal utility".

    python bench/unlearning_tradeoff.py [--preset tiny-forms] [--epochs 5 10 20]

Writes bench/results/unlearning_tradeoff.json (no results-page block).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from bench.common import machine, today, write_json
from editor.loading import state_checksum
from kg.unlearn_forms import FormConfig
from workers.unlearn_run import concept_bench, run_unlearning


def main() -> None:
    """Run each gradient method at several epoch counts; write forget/retain per run."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--preset", default="tiny-forms")
    ap.add_argument("--concepts", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--epochs", type=int, nargs="+", default=[5, 10, 20])
    ap.add_argument("--methods", nargs="+", default=["ga", "graddiff", "npo"])
    ap.add_argument("--min-known", type=int, default=4)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("KGEDIT_THREADS", "1")))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    bench = concept_bench(args.limit, args.preset, args.concepts)
    store, model, tok, concepts = bench.store, bench.model, bench.tokenizer, bench.concepts
    runs = []
    for method in args.methods:
        for epochs in args.epochs:
            hp = {"lr": args.lr, "epochs": epochs, "batch_size": 4, "warmup_epochs": 0.0}
            ready = bench.prepare(method, hp)
            t0 = time.perf_counter()
            res = run_unlearning(
                model, tok, store, concepts, ready, forms=FormConfig(), min_known=args.min_known
            )
            rates = res.rates
            row = {
                "method": method,
                "epochs": epochs,
                "forget_rate": rates["forget_rate"],
                "retain_rate": rates["retain_rate"],
                "worst_form": rates["worst_form"],
                "worst_forget": rates.get("worst_forget"),
                "seconds": time.perf_counter() - t0,
            }
            runs.append(row)
            print(row, flush=True)
    assert state_checksum(model) == bench.base_sha, "a method did not revert"
    write_json(
        "unlearning_tradeoff",
        {
            "date": today(),
            "machine": machine(),
            "load_average": os.getloadavg(),
            "preset": args.preset,
            "lr": args.lr,
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
