"""Run edits of any registered method on a knowledge model and score the graph's probes.

Three modes: `sequential` keeps every edit, applied in batches of `batch_size` one after
another (the demo: ten edits, then revert them all); `batch` applies all requests as
one batch and keeps it; `independent` reverts each edit before the next, so every edit
starts from the base weights (CounterFact-style evaluation).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from contracts.types import EditRequest, FactText, Probe, ProbeKind
from editor.delta import Delta
from editor.prepare import Prepared
from editor.probe_scoring import probe_success
from editor.scoring import score_targets
from editor.sequence import EditSequence
from kg.probes import KIND_LAST_TOKEN_NEIGHBOUR, edit_probes
from kg.store import GraphStore
from kg.view import GraphView

KIND_ORDER = (
    ProbeKind.REWRITE.value,
    ProbeKind.PARAPHRASE.value,
    ProbeKind.NEIGHBOUR.value,
    KIND_LAST_TOKEN_NEIGHBOUR,
    ProbeKind.SAME_SUBJECT.value,
)


@dataclass
class EditRun:
    """Per-kind probe outcomes before/after, timings and the deltas of a run."""

    before: dict[str, list[bool]] = field(default_factory=lambda: defaultdict(list))
    after: dict[str, list[bool]] = field(default_factory=lambda: defaultdict(list))
    timings: list[dict[str, float]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    deltas: list[Delta] = field(default_factory=list)
    sequence: EditSequence | None = None

    def rates(self) -> dict[str, dict[str, float]]:
        """Return {kind: {n, before, after, kept}}; `kept` counts probes right before."""
        out = {}
        for kind in KIND_ORDER:
            b, a = self.before.get(kind, []), self.after.get(kind, [])
            if not b:
                continue
            right_before = [y for x, y in zip(b, a, strict=True) if x]
            out[kind] = {
                "n": len(b),
                "before": sum(b) / len(b),
                "after": sum(a) / len(a),
                "kept": (sum(right_before) / len(right_before)) if right_before else float("nan"),
            }
        return out

    def mean_timings(self) -> dict[str, float]:
        """Return mean seconds per edit, per step and in total."""
        keys = sorted({k for t in self.timings for k in t})
        out = {k: sum(t.get(k, 0.0) for t in self.timings) / len(self.timings) for k in keys}
        out["total"] = sum(self.seconds) / len(self.seconds) if self.seconds else float("nan")
        return out


def last_token(tokenizer: Any) -> Callable[[str], int]:
    """Return name -> id of the name's last token under `tokenizer` (no special tokens)."""
    return lambda name: tokenizer(name, add_special_tokens=False)["input_ids"][-1]


def probes_for(
    graph: GraphStore | GraphView,
    tokenizer: Any,
    request: EditRequest,
    *,
    batch: Sequence[EditRequest] = (),
) -> list[Probe]:
    """Return one edit's probes (`kg.probes.edit_probes`) plus its last-token neighbours.

    `batch`: the edits applied together with this one (sequential and batch modes), whose
    subjects the locality probes avoid. Every probe comes from `graph`.
    """
    return edit_probes(graph, request, batch=batch, last_token=last_token(tokenizer))


def speakable_edits(
    requests: Sequence[EditRequest], facts: Sequence[FactText]
) -> list[EditRequest]:
    """Keep edits whose new object the graph teaches; retarget the others within the relation.

    A model trained on one graph can only name objects it has learned. EVOKE's main cases
    always satisfy that (their new objects are true objects of attribute facts); most
    subject-specificity cases do not, so they get a learned object of the same relation,
    picked by a hash of the request id, and `+retargeted` appended to the id.
    """
    known = {f.object for f in facts}
    by_relation: dict[str, list[str]] = defaultdict(list)
    for f in facts:
        by_relation[f.relation].append(f.object)
    out = []
    for r in requests:
        if r.target_new in known:
            out.append(r)
            continue
        options = sorted(set(by_relation.get(r.relation or "", ())) - {r.target_true})
        if not options:
            continue
        digest = hashlib.sha256((r.request_id or r.subject).encode()).digest()
        pick = options[int.from_bytes(digest[:4], "big") % len(options)]
        out.append(dataclasses.replace(r, target_new=pick, request_id=f"{r.request_id}+retargeted"))
    return out


def select_known_edits(
    model: Any, tokenizer: Any, requests: Sequence[EditRequest], n: int
) -> list[EditRequest]:
    """Return the first `n` requests whose true object the model predicts on the edit prompt."""
    usable = [r for r in requests if r.target_true and r.target_true != r.target_new]
    scores = score_targets(
        model, tokenizer, [r.rendered() for r in usable], [str(r.target_true) for r in usable]
    )
    known = [r for r, ok in zip(usable, scores.all_argmax.tolist(), strict=True) if ok]
    return known[:n]


def _record(target: dict[str, list[bool]], probes: Sequence[Probe], ok: torch.Tensor) -> None:
    for probe, value in zip(probes, ok.tolist(), strict=True):
        target[str(probe.kind)].append(bool(value))


def _per_request(infos: Sequence[dict[str, Any]], n: int) -> dict[str, float]:
    """Return the calls' step timings summed and divided by the number of requests."""
    out: dict[str, float] = defaultdict(float)
    for info in infos:
        for key, value in info.get("timings", {}).items():
            out[key] += value / n
    return dict(out)


def run_edits(
    model: Any,
    tokenizer: Any,
    requests: Sequence[EditRequest],
    probes: Sequence[Sequence[Probe]],
    prepared: Prepared,
    mode: str = "independent",
    progress: Callable[[int, int], None] | None = None,
    *,
    batch_size: int = 1,
    sequence: EditSequence | None = None,
) -> EditRun:
    """Apply a prepared method (`editor.prepare`) for the requests; score their probes
    before and after.

    `sequence`: continue this sequence of the same method (its deltas stay applied, the
    method's state carries on) instead of starting a new one; `run.deltas` are the new ones.
    """
    if mode not in {"independent", "sequential", "batch"}:
        raise ValueError(f"mode must be 'independent', 'sequential' or 'batch', not {mode!r}")
    run = EditRun()
    seq = sequence
    if seq is None:
        seq = EditSequence(
            model, tokenizer, prepared.method, prepared.hparams, **prepared.resources
        )
    start_at = len(seq)
    flat = [p for group in probes for p in group]
    if mode != "independent":
        _record(run.before, flat, probe_success(model, tokenizer, flat))
        size = len(requests) if mode == "batch" else batch_size
        for start in range(0, len(requests), size):
            batch = list(requests[start : start + size])
            n_infos = len(seq.infos)
            started = time.perf_counter()
            seq.apply(batch)
            elapsed = time.perf_counter() - started
            run.seconds += [elapsed / len(batch)] * len(batch)
            run.timings += [_per_request(seq.infos[n_infos:], len(batch))] * len(batch)
            if progress is not None:
                progress(min(start + size, len(requests)), len(requests))
        _record(run.after, flat, probe_success(model, tokenizer, flat))
        run.deltas = list(seq.deltas[start_at:])
        run.sequence = seq
        return run
    for i, (request, group) in enumerate(zip(requests, probes, strict=True)):
        _record(run.before, group, probe_success(model, tokenizer, group))
        n_infos = len(seq.infos)
        started = time.perf_counter()
        seq.apply([request])
        run.seconds.append(time.perf_counter() - started)
        run.timings.append(_per_request(seq.infos[n_infos:], 1))
        _record(run.after, group, probe_success(model, tokenizer, group))
        seq.revert_to(start_at)
        if progress is not None:
            progress(i + 1, len(requests))
    return run
