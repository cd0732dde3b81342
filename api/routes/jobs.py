"""Job routes (operators): submit a batch as JSON or as a JSONL upload, list, status, control.

An `Idempotency-Key` header makes a submission safe to retry: the same key and payload
return the job already queued (200); the same key with another payload is a 409. A new job
is 201, or 202 with a `warning` when the broker is down (the job is kept and sent later).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from api.deps import READERS, CallerDep, roles
from api.keys import Role
from api.schemas.common import NAME_PATTERN
from api.schemas.jobs import JobCreate, JobPublic
from api.schemas.requests import parse_jsonl
from workers.jobs import service
from workers.jobs.dispatch import default_method
from workers.jobs.states import JobState

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


UNSENT = (
    "the job is recorded as queued but the broker is unreachable; a worker's recovery sends it "
    "when the broker is back (do not resubmit without an idempotency key)"
)
SUBMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": JobPublic, "description": "a replayed idempotency key: the job already queued"},
    202: {"model": JobPublic, "description": "recorded but not yet sent (broker down): `warning`"},
}


def _public(result: service.Submission) -> JobPublic:
    """Return the public view of a submission, with a warning when its message was not sent."""
    public = JobPublic.of(result.job)
    if not result.sent:
        public.warning = UNSENT
    return public


def _status(results: list[service.Submission]) -> int:
    """Return 201 (created), 202 (created, not sent) or 200 (every job replayed)."""
    if any(not r.sent for r in results):
        return status.HTTP_202_ACCEPTED
    return status.HTTP_201_CREATED if any(r.created for r in results) else status.HTTP_200_OK


@router.post(
    "", status_code=status.HTTP_201_CREATED, responses=SUBMIT_RESPONSES, **roles(Role.OPERATOR)
)
def submit(
    body: JobCreate, request: Request, response: Response, _: CallerDep, key: IdemKey = None
) -> JobPublic:
    """Queue a batch of edit or unlearn requests on a registered model."""
    result = service.submit(
        body.to_spec(), idempotency_key=key, settings=request.app.state.settings
    )
    response.status_code = _status([result])
    return _public(result)


UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
    }
}


def _upload_specs(
    body: bytes, model: str, methods: dict[str, str | None], settings: Any
) -> list[tuple[str, Any]]:
    """Parse and check an upload (off the event loop): one checked spec per kind present."""
    lines = parse_jsonl(body, settings.api_max_upload_lines)
    specs = []
    for kind, method in methods.items():
        chosen = [r for r in lines if r.type == kind]
        if chosen:
            chosen_method = method or default_method(kind)
            job = JobCreate(model=model, method=chosen_method, kind=kind, requests=chosen)
            specs.append((kind, service.check_job(job.to_spec())))
    return specs


@router.post(
    "/upload",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": list[JobPublic]}, 202: {"model": list[JobPublic]}},
    **roles(Role.OPERATOR, openapi_extra=UPLOAD_BODY),
)
async def upload(
    request: Request,
    response: Response,
    _: CallerDep,
    model: Annotated[str, Query(min_length=1, max_length=64, pattern=NAME_PATTERN)],
    edit_method: Annotated[
        str | None, Query(min_length=1, max_length=64, pattern=NAME_PATTERN)
    ] = None,
    unlearn_method: Annotated[
        str | None, Query(min_length=1, max_length=64, pattern=NAME_PATTERN)
    ] = None,
    key: IdemKey = None,
) -> list[JobPublic]:
    """Queue a JSONL file of requests (one per line): one job per kind, in file order.

    Every job of the upload is validated before any is queued: a refused upload queues nothing.
    """
    settings = request.app.state.settings
    body = await request.body()
    methods = {"edit": edit_method, "unlearn": unlearn_method}
    specs = await run_in_threadpool(_upload_specs, body, model, methods, settings)
    results = [
        await run_in_threadpool(
            service.submit,
            spec,
            idempotency_key=f"{key}:{kind}" if key else None,
            settings=settings,
        )
        for kind, spec in specs
    ]
    response.status_code = _status(results)
    return [_public(r) for r in results]


@router.get("", **roles(*READERS))
def list_jobs(
    request: Request,
    model: Annotated[str | None, Query(max_length=64)] = None,
    state: Annotated[JobState | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[JobPublic]:
    """List jobs, newest first."""
    infos = service.list_jobs(
        model=model,
        state=state.value if state else None,
        limit=limit,
        offset=offset,
        settings=request.app.state.settings,
    )
    return [JobPublic.of(i) for i in infos]


@router.get("/{job_id}", **roles(*READERS))
def get_job(job_id: str, request: Request) -> JobPublic:
    """Return a job with its progress and every state transition."""
    return JobPublic.of(service.get_job(job_id, settings=request.app.state.settings))


@router.post("/{job_id}/cancel", **roles(Role.OPERATOR))
def cancel(job_id: str, request: Request) -> JobPublic:
    """Cancel a queued job, or ask a running one to stop at its next step."""
    return JobPublic.of(service.cancel_job(job_id, settings=request.app.state.settings))


@router.post("/{job_id}/retry", **roles(Role.OPERATOR))
def retry(job_id: str, request: Request) -> JobPublic:
    """Queue a failed, cancelled or rolled-back job again."""
    return JobPublic.of(service.retry_job(job_id, settings=request.app.state.settings))
