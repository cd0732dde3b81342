"""Quality of every editing method on real EVOKE edits with a knowledge model.

Every method edits the same EVOKE cases (main-set and subject-specificity edits whose true
object the model knows), each edit applied to the base weights and reverted afterwards.
The graph derives each edit's probes once (`kg.probes.audit_probes`); the model is scored
before and after every edit (`editor.probe_scoring.score_probes`):

* efficacy, paraphrase, neighbourhood: CounterFact scoring, P(new) > P(true) (neighbours:
  P(own) > P(new));
* same-subject retention: the subject's other facts, right before → still right after;
* multi-hop on the portability chains through the new object: composed prompt (and EVOKE's
  stored question) and stepwise (hop by hop on the model's own answers);
* prefix distraction (EVOKE's overfit probe, EOS = P(neighbour's object) > P(new) after
  "⟨edited statement⟩. ⟨neighbour prompt⟩"): higher is less overfit;
* fluency: n-gram entropy of seeded top-5 generations (bits);
* seconds per edit (the method's call, not the scoring).

Nothing is lost when the run stops: each edit's outcomes are appended to a JSON-lines file
per method under `var/bench/editing_quality/` (keyed by request id and a fingerprint of the
method's hyper-parameters) as soon as it is scored, and a rerun skips what is there. The
results JSON is rewritten every 25 edits; the results-page block when a method finishes.

It then checks the seed papers' directional claims on these numbers (GLAME vs ROME on
multi-hop; DiKE vs ROME and MEMIT on same-subject retention; LTI vs its base on overfit at
no efficacy loss), with 95 % paired cluster-bootstrap intervals over edits, and writes
bench/results/editing_quality.json plus the results-page block between `editing-quality` markers.

    nice -n 10 .venv/bin/python bench/editing_quality.py [--edits N] [--methods rome,memit]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from rich.progress import Progress

from bench.common import machine, open_bench, today, update_results, write_json
from editor.knowledge.presets import get_preset
from editor.loading import state_checksum, weights_sha256
from editor.methods import names
from editor.prepare import hparams_for
from editor.probe_scoring import ScoringConfig, score_probes
from editor.sequence import EditSequence
from kg.expand import ExpansionConfig, expand_request
from kg.probes import ProbeConfig, audit_probes
from kg.view import GraphView
from workers.audit.stats import cluster_bootstrap
from workers.demo_graph import DEMO_CASES
from workers.edit_run import select_known_edits
from workers.settings import get_settings

ORDER = ("rome", "memit", "glame", "dike", "lti-rome", "lti-memit", "alphaedit", "ft")
WRITE_EVERY = 25

KINDS = (
    "rewrite",
    "paraphrase",
    "neighbour",
    "same_subject",
    "multi_hop",
    "multi_hop_stepwise",
    "prefix_distraction",
)
GLAME_SUBGRAPH = ExpansionConfig(hops=1, fanout=(19,))  # (s, r, o*) and 19 facts of o*
PROBES = ProbeConfig(n_paraphrases=5, n_neighbours=10, n_prefix=5, max_hops=3, chains_per_length=2)
COLUMNS = (
    ("rewrite", "efficacy"),
    ("paraphrase", "paraphrase"),
    ("neighbour", "neighbourhood"),
    ("same_subject", "same-subject kept"),
    ("multi_hop", "multi-hop composed"),
    ("multi_hop_stepwise", "multi-hop stepwise"),
    ("prefix_distraction", "prefix distraction (EOS)"),
)


def probe_sets(setup, edits) -> list[list]:
    """Return each edit's probes of the measured kinds (old-chain probes left out)."""
    view = GraphView(setup.store)
    out = []
    for request in edits:
        change = audit_probes(view, [request], PROBES)[0]
        kept = []
        for p in change.probes:
            kind = str(p.kind)
            if (kind in KINDS and p.meta.get("bucket") != "old") or kind == "fluency":
                kept.append(p)
        out.append(kept)
    return out


def outcomes(scores, probes) -> dict[str, list[float]]:
    """Return per-kind success (0/1) of one edit's probes, and fluency entropies."""
    out: dict[str, list[float]] = defaultdict(list)
    for s, p in zip(scores, probes, strict=True):
        kind = str(p.kind)
        if kind == "fluency":
            out["fluency"].append(float(s.entropy))
        else:
            out[kind].append(float(bool(s.success)))
    return out


def glame_ready(setup, edits) -> list:
    """Return the edits with GLAME's subgraph around the new object attached."""
    view = GraphView(setup.store)
    return [
        dataclasses.replace(r, subgraph=expand_request(view, r, GLAME_SUBGRAPH).subgraph)
        for r in edits
    ]


class Records:
    """Per-edit outcomes of one method (or of the unedited model), appended as JSON lines."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        self.path, self.fingerprint = path, fingerprint
        self.by_id: dict[str, dict] = {}
        if path.is_file():
            text = path.read_text()
            if text and not text.endswith("\n"):  # cut short by a crash: end that line
                with path.open("a") as handle:
                    handle.write("\n")
            for line in text.splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by a crash
                    continue
                if rec.get("fingerprint") == fingerprint:
                    self.by_id[rec["id"]] = rec

    def add(self, request_id: str, **fields) -> None:
        """Record one edit's outcomes and append them to the file at once."""
        rec = {"id": request_id, "fingerprint": self.fingerprint, **fields}
        self.by_id[request_id] = rec
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps(rec) + "\n")


def fingerprint_of(*parts) -> str:
    """Return a short hash of JSON-able parts."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_method(console, setup, method, edits, probes, records, report, shard=(0, 1)) -> None:
    """Apply one method, prepared as the service prepares it, to every edit not yet recorded,
    from the base weights each time (only the edits of `shard` = (k, n): every n-th one from
    the k-th)."""
    model, tok = setup.model, setup.tokenizer
    ready = setup.prepare(method)
    base = state_checksum(model)
    requests = glame_ready(setup, edits) if method == "glame" else edits
    seq = EditSequence(model, tok, ready.method, ready.hparams, **ready.resources)
    todo = [
        i
        for i, r in enumerate(edits)
        if r.request_id not in records.by_id and i % shard[1] == shard[0]
    ]
    if len(todo) < len(edits):
        console.print(f"{method}: {len(edits) - len(todo)} edits already recorded")
    with Progress(console=console) as bar:
        task = bar.add_task(method, total=len(edits), completed=len(edits) - len(todo))
        for n, i in enumerate(todo):
            t0 = time.perf_counter()
            seq.apply([requests[i]])
            seconds = time.perf_counter() - t0
            after = outcomes(score_probes(model, tok, probes[i], ScoringConfig()), probes[i])
            seq.revert_all()
            records.add(edits[i].request_id, after=after, seconds=seconds)
            bar.advance(task)
            if (n + 1) % WRITE_EVERY == 0:
                report()
    if state_checksum(model) != base:
        raise RuntimeError(f"{method}: reverting did not restore the weights")


def method_fingerprint(setup, method, key) -> tuple[str, dict]:
    """Return the fingerprint of a method's run and its hyper-parameters."""
    hp = hparams_for(method, setup.model, trace_layer=get_preset(setup.preset).edit_layer)
    hp = hp.to_dict()
    return fingerprint_of(key, method, hp, PROBES.__dict__), hp


def summarise(before, after, seconds) -> dict:
    """Return per-kind rates with 95 % cluster-bootstrap intervals, fluency and timing."""
    out: dict = {}
    for kind in KINDS:
        vals, before_vals, clusters = [], [], []
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            for x, y in zip(b.get(kind, []), a.get(kind, []), strict=True):
                if kind == "same_subject" and not x:
                    continue  # retention: of the facts right before
                vals.append(y)
                before_vals.append(x)
                clusters.append(str(i))
        est = cluster_bootstrap(vals, clusters) if vals else None
        out[kind] = {
            "n": len(vals),
            "before": float(np.mean(before_vals)) if vals else None,
            "after": est.value if est else None,
            "ci": [est.lo, est.hi] if est else None,
        }
    flu_b = [x for b in before for x in b.get("fluency", [])]
    flu_a = [x for a in after for x in a.get("fluency", [])]
    out["fluency"] = {"before": float(np.mean(flu_b)), "after": float(np.mean(flu_a))}
    out["seconds_per_edit"] = {
        "mean": float(np.mean(seconds)),
        "median": float(statistics.median(seconds)),
    }
    return out


CLAIMS = (
    ("GLAME beats ROME on multi-hop (composed)", "glame", "rome", "multi_hop", 1),
    ("GLAME beats ROME on multi-hop (stepwise)", "glame", "rome", "multi_hop_stepwise", 1),
    ("DiKE beats ROME on same-subject retention", "dike", "rome", "same_subject", 1),
    ("DiKE beats MEMIT on same-subject retention", "dike", "memit", "same_subject", 1),
    ("LTI-ROME overfits less than ROME (prefix EOS)", "lti-rome", "rome", "prefix_distraction", 1),
    ("LTI-MEMIT overfits less than MEMIT (prefix EOS)", "lti-memit", "memit",
     "prefix_distraction", 1),
    ("LTI-ROME keeps ROME's efficacy", "lti-rome", "rome", "rewrite", 0),
    ("LTI-MEMIT keeps MEMIT's efficacy", "lti-memit", "memit", "rewrite", 0),
)  # fmt: skip


def paired(raw, a: str, b: str, kind: str) -> dict | None:
    """Return the mean per-edit difference a − b on one kind with a 95 % interval, over the
    edits both methods have done (same-subject: the facts right before)."""
    if a not in raw or b not in raw:
        return None
    diffs, clusters, edits = [], [], 0
    for i, (x, y, base) in enumerate(
        zip(raw[a]["after"], raw[b]["after"], raw["_before"], strict=True)
    ):
        if x is None or y is None:
            continue
        edits += 1
        vx, vy, vb = x.get(kind, []), y.get(kind, []), base.get(kind, [])
        for j in range(len(vx)):
            if kind != "same_subject" or vb[j]:
                diffs.append(vx[j] - vy[j])
                clusters.append(str(i))
    if not diffs:
        return None
    est = cluster_bootstrap(diffs, clusters)
    return {"diff": est.value, "ci": [est.lo, est.hi], "n": len(diffs), "edits": edits}


def claims(raw) -> list[dict]:
    """Return the directional claims with their paired differences and verdicts."""
    out = []
    for text, a, b, kind, sign in CLAIMS:
        d = paired(raw, a, b, kind)
        if d is None:
            continue
        if sign > 0:  # better: the interval lies above zero
            holds = d["ci"][0] is not None and d["ci"][0] > 0
            verdict = "holds" if holds else ("reversed" if d["ci"][1] < 0 else "not shown")
        else:  # no loss: the interval reaches no lower than −5 points
            holds = d["ci"][0] is not None and d["ci"][0] >= -0.05
            verdict = "holds" if holds else "fails"
        out.append({"claim": text, "methods": [a, b], "kind": kind, **d, "verdict": verdict})
    return out


def collect(edits, before_rec, method_recs) -> dict:
    """Return the raw per-edit lists of the edits every source has recorded, in edit order."""
    raw: dict = {"_before": []}
    for m in method_recs:
        raw[m] = {"after": [], "seconds": []}
    for r in edits:
        if r.request_id not in before_rec.by_id:
            continue
        raw["_before"].append(before_rec.by_id[r.request_id]["outcomes"])
        for m, rec in method_recs.items():
            got = rec.by_id.get(r.request_id)
            raw[m]["after"].append(got["after"] if got else None)
            raw[m]["seconds"].append(got["seconds"] if got else None)
    return raw


def method_summary(raw, method) -> dict:
    """Return the summary of one method over the edits it has done."""
    rows = zip(raw["_before"], raw[method]["after"], raw[method]["seconds"], strict=True)
    pairs = [(b, a, s) for b, a, s in rows if a is not None]
    if not pairs:
        return {}
    before, after, seconds = zip(*pairs, strict=True)
    return {**summarise(list(before), list(after), list(seconds)), "edits": len(pairs)}


def write_results(args, setup, edits, n_main, before_rec, method_recs, hparams) -> dict:
    """Summarise what is recorded so far and write the JSON."""
    raw = collect(edits, before_rec, method_recs)
    summary = {m: method_summary(raw, m) for m in method_recs}
    summary = {m: s for m, s in summary.items() if s}
    data = {
        "date": today(),
        "machine": machine(),
        "preset": "small",
        "cases_per_file": args.cases,
        "edits": len(edits),
        "edits_main": n_main,
        "edits_subj": len(edits) - n_main,
        "summary": summary,
        "claims": claims(raw),
        "hparams": {m: hparams[m] for m in summary},
    }
    write_json(args.out, data)
    return data


def readme_block(data) -> str:
    """Return the results-page table of the methods that finished every edit, and the claims."""
    summary = {m: s for m, s in data["summary"].items() if s.get("edits") == data["edits"]}
    lines = [
        f"Measured {data['date']} on {data['machine']}; `small` model; {data['edits']} EVOKE "
        f"edits whose true object the model knew ({data['edits_main']} main-set, "
        f"{data['edits_subj']} subject-specificity), each applied to the base weights and "
        "reverted. Success after the edit (same-subject: of the facts right before); "
        "before-edit rates in the last row.",
        "",
        "| method | " + " | ".join(c for _, c in COLUMNS) + " | fluency (bits) | s/edit |",
        "|---|" + "---|" * (len(COLUMNS) + 2),
    ]
    for method, s in summary.items():
        cells = [f"{s[k]['after']:.1%}" if s[k]["after"] is not None else "–" for k, _ in COLUMNS]
        lines.append(
            f"| {method} | " + " | ".join(cells) + f" | {s['fluency']['after']:.2f} | "
            f"{s['seconds_per_edit']['mean']:.2f} |"
        )
    if summary:
        first = next(iter(summary.values()))
        cells = [f"{first[k]['before']:.1%}" if first[k]["before"] is not None else "–"
                 for k, _ in COLUMNS]  # fmt: skip
        lines.append(
            "| *before* | " + " | ".join(cells) + f" | {first['fluency']['before']:.2f} | |"
        )
        lines.append("\n| n probes | " + " | ".join(str(first[k]["n"]) for k, _ in COLUMNS) + " |")
        lines.append("|---|" + "---|" * len(COLUMNS))
    lines += [
        "",
        "| claim | edits | paired difference (points) | 95 % interval | verdict |",
        "|---|---|---|---|---|",
    ]
    for c in data["claims"]:
        lines.append(
            f"| {c['claim']} | {c['edits']} | {100 * c['diff']:+.1f} | "
            f"[{100 * c['ci'][0]:+.1f}, {100 * c['ci'][1]:+.1f}] | {c['verdict']} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Run every method (resuming what is recorded) and write the JSON and results-page table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--edits", type=int, default=0, help="cap on edits (0: all known)")
    parser.add_argument("--methods", default=",".join(m for m in ORDER if m in names()))
    parser.add_argument("--cases", type=int, default=DEMO_CASES, help="EVOKE cases per file")
    parser.add_argument("--no-results-page", action="store_true")
    parser.add_argument("--out", default="editing_quality")
    parser.add_argument(
        "--shard", default="0/1", help="k/n: run only every n-th edit from the k-th (parallel runs)"
    )
    args, console, setup = open_bench(parser)
    model, tok = setup.model, setup.tokenizer
    key = weights_sha256(setup.model_dir)
    edits = select_known_edits(model, tok, setup.cases, args.edits or len(setup.cases))
    n_main = sum(1 for r in edits if (r.request_id or "").startswith("evoke-main-"))
    console.print(f"{len(edits)} known EVOKE edits ({n_main} main, {len(edits) - n_main} subj)")
    probes = probe_sets(setup, edits)
    root = get_settings().var_dir / "bench" / "editing_quality"
    before_rec = Records(root / "before.jsonl", fingerprint_of(key, PROBES.__dict__))
    for r, group in zip(edits, probes, strict=True):
        if r.request_id not in before_rec.by_id:
            before_rec.add(r.request_id, outcomes=outcomes(score_probes(model, tok, group), group))
    methods = [m for m in args.methods.split(",") if m]
    recs, hparams = {}, {}
    for method in ORDER + tuple(names()):  # every method with records, for the table
        if method in recs:
            continue
        fp, hparams[method] = method_fingerprint(setup, method, key)
        path = root / f"{method}.jsonl"
        if method in methods or path.is_file():
            recs[method] = Records(path, fp)
    for method in methods:

        def report() -> None:
            """Write the figures so far."""
            write_results(args, setup, edits, n_main, before_rec, recs, hparams)

        shard = tuple(int(x) for x in args.shard.split("/"))
        run_method(console, setup, method, edits, probes, recs[method], report, shard)
        data = write_results(args, setup, edits, n_main, before_rec, recs, hparams)
        s = data["summary"][method]
        console.print(
            f"{method}: " + ", ".join(f"{k} {s[k]['after']:.1%}" for k in KINDS if s[k]["after"])
        )
        if not args.no_results_page:
            update_results("editing-quality", readme_block(data))
    data = write_results(args, setup, edits, n_main, before_rec, recs, hparams)
    if not args.no_results_page:
        update_results("editing-quality", readme_block(data))
    console.print(readme_block(data))


if __name__ == "__main__":
    main()
