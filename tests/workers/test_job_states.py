"""The job state machine: allowed paths, refused moves, timestamped transitions in the table."""

from __future__ import annotations

import uuid

import pytest
from jobs_helpers import job_settings  # noqa: F401
from sqlalchemy import select

from workers.db import JobRow, JobTransitionRow, ModelRow, get_database
from workers.errors import InvalidTransitionError
from workers.jobs.service import add_queued_job
from workers.jobs.spec import JobSpec
from workers.jobs.states import (
    ALLOWED,
    TERMINAL,
    JobState,
    check_transition,
    parse_state,
    transition,
)

S = JobState


def _new_job(session) -> JobRow:
    """Insert a model and a queued job directly (no payload checks needed here)."""
    if session.get(ModelRow, "m") is None:
        session.add(ModelRow(name="m", path="/x", weights_sha256="0" * 64, param_hashes={}))
        session.flush()
    spec = JobSpec(model="m", method="rome", requests=())
    return add_queued_job(session, spec, str(uuid.uuid4()), {"requests": []}, "0" * 64)


def test_the_happy_path_is_recorded_with_ordered_timestamps(job_settings):  # noqa: F811
    db = get_database()
    with db.session() as session:
        job = _new_job(session)
        for state in (S.PLANNING, S.RUNNING, S.AUDITING, S.SUCCEEDED):
            transition(session, job, state, f"to {state}", worker_id="host:1")
        job_id = job.id
    with db.session() as session:
        job = session.get(JobRow, job_id)
        rows = session.scalars(
            select(JobTransitionRow)
            .where(JobTransitionRow.job_id == job_id)
            .order_by(JobTransitionRow.id)
        ).all()
        assert [(r.from_state, r.to_state) for r in rows] == [
            (None, "queued"),
            ("queued", "planning"),
            ("planning", "running"),
            ("running", "auditing"),
            ("auditing", "succeeded"),
        ]
        times = [r.at for r in rows]
        assert times == sorted(times) and all(t.tzinfo is not None for t in times)
        assert job.state == "succeeded" and job.finished_at == times[-1]
        assert job.progress == 1.0 and job.worker_id is None


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        (S.SUCCEEDED, S.RUNNING),
        (S.ROLLED_BACK, S.QUEUED),
        (S.QUEUED, S.AUDITING),
        (S.QUEUED, S.SUCCEEDED),
        (S.RUNNING, S.ROLLED_BACK),
        (S.FAILED, S.RUNNING),
        (S.CANCELLED, S.SUCCEEDED),
    ],
)
def test_refused_moves_raise_and_change_nothing(job_settings, src, dst):  # noqa: F811
    db = get_database()
    with db.session() as session:
        job = _new_job(session)
        job.state = src.value
        job_id = job.id
    with db.session() as session:
        job = session.get(JobRow, job_id)
        with pytest.raises(InvalidTransitionError, match=f"from {src} to {dst}"):
            transition(session, job, dst, "nope")
        assert job.state == src.value
    with db.session() as session:
        n = len(
            session.scalars(
                select(JobTransitionRow.id).where(JobTransitionRow.job_id == job_id)
            ).all()
        )
        assert n == 1  # only the creation


def test_machine_shape():
    # every state is reachable from queued
    seen, todo = {S.QUEUED}, [S.QUEUED]
    while todo:
        for nxt in ALLOWED[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    assert seen == set(S)
    # only the audit gate rolls back; succeeded and rolled_back are final
    assert [s for s in S if S.ROLLED_BACK in ALLOWED[s]] == [S.AUDITING]
    assert not ALLOWED[S.SUCCEEDED] and not ALLOWED[S.ROLLED_BACK]
    assert ALLOWED[S.FAILED] == {S.QUEUED} == ALLOWED[S.CANCELLED]
    for state in TERMINAL:
        assert state not in ALLOWED[state]
    check_transition("running", "running")  # resumption after a lost worker


def test_unknown_state_names_the_states():
    with pytest.raises(ValueError, match="queued, planning"):
        parse_state("exploded")
    with pytest.raises(ValueError, match="unknown job state"):
        check_transition("queued", "exploded")
