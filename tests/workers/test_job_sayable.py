"""Targets the model cannot say are reported when an edit job is submitted, not refused."""

from __future__ import annotations

import pytest
from jobs_helpers import edit_payload, job_settings, random_model_dir  # noqa: F401

from editor.calibrate import known_facts
from editor.loading import load_model
from editor.tokens import target_ids
from workers.db import reset_databases
from workers.jobs import get_job, retry_job, submit_job
from workers.jobs.sayable import UNSAYABLE
from workers.ledger import register_model
from workers.settings import get_settings

pytestmark = pytest.mark.slow  # the tiny knowledge model
NEVER_TAUGHT = "Zorblaxine Quetravimund"


@pytest.fixture
def tiny(job_settings, tiny_model_dir, tiny_facts):  # noqa: F811
    """The registered tiny knowledge model and a multi-token object it says."""
    register_model("tiny", tiny_model_dir)
    model, tok = load_model(tiny_model_dir)
    said = [f for f in known_facts(model, tok, tiny_facts) if len(target_ids(tok, f.object)) > 1]
    assert said, "the tiny model says no multi-token object"
    return said[0]


def test_an_unsayable_target_is_reported_at_submission(tiny, job_settings):  # noqa: F811
    other = tiny.templates[0]
    edits = [("Ada Lovelace", other, tiny.object), ("Ada Lovelace", other, NEVER_TAUGHT)]
    job = submit_job(edit_payload("tiny", edits))
    assert job.state == "queued"  # reported, not refused
    (warning,) = job.result["warnings"]
    assert warning["kind"] == UNSAYABLE and warning["target"] == NEVER_TAUGHT
    assert warning["request_id"] == "req-1" and warning["tail_nll"] > warning["threshold"]
    assert NEVER_TAUGHT in warning["message"]
    assert get_job(job.id).result["warnings"] == [warning]  # visible to every reader


def test_sayable_targets_and_disabled_checks_give_no_warning(tiny, job_settings):  # noqa: F811
    job = submit_job(edit_payload("tiny", [("Ada Lovelace", tiny.templates[0], tiny.object)]))
    assert "warnings" not in job.result
    from workers.jobs import cancel_job

    cancel_job(job.id)
    assert "warnings" not in retry_job(job.id).result
    unchecked = job_settings.model_copy(update={"check_targets": False})
    from workers.jobs.service import submit

    quiet = submit(edit_payload("tiny", [("Ada", "{} lives in", NEVER_TAUGHT)]),
                   settings=unchecked, enqueue=False)  # fmt: skip
    assert "warnings" not in quiet.job.result


def test_the_check_runs_on_the_weights_registered_under_the_name(
    tiny,
    tmp_path,
    monkeypatch,
    random_model_dir,  # noqa: F811
):
    """A process that checked `tiny` of another metadata database (other weights under the
    same name) checks this database's `tiny`, not the copy it has warm."""
    edit = [("Ada Lovelace", tiny.templates[0], tiny.object)]
    assert "warnings" not in submit_job(edit_payload("tiny", edit)).result
    monkeypatch.setenv("KGEDIT_VAR_DIR", str(tmp_path / "other"))
    get_settings.cache_clear()
    reset_databases()
    register_model("tiny", random_model_dir)  # another model under the same name
    assert submit_job(edit_payload("tiny", edit)).result["warnings"][0]["kind"] == UNSAYABLE
