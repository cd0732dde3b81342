"""A consolidation through the job path on the tiny knowledge model: a ROME edit, then a
consolidation version that folds it in (gated, audited, in the ledger), which resets the
planner's budget and rolls back bit for bit."""

from __future__ import annotations

import pytest
from jobs_helpers import checked, job_settings, tiny  # noqa: F401

from editor.loading import load_model
from workers.db import get_database
from workers.edit_run import select_known_edits
from workers.graph_edits import graph_edits
from workers.jobs import get_job, submit_job
from workers.jobs.codec import to_plain
from workers.jobs.reporter import Reporter
from workers.jobs.runner import RunContext, execute_job
from workers.ledger import list_versions, load_version
from workers.ledger.checksums import ledger_checksum, param_hashes
from workers.ledger.registry import db_of
from workers.ledger.versions import rollback
from workers.sync.capacity import budget_of

pytestmark = pytest.mark.slow

TINY_STEPS = {"steps": 40, "lr": 5e-4, "batch_size": 16, "edit_share": 0.3}


def _run(ctx, method: str, edits, hparams=None) -> str:
    """Submit and run one job in-process; return its id."""
    payload = {"model": "tiny", "method": method, "requests": [to_plain(r) for r in edits]}
    if hparams:
        payload.update(hparams=hparams, batch_size=len(edits))
    job = submit_job(checked(payload), enqueue=False)
    assert execute_job(job.id, ctx).status == "succeeded", get_job(job.id).message
    return job.id


def _budget(settings):
    with db_of(settings).session() as session:
        return budget_of(session, "tiny")


def test_a_consolidation_version_rolls_back_bit_for_bit(
    tiny,  # noqa: F811
    tiny_model_dir,
    tiny_facts,
    monkeypatch,
) -> None:
    messages: list[str] = []
    write = Reporter.__call__

    def spy(self, fraction: float, message: str, force: bool = False) -> None:
        messages.append(message)
        write(self, fraction, message, force)

    monkeypatch.setattr(Reporter, "__call__", spy)
    model, tok = load_model(tiny_model_dir)
    edits = select_known_edits(model, tok, graph_edits(tiny_facts, seed=0), 3)
    ctx = RunContext.create(tiny)
    root = next(v for v in list_versions("tiny") if v.is_head)
    _run(ctx, "rome", edits[:1])
    edited = next(v for v in list_versions("tiny") if v.is_head)
    assert _budget(tiny).edits == 1 and _budget(tiny).norm > 0

    assert any(", request 1/1" in m for m in messages)
    messages.clear()
    job_id = _run(ctx, "consolidate", edits[1:], TINY_STEPS)
    assert any(m.startswith("training: step 1/1, update ") for m in messages)
    assert not any("request" in m for m in messages), messages  # its progress counts updates
    info = get_job(job_id)
    assert info.result["gate"]["passed"]
    (version,) = [v for v in list_versions("tiny") if v.job_id == job_id]
    assert version.is_head and version.checksum != edited.checksum
    assert _budget(tiny).edits == 0  # the consolidation folded the budget back in
    warm = ctx.warm.get(get_database(), "tiny")
    assert ledger_checksum(param_hashes(warm.model)) == version.checksum

    rollback("tiny", edited.id)
    lm, _, _ = load_version("tiny")
    assert ledger_checksum(param_hashes(lm)) == edited.checksum  # bit for bit
    assert _budget(tiny).edits == 1
    rollback("tiny", root.id)
    lm, _, _ = load_version("tiny")
    assert ledger_checksum(param_hashes(lm)) == root.checksum
