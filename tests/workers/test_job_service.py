"""Submitting and steering jobs: validation, idempotency keys, cancel and retry of queued jobs."""

from __future__ import annotations

import pytest
from jobs_helpers import broker_messages, edit_payload, job_settings, random_model_dir  # noqa: F401

from workers.errors import (
    IdempotencyConflictError,
    InvalidInputError,
    InvalidTransitionError,
    JobNotFoundError,
    ModelNotFoundError,
)
from workers.jobs import cancel_job, get_job, list_jobs, retry_job, submit_job
from workers.ledger import register_model

EDITS = [("Ada Lovelace", "{} was born in", "Tokyo"), ("Mount Fuji", "{} is located in", "Paris")]


@pytest.fixture
def model(job_settings, random_model_dir):  # noqa: F811
    """A registered random model."""
    return register_model("rand", random_model_dir).name


def test_submit_records_a_queued_job_and_one_message(model, job_settings):  # noqa: F811
    job = submit_job(edit_payload(model, EDITS), idempotency_key="batch-1")
    assert job.state == "queued" and job.steps_total == 2 and job.n_requests == 2
    assert [(t.from_state, t.to_state) for t in job.transitions] == [(None, "queued")]
    assert job.enqueued_at is not None and job.run == 1
    assert broker_messages(job_settings, model) == 1
    # same key, same payload: the same job, nothing sent again
    again = submit_job(edit_payload(model, EDITS), idempotency_key="batch-1")
    assert again.id == job.id and broker_messages(job_settings, model) == 1
    # same key, other payload: refused
    with pytest.raises(IdempotencyConflictError, match="different payload"):
        submit_job(edit_payload(model, EDITS[:1]), idempotency_key="batch-1")
    # no key: every submission is a new job
    other = submit_job(edit_payload(model, EDITS))
    assert other.id != job.id and other.idempotency_key.startswith("auto:")
    assert {j.id for j in list_jobs(model=model)} == {job.id, other.id}


def _bad(model: str) -> list[tuple[object, str]]:
    good = edit_payload(model, EDITS)
    req = good["requests"][0]
    return [
        ([1, 2], "JSON object"),
        ({**good, "requests": []}, "non-empty"),
        ({**good, "requests": [{**req, "prompt": "no slot"}]}, r"requests\[0\].*exactly one"),
        ({**good, "requests": [{**req, "colour": "red"}]}, "unknown field.*colour"),
        (
            {**good, "requests": [{**req, "subject": 7}]},
            r"requests\[0\].subject: expected a string",
        ),
        ({**good, "requests": [{**req, "subject": "x" * 20_000}]}, "max 10000"),
        ({**good, "requests": [req] * 10_001}, "max 10000"),
        ({**good, "model": "x'; DROP TABLE jobs; --"}, "model must be"),
        ({**good, "method": "nonsense"}, "unknown edit method.*rome"),
        ({**good, "kind": "explode"}, "kind must be"),
        ({**good, "hparams": {"v_lr": 0.1, "warp": 9}}, "'warp' not in RomeHyperParams"),
        ({**good, "hparams": {"preset": "gpt2-huge"}}, "hparams.preset: 'gpt2-huge' is not a"),
        ({**good, "batch_size": 0}, "batch_size"),
        ({**good, "requests": [{**req, "request_id": "a"}, {**req, "request_id": "a"}]}, "dupl"),
        ({**good, "thresholds": [{"group": "rewrite"}]}, "min_after or max_drop"),
        ({**good, "probes": [{"prompt": "p", "expected": 3, "kind": "rewrite"}]}, "expected"),
        (
            {**good, "kind": "unlearn", "method": "no-such", "requests": [{"concept": "X"}]},
            "no unlearn methods are installed|unknown unlearn method 'no-such'",
        ),
        ({**good, "kind": "unlearn", "requests": [req]}, r"requests\[0\]: unknown field"),
    ]


def test_malformed_payloads_are_refused_and_write_nothing(model):
    for payload, message in _bad(model):
        with pytest.raises(InvalidInputError, match=message):
            submit_job(payload)
    with pytest.raises(ModelNotFoundError, match="not registered"):
        submit_job(edit_payload("ghost", EDITS))
    with pytest.raises(InvalidInputError, match="idempotency key"):
        submit_job(edit_payload(model, EDITS), idempotency_key="x" * 201)
    assert list_jobs() == []


def test_a_known_preset_name_is_accepted_in_hparams(model):
    job = submit_job({**edit_payload(model, EDITS), "hparams": {"preset": "gpt2-medium"}})
    assert job.state == "queued"


def test_a_missing_statistics_corpus_is_refused_at_submission(model, tmp_path, monkeypatch):
    from workers.settings import get_settings

    monkeypatch.setenv("KGEDIT_STATS_CORPUS", str(tmp_path / "gone.jsonl"))
    get_settings.cache_clear()
    with pytest.raises(InvalidInputError, match=r"KGEDIT_STATS_CORPUS \(.*gone.jsonl\) does"):
        submit_job(edit_payload(model, EDITS))
    assert list_jobs() == []
    (tmp_path / "gone.jsonl").write_text('{"text": "a sentence"}\n')
    assert submit_job(edit_payload(model, EDITS)).state == "queued"
    get_settings.cache_clear()


def test_cancel_and_retry_of_a_queued_job(model):
    job = submit_job(edit_payload(model, EDITS))
    cancelled = cancel_job(job.id)
    assert cancelled.state == "cancelled" and cancelled.finished_at is not None
    assert cancelled.cancel_requested
    with pytest.raises(InvalidTransitionError, match="already finished"):
        cancel_job(job.id)
    again = retry_job(job.id)
    assert again.state == "queued" and again.run == 2 and not again.cancel_requested
    assert [t.to_state for t in again.transitions] == ["queued", "cancelled", "queued"]
    assert "run 2" in again.transitions[-1].message
    with pytest.raises(InvalidTransitionError, match="only failed or cancelled"):
        retry_job(job.id)


def test_unknown_ids_and_filters(model):
    with pytest.raises(JobNotFoundError):
        get_job("00000000-0000-0000-0000-000000000000")
    with pytest.raises(JobNotFoundError):
        cancel_job("' OR 1=1 --")
    with pytest.raises(InvalidInputError, match="unknown job state"):
        list_jobs(state="exploded")
    with pytest.raises(InvalidInputError, match="limit"):
        list_jobs(limit=0)
    job = submit_job(edit_payload(model, EDITS))
    assert [j.id for j in list_jobs(state="queued")] == [job.id]
    assert list_jobs(state="running") == [] and list_jobs(model="other") == []
    data = get_job(job.id).to_dict()
    assert data["state"] == "queued" and data["transitions"][0]["to"] == "queued"
