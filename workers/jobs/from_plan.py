"""Turn the planner's batches into jobs: one job per batch, queued in plan order.

The model's queue runs one job at a time, first in first out, so submitting the batches in
plan order keeps dependent requests (chains, repeated slots) in order. Each job's
idempotency key is `plan:<change sets>:<graph version>:<batch index>`, so approving, or
retrying the submission of, the same plan never queues a batch twice. A batch that cannot
be submitted (an unregistered model, a method not installed) is reported with its error,
never dropped silently; the batches after it are still submitted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kg.planner import EDIT, Plan
from workers.errors import WorkersError
from workers.jobs.codec import to_plain
from workers.jobs.dispatch import default_method
from workers.jobs.service import JobInfo, submit_job
from workers.settings import Settings


@dataclass(frozen=True)
class PlanSubmission:
    """The jobs a plan became, and the batches that could not be submitted."""

    jobs: tuple[JobInfo, ...]
    errors: tuple[dict[str, Any], ...] = field(default=())


def batch_key(plan: Plan, index: int) -> str:
    """Return the idempotency key of one batch of a plan."""
    sets = "+".join(sorted(plan.change_sets))
    return f"plan:{sets}:{plan.graph_version}:{index}"[:200]


def submit_plan(
    plan: Plan,
    model: str,
    *,
    methods: dict[str, str] | None = None,
    thresholds: Sequence[Any] | None = None,
    settings: Settings | None = None,
    enqueue: bool = True,
) -> PlanSubmission:
    """Submit every batch of `plan` as a job on `model`; return the jobs and any errors."""
    chosen = dict(methods or {})
    jobs: list[JobInfo] = []
    errors: list[dict[str, Any]] = []
    for batch in plan.batches:
        probes = [p for item in batch.requests for p in item.probes]
        spec: dict[str, Any] = {
            "model": model,
            "method": chosen.get(batch.kind) or default_method(batch.kind),
            "kind": batch.kind,
            "requests": [item.request for item in batch.requests],
            "probes": probes,
            "batch_size": len(batch.requests) if batch.kind != EDIT else 1,
        }
        if thresholds is not None:
            spec["thresholds"] = list(thresholds)
        try:
            info = submit_job(
                to_plain(spec),
                idempotency_key=batch_key(plan, batch.index),
                settings=settings,
                enqueue=enqueue,
            )
        except WorkersError as exc:
            errors.append({"batch": batch.index, "kind": batch.kind, "error": str(exc)})
            continue
        jobs.append(info)
    return PlanSubmission(tuple(jobs), tuple(errors))
