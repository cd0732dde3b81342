"""Tune ROME/MEMIT on a fixed dev subset of EVOKE edits, held apart from the quality bench.

The dev subset is the *last* `--edits` known edits of the demo graph (the quality bench
takes the first ones), so choosing hyper-parameters does not look at the reported edits.
Each configuration is a JSON object of overrides; the script prints efficacy, paraphrase,
neighbourhood, same-subject, the fact's cloze and question forms (CounterFact scoring),
EVOKE's prefix-distraction overfit probe (EOS, higher is less overfit), mean v* steps and
seconds per edit, and appends one JSON line per configuration to
`var/bench/editing_dev.jsonl`. Every edit carries its relation's forms
(`kg.forms.request_with_forms`), so `{"forms": 0}` (plain ROME/MEMIT) and the knowledge
rows' form option are scored on the same probes; paraphrase probes never use those forms.

Paraphrase is also split (`paraphrase_split`) by what the trainer did with each paraphrase
template: `trained` (among the first `max_templates` of the relation, not
held out for that fact), `heldout` (the fact's held-out template), `unseen` (past
`max_templates`: no fact was trained on it), and by whether the unedited model's greedy
answer to the paraphrase was the true object (`known_before` / `unknown_before`).

    nice -n 10 .venv/bin/python bench/editing_dev.py --method rome \
        --config '{"v_loss_stop": 0.01}' --config '{}'
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.common import open_bench, today
from contracts.types import Probe, ProbeKind
from editor.knowledge.corpus import heldout_template_index
from editor.knowledge.presets import get_preset
from editor.probe_scoring import ScoringConfig, score_probes
from editor.sequence import EditSequence
from kg.forms import request_with_forms
from kg.probes import ProbeConfig, audit_probes
from kg.view import GraphView
from workers.edit_run import select_known_edits
from workers.settings import get_settings

KINDS = (
    "rewrite",
    "paraphrase",
    "neighbour",
    "same_subject",
    "form_cloze",
    "form_question",
    "prefix_distraction",
)
PROBES = ProbeConfig(
    n_paraphrases=5, n_neighbours=10, n_prefix=5, max_hops=0, stepwise=False, fluency=False
)


def dev_probes(setup, edits) -> list[list]:
    """Return each edit's rewrite, paraphrase and neighbour probes."""
    view = GraphView(setup.store)
    out = []
    for request in edits:
        change = audit_probes(view, [request], PROBES)[0]
        out.append([p for p in change.probes if str(p.kind) in KINDS])
    return out


def template_class(setup, request, template: str) -> str:
    """Return `trained`, `heldout` or `unseen`: what the trainer did with this template."""
    max_templates = get_preset("small").max_templates
    fact = next(
        f for f in setup.facts if f.subject == request.subject and f.relation == request.relation
    )
    trained = fact.templates[:max_templates]
    if template not in trained:
        return "unseen"
    held = heldout_template_index(replace(fact, templates=trained))
    return "heldout" if held is not None and trained[held] == template else "trained"


def paraphrase_labels(setup, edits, probes) -> list[list[tuple[str, bool] | None]]:
    """Return, per probe, (template class, true object known before) for paraphrases."""
    model, tok = setup.model, setup.tokenizer
    out = []
    for request, group in zip(edits, probes, strict=True):
        para = [p for p in group if str(p.kind) == "paraphrase"]
        truth = [
            Probe(p.prompt, p.unexpected or "", ProbeKind.REWRITE, unexpected=p.expected)
            for p in para
        ]
        known = iter(s.exact_match for s in score_probes(model, tok, truth, ScoringConfig()))
        out.append(
            [
                (template_class(setup, request, p.meta["template"]), bool(next(known)))
                if str(p.kind) == "paraphrase"
                else None
                for p in group
            ]
        )
    return out


def split_rates(hits: list[tuple[tuple[str, bool], float]]) -> dict:
    """Return paraphrase success by template class and by prior knowledge, with counts."""
    groups: dict[str, list[float]] = defaultdict(list)
    for (cls, known), ok in hits:
        groups[f"template:{cls}"].append(ok)
        groups["known_before" if known else "unknown_before"].append(ok)
    return {k: {"rate": float(np.mean(v)), "n": len(v)} for k, v in sorted(groups.items())}


def run_config(setup, method, overrides, edits, probes, labels) -> dict:
    """Apply `method` (prepared as the service prepares it) with `overrides` to each edit from
    the base weights; return the rates."""
    model, tok = setup.model, setup.tokenizer
    ready = setup.prepare(method, overrides)
    seq = EditSequence(model, tok, ready.method, ready.hparams, **ready.resources)
    hits: dict[str, list[float]] = {k: [] for k in KINDS}
    seconds, steps, nll, para = [], [], [], []
    for request, group, label in zip(edits, probes, labels, strict=True):
        t0 = time.perf_counter()
        seq.apply([request])
        seconds.append(time.perf_counter() - t0)
        info = seq.infos[-1]
        losses = info.get("losses") or (info.get("targets") or [{}])[0].get("losses") or [{}]
        steps.append(len(losses))
        nll.append(losses[-1].get("nll", float("nan")))
        scores = score_probes(model, tok, group, ScoringConfig())
        for s, p, lab in zip(scores, group, label, strict=True):
            hits[str(p.kind)].append(float(bool(s.success)))
            if lab is not None:
                para.append((lab, float(bool(s.success))))
        seq.revert_all()
    return {
        "method": method,
        "overrides": overrides,
        "edits": len(edits),
        **{k: float(np.mean(v)) for k, v in hits.items()},
        "seconds_per_edit": float(np.mean(seconds)),
        "vstar_steps": float(np.mean(steps)),
        "final_nll_median": float(np.median(nll)),
        "paraphrase_split": split_rates(para),
    }


def main() -> None:
    """Score each configuration on the dev subset and append the results."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--method", default="rome")
    parser.add_argument("--config", action="append", default=[], help="JSON overrides")
    parser.add_argument("--edits", type=int, default=40)
    args, console, setup = open_bench(parser)
    model, tok = setup.model, setup.tokenizer
    known = select_known_edits(model, tok, setup.cases, len(setup.cases))
    view = GraphView(setup.store)
    # every edit carries its relation's forms, so both settings of the form option (`forms`)
    # are scored on the same probes (the paraphrase probes leave the forms out)
    edits = [request_with_forms(r, view.relation(r.relation)) for r in known[-args.edits :]]
    console.print(f"dev subset: the last {len(edits)} of {len(known)} known edits")
    probes = dev_probes(setup, edits)
    labels = paraphrase_labels(setup, edits, probes)
    out = get_settings().var_dir / "bench" / "editing_dev.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    for text in args.config or ["{}"]:
        row = run_config(setup, args.method, json.loads(text), edits, probes, labels)
        row["date"] = today()
        console.print(json.dumps(row))
        with out.open("a") as handle:
            handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
