"""Sequential stress: 1,000 EVOKE-graph edits one after another on the `small` model, then
rewrite accuracy on the first 100, for ROME, MEMIT and AlphaEdit.

The edits are counterfactual rewrites of graph facts the model knows (`graph_edits`: the new
object another object of the same relation, seeded order), one per subject (`--same-subject`
allows several): a subject-keyed method stores every fact of a subject that starts its
prompts under one key, so a later edit of the same subject rewrites the same memory slot.
Each method applies them in order with `EditSequence` (batches of `--batch`, default 1),
keeping every delta. After each edit its own rewrite is scored ("landed"); at each
checkpoint the rewrite accuracy (P(new) > P(true) on the edit prompt) of the first 100
edits and the exact recall of 200 untouched graph facts are measured. At the end every delta
is reverted and the weights are checked against the base checksum.

`--planner` runs the sync planner's capacity-aware choice instead of one method
(`workers.sync.capacity.choose`): each batch of `--batch` edits goes to a single-edit method,
a batched one (a backlog of `--backlog` edits or more) or a consolidation, when
`--consolidate-every` edits have been applied since the last one or when a new object is a
name the model was not seen to produce (measured once, as the sync check does: the objects of
the graph facts it recalls exactly). A consolidation trains on the graph with every edit so far
applied to it (in the service the graph already holds them). The curve is measured every
`--every` edits; the number of consolidations and their seconds are reported.

Nothing is lost when the run stops: every delta is saved under `var/bench/<--out>/<method>/`
as it is made, with AlphaEdit's kept keys and the figures so far at each checkpoint; a rerun
with the same arguments replays the saved deltas and goes on. Results are written to
bench/results/sequential_stress.json after every checkpoint, and the results-page block between the
`sequential-stress` markers when a method finishes.

    nice -n 10 .venv/bin/python bench/sequential_stress.py [--edits 1000] [--methods rome,memit]
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.progress import Progress
from safetensors.torch import load_file, save_file

from bench.common import (
    RESULTS,
    edit_bench_parser,
    machine,
    open_bench,
    today,
    update_results,
    write_json,
)
from contracts.types import Probe, ProbeKind
from editor.delta import Delta
from editor.loading import state_checksum
from editor.methods import default_chain, get, names
from editor.methods.alphaedit import AlphaEditState
from editor.methods.consolidate import edited_facts
from editor.probe_scoring import probe_success
from editor.sequence import EditSequence, call_method
from workers.demo_graph import DEMO_CASES
from workers.edit_run import select_known_edits
from workers.graph_edits import graph_edits
from workers.settings import Settings, get_settings
from workers.sync.capacity import TEACH, Budget, budget_reason, choose, unsayable

SAVE_EVERY = 25


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


class RunStore:
    """One method's run on disk: its deltas in order, AlphaEdit's keys and the figures so far."""

    def __init__(self, root: Path, fingerprint: str) -> None:
        self.root, self.fingerprint = root, fingerprint
        self.progress_path = root / "progress.json"

    def load(self) -> dict | None:
        """Return the saved progress of a run with the same inputs, or None."""
        if not self.progress_path.is_file():
            return None
        data = json.loads(self.progress_path.read_text())
        return data if data.get("fingerprint") == self.fingerprint else None

    def deltas(self, n: int) -> list[Delta]:
        """Return the first `n` saved deltas."""
        return [Delta.load(self.root / "deltas" / f"{i:05d}.safetensors") for i in range(n)]

    def state(self) -> dict:
        """Return the saved method state (AlphaEdit's keys), if any."""
        path = self.root / "alphaedit-state.safetensors"
        if not path.is_file():
            return {}
        meta = json.loads((self.root / "alphaedit-state.json").read_text())
        return {"alphaedit": AlphaEditState.from_tensors(load_file(str(path)), meta["tokens"])}

    def save(self, seq: EditSequence, saved: int, progress: dict) -> int:
        """Write the deltas made since `saved`, the method state and the progress."""
        for i in range(saved, len(seq.deltas)):
            seq.deltas[i].save(self.root / "deltas" / f"{i:05d}.safetensors")
        state = seq.state.get("alphaedit")
        if isinstance(state, AlphaEditState):
            tensors, tokens = state.tensors()
            save_file(tensors, str(self.root / "alphaedit-state.safetensors"))
            (self.root / "alphaedit-state.json").write_text(json.dumps({"tokens": tokens}))
        progress["n_deltas"] = len(seq.deltas)
        tmp = self.progress_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({**progress, "fingerprint": self.fingerprint}, indent=1))
        tmp.replace(self.progress_path)
        return len(seq.deltas)


def run_method(console, setup, method, edits, checks, untouched, args, report) -> dict:
    """Apply the edits in order with one method; return accuracy at each checkpoint.

    `report(partial)` is called with the figures so far at every checkpoint.
    """
    model, tok = setup.model, setup.tokenizer
    ready = setup.prepare(method, overrides_for(args, method))
    hp, key = ready.hparams, setup.model_key
    base = state_checksum(model)
    fingerprint = hashlib.sha256(
        json.dumps(
            [key, method, hp.to_dict(), args.batch, [r.request_id for r in edits]],
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()[:16]
    store = RunStore(get_settings().var_dir / "bench" / args.out / method, fingerprint)
    seq = EditSequence(model, tok, ready.method, hp, **ready.resources)
    progress = store.load() or {
        "done": 0,
        "points": [],
        "landed": [],
        "seconds": 0.0,
        "untouched_recall_before": float(probe_success(model, tok, untouched).float().mean()),
    }
    done = progress["done"]
    if done:
        console.print(f"{method}: resuming after {done} saved edits")
        seq.replay(store.deltas(progress["n_deltas"]), store.state())
    saved = len(seq.deltas)
    probes = rewrite_probes(edits)
    marks = [*range(args.every, len(edits), args.every), len(edits)]
    with Progress(console=console) as bar:
        task = bar.add_task(f"{method} sequential edits", total=len(edits), completed=done)
        while done < len(edits):
            batch = edits[done : done + args.batch]
            t0 = time.perf_counter()
            seq.apply(batch)
            progress["seconds"] += time.perf_counter() - t0
            ok = probe_success(model, tok, probes[done : done + len(batch)])
            progress["landed"] += [bool(x) for x in ok]
            done += len(batch)
            progress["done"] = done
            bar.update(task, completed=done)
            if done in marks or done % SAVE_EVERY == 0:
                if done in marks:
                    point = measure(model, tok, checks, untouched, progress, done)
                    progress["points"].append(point)
                    report(summary(hp, progress, len(edits)))
                    console.print(
                        f"{method}: {done} edits, first-100 rewrite "
                        f"{point['first_100_rewrite']:.1%}, landed {point['landed_so_far']:.1%}, "
                        f"untouched {point['untouched_recall']:.1%}"
                    )
                saved = store.save(seq, saved, progress)
    seq.revert_all()
    reverted = state_checksum(model) == base
    if not reverted:
        raise RuntimeError(f"{method}: reverting {len(edits)} deltas did not restore the weights")
    return {**summary(hp, progress, len(edits)), "reverted_bit_exact": reverted}


def run_planned(console, setup, edits, checks, untouched, args, report) -> dict:
    """Apply the edits in batches with the planner's choice of method per batch; return the
    curve, the choices and the consolidations' count and seconds."""
    model, tok, facts = setup.model, setup.tokenizer, setup.facts
    base = state_checksum(model)
    chain = [*default_chain("edit"), *[n for n in names("edit") if get(n).teaches]]
    ready = {m: setup.prepare(m, overrides_for(args, m)) for m in chain}
    every_fact = [
        Probe(f.templates[0].format(f.subject), f.object, ProbeKind.SAME_SUBJECT) for f in facts
    ]
    known = probe_success(model, tok, every_fact).tolist()
    recalled = {f.object for f, ok in zip(facts, known, strict=True) if ok}
    settings = Settings(sync_consolidation_edits=args.consolidate_every)
    progress = {"done": 0, "points": [], "landed": [], "seconds": 0.0, "choices": []}
    progress["untouched_recall_before"] = float(probe_success(model, tok, untouched).float().mean())
    probes, deltas, since, teach_seconds = rewrite_probes(edits), [], 0, []
    marks = set(range(args.every, len(edits), args.every)) | {len(edits)}
    while progress["done"] < len(edits):
        done = progress["done"]
        batch = edits[done : done + args.batch]
        index, choice = choose(
            "edit", chain, len(batch), named=False,
            budget=budget_reason(Budget(0, since, 0.0, None), settings),
            cannot_say=unsayable([r.target_new for r in batch], recalled), backlog=args.backlog,
        )  # fmt: skip
        prepared = ready[chain[index]]
        resources = dict(prepared.resources)
        if choice.role == TEACH:
            resources["facts"] = edited_facts(facts, edits[: done + len(batch)])[0]
        t0 = time.perf_counter()
        made, _ = call_method(prepared.method, model, tok, batch, prepared.hparams, **resources)
        seconds = time.perf_counter() - t0
        deltas += made
        progress["seconds"] += seconds
        since = 0 if choice.role == TEACH else since + len(batch)
        if choice.role == TEACH:
            teach_seconds.append(seconds)
            after = float(probe_success(model, tok, untouched).float().mean())
            held = float(probe_success(model, tok, probes[: done + len(batch)]).float().mean())
            progress["consolidated"] = [
                *progress.get("consolidated", []),
                {"edits": done + len(batch), "untouched_recall": after, "all_rewrite": held},
            ]
        progress["choices"].append({"edits": done + len(batch), **choice.to_dict()})
        ok = probe_success(model, tok, probes[done : done + len(batch)])
        progress["landed"] += [bool(x) for x in ok]
        progress["done"] = done = done + len(batch)
        if done in marks:
            point = measure(model, tok, checks, untouched, progress, done)
            point["all_rewrite"] = float(probe_success(model, tok, probes[:done]).float().mean())
            progress["points"].append(point)
            report({**summary(None, progress, len(edits)), "consolidations": len(teach_seconds)})
            console.print(
                f"planner: {done} edits, all so far {point['all_rewrite']:.1%}, first-100 "
                f"{point['first_100_rewrite']:.1%}, untouched {point['untouched_recall']:.1%}, "
                f"consolidations {len(teach_seconds)}"
            )
    for delta in reversed(deltas):
        delta.revert(model)
    if state_checksum(model) != base:
        raise RuntimeError("planner: reverting the deltas did not restore the weights")
    roles = [c["role"] for c in progress["choices"]]
    return {
        **summary(None, progress, len(edits)),
        "choices": progress["choices"],
        "roles": {r: roles.count(r) for r in sorted(set(roles))},
        "consolidations": len(teach_seconds),
        "consolidation_seconds": [round(x, 1) for x in teach_seconds],
        "after_each_consolidation": progress.get("consolidated", []),
        "reverted_bit_exact": True,
    }


def summary(hp, progress: dict, n_edits: int) -> dict:
    """Return a method's figures so far."""
    return {
        "hparams": hp.to_dict() if hp is not None else {},
        "points": progress["points"],
        "done": progress["done"],
        "landed": sum(progress["landed"]) / max(1, len(progress["landed"])),
        "untouched_recall_before": progress["untouched_recall_before"],
        "seconds_per_edit": progress["seconds"] / max(1, progress["done"]),
        "finished": False,
    }


def measure(model, tok, checks, untouched, progress, done) -> dict:
    """Return the figures of one checkpoint."""
    return {
        "edits": done,
        "first_100_rewrite": float(probe_success(model, tok, checks).float().mean()),
        "untouched_recall": float(probe_success(model, tok, untouched).float().mean()),
        "landed_so_far": sum(progress["landed"]) / len(progress["landed"]),
        "seconds": progress["seconds"],
    }


def overrides_for(args, method: str) -> dict | None:
    """Return the method's hyper-parameter overrides from `--hparams` (a JSON file or text)."""
    if not args.hparams:
        return None
    text = args.hparams
    data = json.loads(Path(text).read_text() if Path(text).is_file() else text)
    return data.get(method) if isinstance(data.get(method), dict) else None


def readme_block(data: dict) -> str:
    """Return the results-page table: finished methods, and unfinished ones up to their last
    checkpoint (marked as stopped)."""
    results = {m: r for m, r in data["results"].items() if r.get("points")}
    marks = sorted({p["edits"] for r in results.values() for p in r["points"]})
    same = "one edit per subject" if not data["same_subject"] else "subjects may repeat"
    lines = [
        f"Measured {data['date']} on {data['machine']} (load average "
        f"{data.get('load_average', ['?'])[0]} at the last write); "
        f"`{data.get('preset', 'small')}` model, "
        f"{data['edits']} graph edits ({same}) applied one after another in batches of "
        f"{data['batch_size']}; rewrite "
        "accuracy (P(new) > P(true)) of the first 100 edits after each number of edits, the "
        "share of edits that held right after they were made, and exact recall of 200 "
        "untouched graph facts.",
        "",
        "| method | layers | "
        + " | ".join(f"after {m}" for m in marks)
        + " | landed | untouched recall (before → after) | s/edit |",
        "|---|---|" + "---|" * len(marks) + "---|---|---|",
    ]
    for method, r in results.items():
        by_mark = {p["edits"]: p for p in r["points"]}
        accs = " | ".join(
            f"{by_mark[m]['first_100_rewrite']:.1%}" if m in by_mark else "–" for m in marks
        )
        layers = ",".join(str(x) for x in r["hparams"].get("layers", [r["hparams"].get("layer")]))
        name = method if r.get("finished") else f"{method} (stopped after {r['done']})"
        lines.append(
            f"| {name} | {layers} | {accs} | {r['landed']:.1%} | "
            f"{r['untouched_recall_before']:.1%} → {r['points'][-1]['untouched_recall']:.1%} | "
            f"{r['seconds_per_edit']:.2f} |"
        )
    done = [m for m, r in results.items() if r.get("finished")]
    if done:
        lines.append(
            f"\nAfter the run of {', '.join(done)} every delta was reverted; the weights matched "
            "the base checksum."
        )
    return "\n".join(lines)


def record(out: str, data: dict, method: str, result: dict) -> None:
    """Write one method's figures into bench/results/OUT.json, keeping the other methods'
    results of the same setup as they are on disk (runs of different methods may overlap)."""
    path = RESULTS / f"{out}.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    same = all(
        old.get(k, "small" if k == "preset" else None) == data[k]
        for k in ("preset", "edits", "batch_size", "same_subject")
    )
    data["results"] = {**(old.get("results", {}) if same else {}), method: result}
    data["load_average"] = [round(x, 2) for x in os.getloadavg()]
    write_json(out, data)


def main() -> None:
    """Run the stress test and write its JSON and results-page table."""
    parser = edit_bench_parser(__doc__, 1000)
    parser.add_argument("--methods", default="alphaedit,memit,rome")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--same-subject", action="store_true", help="allow repeated subjects")
    parser.add_argument("--out", default="sequential_stress")
    parser.add_argument("--hparams", help="JSON overrides keyed by method (file or text)")
    parser.add_argument("--cases", type=int, default=DEMO_CASES, help="EVOKE cases of the graph")
    parser.add_argument("--planner", action="store_true", help="the planner's choices")
    parser.add_argument("--backlog", type=int, default=8, help="planner: backlog size")
    parser.add_argument("--consolidate-every", type=int, default=200, help="planner: budget")
    parser.add_argument("--every", type=int, default=100, help="curve every N edits")
    args, console, setup = open_bench(parser)
    candidates = graph_edits(setup.facts, seed=args.seed, distinct_subjects=not args.same_subject)
    edits = select_known_edits(setup.model, setup.tokenizer, candidates, args.edits)
    if len(edits) < args.edits:
        console.print(f"only {len(edits)} known graph edits of {args.edits} asked for")
    checks = rewrite_probes(edits[:100])
    untouched = untouched_probes(setup.facts, edits, 200, args.seed)
    console.print(f"{len(edits)} graph edits of {len(candidates)} candidates")
    data = {
        "date": today(),
        "machine": machine(),
        "preset": args.preset,
        "edits": len(edits),
        "batch_size": args.batch,
        "same_subject": args.same_subject,
        "results": {},
    }
    if args.planner:
        data.update(backlog=args.backlog, consolidate_every=args.consolidate_every)

        def report_planned(partial: dict) -> None:
            """Write the figures so far of the planned run."""
            record(args.out, data, "planner", partial)

        result = run_planned(console, setup, edits, checks, untouched, args, report_planned)
        record(args.out, data, "planner", {**result, "finished": True})
        console.print(json.dumps({k: v for k, v in result.items() if k != "choices"}, indent=1))
        return
    for method in args.methods.split(","):

        def report(partial: dict, method: str = method) -> None:
            """Write the figures so far of a running method."""
            record(args.out, data, method, partial)

        result = run_method(console, setup, method, edits, checks, untouched, args, report)
        record(args.out, data, method, {**result, "finished": True})
        if not args.no_results_page:
            update_results("sequential-stress", readme_block(data))
    console.print(readme_block(data))


if __name__ == "__main__":
    main()
