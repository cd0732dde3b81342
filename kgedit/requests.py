"""Requests from a notebook: dicts or `contracts` dataclasses, checked as a job checks them.

`checked` turns the given requests into one validated `JobSpec` through the job service's
own `check_job` (field types, sizes, hyper-parameter overrides, and what the method needs
of each request, e.g. an unlearning anchor), so a request the service would refuse is
refused here too, with the same message.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from contracts.types import EditRequest, Probe, ProbeKind, UnlearnRequest
from workers.jobs.codec import to_plain
from workers.jobs.service import check_job
from workers.jobs.spec import JobSpec

NOTEBOOK_MODEL = "notebook"  # the model name of a spec no job table ever sees
REQUEST_TYPES = {"edit": EditRequest, "unlearn": UnlearnRequest}


def as_plain(request: Any, kind: str) -> dict[str, Any]:
    """Return one request as plain data; refuse another kind's dataclass or a non-mapping."""
    cls = REQUEST_TYPES[kind]
    if isinstance(request, cls):
        return to_plain(request)
    if dataclasses.is_dataclass(request) or not isinstance(request, Mapping):
        raise TypeError(f"a {kind} request is a dict or a {cls.__name__}, not {request!r}")
    return to_plain(dict(request))  # nested dataclasses (probes, subgraphs) as plain data too


def checked(
    kind: str,
    method: str,
    requests: Iterable[Any],
    hparams: Mapping[str, Any] | None,
    batch_size: int | None,
    first_id: int,
) -> JobSpec:
    """Return the validated spec of one call; requests without an id get `r<running index>`.

    Raises `workers.errors.InvalidInputError` (`kgedit.InvalidInputError`) for bad input.
    """
    plain = [as_plain(r, kind) for r in requests]
    for i, r in enumerate(plain):
        if r.get("request_id") is None:
            r["request_id"] = f"r{first_id + i}"
    payload = {
        "model": NOTEBOOK_MODEL,
        "kind": kind,
        "method": method,
        "requests": plain,
        "hparams": to_plain(dict(hparams or {})),
        "batch_size": batch_size or max(1, len(plain)),
    }
    return check_job(payload)


def own_probes(request: EditRequest) -> list[Probe]:
    """Return the probes an edit request carries itself: its prompt, paraphrases, neighbours."""
    change = {"change": request.request_id or request.subject}
    new, old = request.target_new, request.target_true
    probes = [Probe(request.rendered(), new, ProbeKind.REWRITE, old, change)]
    for template in request.paraphrases:
        if template.count("{}") == 1:
            prompt = template.format(request.subject)
            probes.append(Probe(prompt, new, ProbeKind.PARAPHRASE, old, change))
    return probes + list(request.neighbours)
