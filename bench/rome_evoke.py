"""ROME quality on real EVOKE edits with the `small` knowledge model.

Each edit starts from the base weights (CounterFact-style). Probes per edit, all from
`kg.probes.edit_probes`: rewrite (P(new) > P(true)), paraphrases (other templates of the
relation), neighbours (other subjects of the relation, those sharing the true object first,
keep P(their object) > P(new)), same-last-token neighbours (the same for subjects whose name
ends in the edited subject's last token) and same-subject facts (P(their object) > P(new)).
Writes bench/results/rome_evoke.json and the results-page block between the `rome-evoke` markers.

    .venv/bin/python bench/rome_evoke.py [--edits 100]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import edit_bench_parser, machine, open_bench, today, update_results, write_json
from workers.demo import rates_table
from workers.edit_run import KIND_ORDER, probes_for, run_edits, select_known_edits


def main() -> None:
    """Run the evaluation and write its JSON and results-page table."""
    args, console, setup = open_bench(edit_bench_parser(__doc__, 100))
    model, tok = setup.model, setup.tokenizer
    edits = select_known_edits(model, tok, setup.cases, args.edits)
    probes = [probes_for(setup.store, tok, r) for r in edits]
    ready = setup.prepare("rome")  # as the service prepares it
    run = run_edits(model, tok, edits, probes, ready, mode="independent")
    rates = run.rates()
    console.print(rates_table(f"{len(edits)} EVOKE edits, ROME, each from base weights", rates))
    timings = run.mean_timings()
    data = {
        "date": today(),
        "machine": machine(),
        "preset": args.preset,
        "layer": ready.hparams.layer,
        "edits": len(edits),
        "candidates": len(setup.cases),
        "rates": rates,
        "mean_seconds": timings,
    }
    write_json("rome_evoke", data)
    lines = [
        f"Measured {data['date']} on {data['machine']}; `{args.preset}` model, ROME at layer "
        f"{ready.hparams.layer}; {len(edits)} EVOKE edits whose true object the model knew "
        f"(of {len(setup.cases)} cases), each applied to the base weights.",
        "",
        "| probe | n | before | after | kept (right before → right after) |",
        "|---|---|---|---|---|",
    ]
    for kind in KIND_ORDER:
        if kind in rates:
            r = rates[kind]
            lines.append(
                f"| {kind} | {r['n']} | {r['before']:.1%} | {r['after']:.1%} | {r['kept']:.1%} |"
            )
    lines.append(f"\nMean seconds per edit: {timings['total']:.2f}.")
    if not args.no_results_page:
        update_results("rome-evoke", "\n".join(lines))
    console.print("\n".join(lines))


if __name__ == "__main__":
    main()
