"""`sync apply`: plan the facts a model contradicts as batches of edits through the loop.

Each fact the model contradicts (it names another entity of the graph) becomes an edit from
the model's answer to the graph's object, asked with the relation's first cloze template.
The edits go in batches of `batch_size` through the same attempts and method chain as an
approved change set (`workers.sync.loop`); their probes come from the graph when the job runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from contracts.types import EditRequest
from kg.planner import EDIT, Batch, Plan, PlannedRequest
from kg.store.base import GraphStore
from workers.jobs.service import JobInfo
from workers.settings import Settings
from workers.sync.agreement import Agreement
from workers.sync.loop import submit_plan_attempts

APPLY = "sync-apply"


def contradiction_edits(store: GraphStore, agreement: Agreement) -> list[PlannedRequest]:
    """Return one planned edit per fact the model contradicts."""
    relations = {r.id: r for r in store.list_relations()}
    out = []
    for v in agreement.verdicts:
        if v.status != "contradicts":
            continue
        template = relations[v.relation].templates.cloze[0]
        request = EditRequest(
            subject=v.subject_name,
            prompt=template,
            target_new=v.object_name,
            target_true=v.answer,
            relation=v.relation,
            request_id=f"fact:{v.fact_id}",
        )
        out.append(
            PlannedRequest(
                request.request_id or "",
                EDIT,
                request,
                (),
                (),
                (v.subject,),
                v.relation,
                v.answer_id,
                v.object,
            )
        )
    return out


def batches_of(items: Sequence[PlannedRequest], size: int) -> tuple[Batch, ...]:
    """Return the edits in batches of at most `size`."""
    return tuple(
        Batch(i // size, EDIT, tuple(items[i : i + size])) for i in range(0, len(items), size)
    )


def apply_contradictions(
    store: GraphStore,
    agreement: Agreement,
    *,
    method: str | None = None,
    batch_size: int = 16,
    settings: Settings | None = None,
    enqueue: bool = True,
) -> tuple[list[JobInfo], list[dict[str, Any]]]:
    """Queue the edits that bring a model in line with the facts it contradicts."""
    edits = contradiction_edits(store, agreement)
    if not edits:
        return [], []
    result = Plan(batches_of(edits, batch_size), (), (), (), agreement.graph_version)
    key = f"apply:{agreement.model}:v{agreement.model_version}:{uuid.uuid4().hex[:12]}"
    return submit_plan_attempts(
        result,
        APPLY,
        agreement.model,
        {EDIT: method},
        settings=settings,
        plan_key=key,
        enqueue=enqueue,
    )
