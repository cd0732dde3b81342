"""Run an audit: derive probes from the graph (kg), score them before and after (editor).

`run_audit` takes the model, the changes' probes and the chain of deltas that makes the
version under audit. It scores every probe on the version before the chain, then applies the
deltas one by one, scoring a trend subset at up to `trend_points` versions on the way, then
every probe again on the final version; the whole-graph sample rides along with both full
passes. The model is left as it came (deltas applied iff `applied`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from contracts.types import EditRequest, Probe, UnlearnRequest
from editor.delta import Delta
from editor.probe_scoring import ScoringConfig, score_probes
from kg.probes import (
    KIND_SAMPLE,
    ChangeProbes,
    ProbeConfig,
    audit_probes,
    sample_probes,
    unlearn_probes,
)
from kg.store import GraphStore
from kg.view import GraphView
from workers.audit.build import build_report, settings_dict, trend_point
from workers.audit.stats import DEFAULT_THRESHOLDS, Threshold

Progress = Callable[[str, int, int], None]
TREND_KINDS = ("rewrite", "neighbour", "same_subject", "form_cloze", "retain")


@dataclass(frozen=True)
class AuditConfig:
    """Everything that fixes an audit besides the model, the graph and the changes."""

    probes: ProbeConfig = field(default_factory=ProbeConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    sample_size: int = 1000
    sample_seed: int = 0
    bootstrap: int = 1000
    confidence: float = 0.95
    seed: int = 0
    thresholds: tuple[Threshold, ...] = DEFAULT_THRESHOLDS
    trend_points: int = 12
    trend_sample: int = 200
    keep_probes: bool = True
    worst: int = 25


def _points(n_deltas: int, limit: int) -> list[int]:
    """Return the versions (0..n) at which the trend is measured, evenly spaced, ends included."""
    if n_deltas == 0:
        return [0]
    limit = max(2, limit)
    if n_deltas + 1 <= limit:
        return list(range(n_deltas + 1))
    return sorted({round(i * n_deltas / (limit - 1)) for i in range(limit)})


def _delta_info(deltas: Sequence[Delta]) -> list[dict]:
    """Return method, request ids and update norm of each delta."""
    out = []
    for d in deltas:
        norms = d.norms()
        out.append(
            {
                "method": d.method,
                "request_ids": list(d.request_ids),
                "norm": float(sum(v * v for v in norms.values()) ** 0.5) if norms else None,
            }
        )
    return out


def _trend_probes(probes: Sequence[Probe], size: int) -> list[int]:
    """Return indices of the probes scored at intermediate versions."""
    keep, samples = [], 0
    for i, p in enumerate(probes):
        kind = str(p.kind)
        if kind == KIND_SAMPLE:
            if samples < size:
                keep.append(i)
                samples += 1
        elif kind in TREND_KINDS:
            keep.append(i)
    return keep


def run_audit(
    model: Any,
    tokenizer: Any,
    store: GraphStore | GraphView,
    changes: Sequence[ChangeProbes],
    deltas: Sequence[Delta] = (),
    *,
    applied: bool = True,
    config: AuditConfig | None = None,
    model_info: dict | None = None,
    progress: Progress | None = None,
    derive_seconds: float = 0.0,
) -> dict:
    """Audit the version `model` + `deltas` against the graph; return the report dict."""
    config = config or AuditConfig()
    view = GraphView.of(store)
    report_progress = progress or (lambda stage, done, total: None)
    touched = {entity for c in changes for entity in c.entities.values()}
    forgotten = {c.entities["concept"] for c in changes if "concept" in c.entities}
    t0 = time.perf_counter()
    sample = sample_probes(
        view, config.sample_size, config.sample_seed, touched, exclude_objects=forgotten
    )
    probes = [p for c in changes for p in c.probes] + sample
    derive_seconds += time.perf_counter() - t0
    if applied:
        for delta in reversed(deltas):
            delta.revert(model)
    timings: dict[str, float] = {"derive_s": derive_seconds}
    try:
        report_progress("score before", 0, 1)
        t0 = time.perf_counter()
        before = score_probes(model, tokenizer, probes, config.scoring)
        timings["score_before_s"] = time.perf_counter() - t0
        report_progress("score before", 1, 1)
        points = _points(len(deltas), config.trend_points)
        subset = _trend_probes(probes, config.trend_sample)
        sub_probes = [probes[i] for i in subset]
        trend, applied_ids = [], set()
        trend.append(trend_point(0, "base", sub_probes, [before[i] for i in subset], set()))
        t0 = time.perf_counter()
        for n, delta in enumerate(deltas, start=1):
            delta.apply(model)
            applied_ids.update(delta.request_ids)
            report_progress("apply deltas", n, len(deltas))
            if n in points and n < len(deltas):
                scores = score_probes(model, tokenizer, sub_probes, config.scoring)
                which = applied_ids if applied_ids else None
                trend.append(trend_point(n, f"+{n} deltas", sub_probes, scores, which))
        timings["trend_s"] = time.perf_counter() - t0
        report_progress("score after", 0, 1)
        t0 = time.perf_counter()
        after = score_probes(model, tokenizer, probes, config.scoring)
        timings["score_after_s"] = time.perf_counter() - t0
        report_progress("score after", 1, 1)
        if deltas:
            scores = [after[i] for i in subset]
            which = applied_ids if applied_ids else None
            trend.append(
                trend_point(len(deltas), f"+{len(deltas)} deltas", sub_probes, scores, which)
            )
    finally:
        if not applied:
            for delta in reversed(deltas):
                delta.revert(model)
    scored = timings["score_before_s"] + timings["score_after_s"]
    timings["probes_per_s"] = 2 * len(probes) / scored if scored else 0.0
    kinds = {c.kind for c in changes}
    kind = "sample" if not kinds else (kinds.pop() if len(kinds) == 1 else "mixed")
    graph = {"url": view.store.url, "facts": view.store.count_facts()}
    info = {"deltas": _delta_info(deltas), **(model_info or {})}
    return build_report(
        kind=kind,
        changes=changes,
        probes=probes,
        before=before,
        after=after,
        thresholds=config.thresholds,
        settings=settings_dict(config),
        model=info,
        graph=graph,
        trend=trend,
        timings=timings,
        keep_probes=config.keep_probes,
        worst=config.worst,
    )


def _derive_and_audit(
    derive: Callable[[GraphView, Sequence[Any], ProbeConfig], list[ChangeProbes]],
    model: Any,
    tokenizer: Any,
    store: GraphStore,
    requests: Sequence[Any],
    deltas: Sequence[Delta],
    **kwargs: Any,
) -> dict:
    """Derive the requests' probes with `derive` (timed) and audit `model` + `deltas`."""
    config = kwargs.get("config") or AuditConfig()
    view = GraphView(store)
    t0 = time.perf_counter()
    changes = derive(view, requests, config.probes)
    return run_audit(
        model, tokenizer, view, changes, deltas, derive_seconds=time.perf_counter() - t0, **kwargs
    )


def audit_edits(
    model: Any,
    tokenizer: Any,
    store: GraphStore,
    requests: Sequence[EditRequest],
    deltas: Sequence[Delta],
    **kwargs: Any,
) -> dict:
    """Derive the edits' probes from the graph and audit `model` + `deltas`."""
    return _derive_and_audit(audit_probes, model, tokenizer, store, requests, deltas, **kwargs)


def audit_unlearning(
    model: Any,
    tokenizer: Any,
    store: GraphStore,
    requests: Sequence[UnlearnRequest],
    deltas: Sequence[Delta],
    **kwargs: Any,
) -> dict:
    """Derive forget and retain probes from the graph and audit `model` + `deltas`."""
    return _derive_and_audit(unlearn_probes, model, tokenizer, store, requests, deltas, **kwargs)


def sample_audit(
    model: Any, tokenizer: Any, store: GraphStore, deltas: Sequence[Delta], **kwargs: Any
) -> dict:
    """The whole-graph sample audit alone: random untouched facts, base vs base + deltas."""
    return run_audit(model, tokenizer, store, [], deltas, **kwargs)
