"""What a job asks for: a batch of edit or unlearning requests on one model, with its probes.

A `JobSpec` is validated once, at submission, and stored as plain JSON in the job row (the
payload). Requests without an id get `r0`, `r1`, ... so every delta in the ledger names the
requests it applied. The audit gate's thresholds default to rewrite ≥ 90 % after, neighbour
and same-subject drops of at most 5 and 10 points for edits, and to forgetting in the cloze
and question forms with retained facts kept for unlearning (docs/jobs.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from contracts.types import EditRequest, Probe, UnlearnRequest
from workers.audit.stats import Threshold
from workers.errors import InvalidInputError
from workers.jobs.codec import from_plain, to_plain

KINDS = ("edit", "unlearn")
MAX_REQUESTS = 10_000
MAX_PROBES = 100_000
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024
MAX_TEXT = 10_000
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

# The default gate: rewrite ≥ 0.9, neighbourhood drop ≤ 0.05, same-subject drop ≤ 0.1.
DEFAULT_GATE = (
    Threshold("rewrite", min_after=0.9),
    Threshold("neighbour", max_drop=0.05),
    Threshold("same_subject", max_drop=0.1),
)
# The default gate of unlearning jobs: the cloze form forgotten for ≥ 90 % of the concept's
# facts, the question form for ≥ 75 %, retained facts dropping by at most 10 points.
DEFAULT_UNLEARN_GATE = (
    Threshold("form_cloze:forget", min_after=0.9),
    Threshold("form_question:forget", min_after=0.75),
    Threshold("retain", max_drop=0.1),
)


def check_name(value: str, what: str) -> str:
    """Return `value` if it is a valid model or method name, else raise `InvalidInputError`."""
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise InvalidInputError(
            f"{what} must be 1-64 characters of letters, digits, '_', '.', '-' "
            f"(starting with a letter or digit), not {value!r}"
        )
    return value


@dataclass(frozen=True)
class JobSpec:
    """A batch of requests for one model and method, the probes that audit it, and the gate."""

    model: str
    method: str
    requests: tuple[EditRequest | UnlearnRequest, ...]
    kind: str = "edit"
    probes: tuple[Probe, ...] = ()
    thresholds: tuple[Threshold, ...] = DEFAULT_GATE
    hparams: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 1

    @property
    def request_cls(self) -> type:
        """Return the request type of this job's kind."""
        return EditRequest if self.kind == "edit" else UnlearnRequest

    @property
    def steps(self) -> int:
        """Return the number of method calls (batches of `batch_size` requests)."""
        return -(-len(self.requests) // self.batch_size)

    def step_requests(self, step: int) -> list[EditRequest | UnlearnRequest]:
        """Return the requests of one step."""
        return list(self.requests[step * self.batch_size : (step + 1) * self.batch_size])

    def to_payload(self) -> dict[str, Any]:
        """Return the spec as plain JSON data."""
        return to_plain(self)

    def payload_sha256(self) -> str:
        """Return the sha256 of the canonical JSON payload."""
        text = json.dumps(self.to_payload(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def _check_texts(value: Any, path: str) -> None:
    """Refuse strings longer than `MAX_TEXT` anywhere in a request or probe."""
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise InvalidInputError(f"{path}: text of {len(value)} characters (max {MAX_TEXT})")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_texts(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_texts(v, f"{path}[{i}]")


def _with_ids(requests: list[Any]) -> tuple[Any, ...]:
    """Give requests without an id `r<index>`; refuse duplicate ids."""
    out, seen = [], set()
    for i, r in enumerate(requests):
        if r.request_id is None:
            r = dataclasses.replace(r, request_id=f"r{i}")
        if r.request_id in seen:
            raise InvalidInputError(f"requests[{i}]: duplicate request_id {r.request_id!r}")
        seen.add(r.request_id)
        out.append(r)
    return tuple(out)


def parse_spec(data: Mapping[str, Any] | JobSpec) -> JobSpec:
    """Validate a job payload (plain data or a `JobSpec`) and return the normalised spec."""
    if isinstance(data, JobSpec):
        data = data.to_payload()
    if not isinstance(data, Mapping):
        raise InvalidInputError(f"a job payload must be a JSON object, not {type(data).__name__}")
    size = len(json.dumps(data, default=str))
    if size > MAX_PAYLOAD_BYTES:
        raise InvalidInputError(f"payload of {size:,} bytes exceeds {MAX_PAYLOAD_BYTES:,}")
    data = dict(data)
    kind = data.get("kind", "edit")
    if kind not in KINDS:
        raise InvalidInputError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    requests = data.get("requests")
    if not isinstance(requests, list) or not requests:
        raise InvalidInputError("requests: a job needs a non-empty array of requests")
    if len(requests) > MAX_REQUESTS:
        raise InvalidInputError(f"requests: {len(requests)} requests (max {MAX_REQUESTS})")
    probes = data.get("probes", [])
    if isinstance(probes, list) and len(probes) > MAX_PROBES:
        raise InvalidInputError(f"probes: {len(probes)} probes (max {MAX_PROBES})")
    _check_texts(requests, "requests")
    _check_texts(probes, "probes")
    cls = EditRequest if kind == "edit" else UnlearnRequest
    parsed = [from_plain(cls, r, f"requests[{i}]") for i, r in enumerate(requests)]
    rest = {k: v for k, v in data.items() if k not in {"requests", "kind"}}
    if kind == "unlearn" and "thresholds" not in rest:
        rest["thresholds"] = to_plain(DEFAULT_UNLEARN_GATE)
    spec = from_plain(JobSpec, {**rest, "requests": [], "kind": kind})
    spec = dataclasses.replace(spec, requests=_with_ids(parsed))
    check_name(spec.model, "model")
    check_name(spec.method, "method")
    if not 1 <= spec.batch_size <= len(spec.requests):
        raise InvalidInputError(
            f"batch_size must be 1..{len(spec.requests)}, not {spec.batch_size}"
        )
    for i, t in enumerate(spec.thresholds):
        if t.min_after is None and t.max_drop is None:
            raise InvalidInputError(f"thresholds[{i}]: give min_after or max_drop")
    return spec
