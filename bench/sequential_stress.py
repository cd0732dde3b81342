"""Sequential stress: 1,000 EVOKE-graph edits one after another on the `small` model, then
rewrite accuracy on the first 100, for ROME, MEMIT and AlphaEdit.

The edits are counterfactual rewrites of graph facts the model knows (`graph_edits`: one
per subject and relation, the new object another object of the same relation, seeded
order). Each method applies them in order with `EditSequence` (batches of `--batch`,
default 1: one edit at a time), keeping every delta. Rewrite accuracy (P(new) > P(true)
on the edit prompt) of the first 100 edits is measured after 100, 250, 500 and all edits,
together with exact recall of 200 untouched graph facts. Then every delta is reverted and
the weights are checked against the base checksum. Writes bench/results/
sequential_stress.json and the README block between the `sequential-stress` markers.

    nice -n 10 .venv/bin/python bench/sequential_stress.py [--edits 1000] [--methods rome,memit]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console

from bench.common import machine, today, update_readme, write_json
from contracts.types import Probe, ProbeKind
from editor.knowledge.presets import get_preset
from editor.loading import state_checksum, weights_sha256
from editor.probe_scoring import probe_success
from editor.sequence import EditSequence
from workers.demo import prepare
from workers.edit_run import select_known_edits
from workers.methods import (
    LayerStats,
    corpus_statements,
    graph_edits,
    method_hparams,
    method_resources,
)

CHECKPOINTS = (100, 250, 500, 1000)


def rewrite_probes(edits) -> list[Probe]:
    """Return the rewrite probe (new against true) of each edit."""
    return [
        Probe(r.rendered(), r.target_new, ProbeKind.REWRITE, unexpected=r.target_true)
        for r in edits
    ]


def untouched_probes(facts, edits, n: int, seed: int) -> list[Probe]:
    """Return exact-recall probes of `n` graph facts whose subject and relation are not edited."""
    edited = {(r.subject, r.relation) for r in edits}
    pool = [f for f in facts if (f.subject, f.relation) not in edited]
    chosen = random.Random(seed).sample(pool, min(n, len(pool)))
    return [
        Probe(f.templates[0].format(f.subject), f.object, ProbeKind.SAME_SUBJECT) for f in chosen
    ]


def run_method(
    console, setup, method, edits, checks, untouched, batch, key, stats, overrides=None
) -> dict:
    """Apply the edits in order with one method; return accuracy at each checkpoint."""
    model, tok = setup.model, setup.tokenizer
    hp = method_hparams(method, model, get_preset("small").edit_layer, overrides)
    res = method_resources(method, hp, model, tok, stats, key, facts=setup.facts)
    base = state_checksum(model)
    base_recall = float(probe_success(model, tok, untouched).float().mean())
    seq = EditSequence(model, tok, method, hp, **res)
    points, t0 = [], time.perf_counter()
    marks = [c for c in CHECKPOINTS if c < len(edits)] + [len(edits)]
    done = 0
    for mark in marks:
        seq.apply(edits[done:mark], batch_size=batch)
        done = mark
        acc = float(probe_success(model, tok, checks).float().mean())
        recall = float(probe_success(model, tok, untouched).float().mean())
        points.append(
            {
                "edits": done,
                "first_100_rewrite": acc,
                "untouched_recall": recall,
                "seconds": time.perf_counter() - t0,
            }
        )
        console.print(
            f"{method}: {done} edits, first-100 rewrite {acc:.1%}, untouched {recall:.1%}"
        )
    seconds = time.perf_counter() - t0
    seq.revert_all()
    reverted = state_checksum(model) == base
    if not reverted:
        raise RuntimeError(f"{method}: reverting {len(edits)} deltas did not restore the weights")
    return {
        "hparams": hp.to_dict() if hasattr(hp, "to_dict") else str(hp),
        "points": points,
        "untouched_recall_before": base_recall,
        "seconds_per_edit": seconds / len(edits),
        "reverted_bit_exact": reverted,
    }


def main() -> None:
    """Run the stress test and write its JSON and README table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--edits", type=int, default=1000)
    parser.add_argument("--methods", default="rome,memit,alphaedit")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument("--out", default="sequential_stress")
    parser.add_argument("--hparams", help="JSON file of overrides, keyed by method")
    args = parser.parse_args()
    console = Console()
    setup = prepare(console, "small")
    key = weights_sha256(setup.model_dir)
    stats = LayerStats(setup.model, setup.tokenizer, corpus_statements(setup.facts), key)
    candidates = graph_edits(setup.facts, seed=args.seed)
    edits = select_known_edits(setup.model, setup.tokenizer, candidates, args.edits)
    checks = rewrite_probes(edits[:100])
    untouched = untouched_probes(setup.facts, edits, 200, args.seed)
    console.print(f"{len(edits)} graph edits of {len(candidates)} candidates")
    results = {}
    for method in args.methods.split(","):
        results[method] = run_method(
            console, setup, method, edits, checks, untouched, args.batch, key, stats, args.hparams
        )
    data = {
        "date": today(),
        "machine": machine(),
        "preset": "small",
        "edits": len(edits),
        "batch_size": args.batch,
        "results": results,
    }
    write_json(args.out, data)
    marks = [p["edits"] for p in next(iter(results.values()))["points"]]
    lines = [
        f"Measured {data['date']} on {data['machine']}; `small` model, {len(edits)} graph edits "
        f"applied one after another (batches of {args.batch}); rewrite accuracy (P(new) > "
        "P(true)) of the first 100 edits after each number of edits, and exact recall of 200 "
        "untouched graph facts.",
        "",
        "| method | " + " | ".join(f"after {m}" for m in marks) + " | untouched recall "
        "(before → after) | s/edit |",
        "|---|" + "---|" * len(marks) + "---|---|",
    ]
    for method, r in results.items():
        accs = " | ".join(f"{p['first_100_rewrite']:.1%}" for p in r["points"])
        lines.append(
            f"| {method} | {accs} | {r['untouched_recall_before']:.1%} → "
            f"{r['points'][-1]['untouched_recall']:.1%} | {r['seconds_per_edit']:.2f} |"
        )
    lines.append("\nEvery delta was reverted afterwards; the weights matched the base checksum.")
    if not args.no_readme:
        update_readme("sequential-stress", "\n".join(lines))
    console.print("\n".join(lines))


if __name__ == "__main__":
    main()
