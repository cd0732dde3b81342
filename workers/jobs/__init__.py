"""The job system: job table and state machine, submission and control, the runner."""

from workers.jobs.service import (
    JobInfo,
    TransitionInfo,
    cancel_job,
    get_job,
    list_jobs,
    retry_job,
    submit_job,
)
from workers.jobs.spec import DEFAULT_GATE, JobSpec, parse_spec
from workers.jobs.states import JobState

__all__ = [
    "DEFAULT_GATE",
    "JobInfo",
    "JobSpec",
    "JobState",
    "TransitionInfo",
    "cancel_job",
    "get_job",
    "list_jobs",
    "parse_spec",
    "retry_job",
    "submit_job",
]
