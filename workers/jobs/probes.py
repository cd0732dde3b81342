"""Probes for a job submitted without any: derived from the model's graph, so every job can
be verified.

Edits get the rewrite, paraphrase, neighbour and same-subject probes of `kg.probes.edit_probes`
(the locality probes avoid the other requests of the job); unlearning requests get forget
probes in every form and retain probes (`kg.probes.unlearn_probes`). A request the graph does
not know still gets what can be derived from the request itself (its rewrite probe, its own
`forms`); a job left with no probe at all ends `unverified`.
"""

from __future__ import annotations

from collections.abc import Sequence

from contracts.types import EditRequest, Probe, UnlearnRequest
from kg.errors import KGError
from kg.probes import EDIT_RUN_PROBES, ProbeConfig, edit_probes, unlearn_probes
from kg.store.base import GraphStore
from kg.view import GraphView

UNLEARN_JOB_PROBES = ProbeConfig(fluency=False, stepwise=False)


def derive_job_probes(
    store: GraphStore, kind: str, requests: Sequence[EditRequest | UnlearnRequest]
) -> list[Probe]:
    """Return the probes a job's requests get from the graph ([] when none can be derived)."""
    view = GraphView.of(store)
    try:
        if kind == "edit":
            edits = [r for r in requests if isinstance(r, EditRequest)]
            return [
                p
                for r in edits
                for p in edit_probes(
                    view, r, EDIT_RUN_PROBES, batch=[o for o in edits if o is not r]
                )
            ]
        forgets = [r for r in requests if isinstance(r, UnlearnRequest)]
        return [p for c in unlearn_probes(view, forgets, UNLEARN_JOB_PROBES) for p in c.probes]
    except KGError:
        return []
