"""Bodies of the job and model routes.

`JobCreate` is the one job schema: `POST /v1/jobs` and `kgedit jobs submit` both read it, and
it accepts what `to_plain(JobSpec)` writes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from api.schemas.common import NAME_PATTERN, DbId, Name, PublicView, SafeId, Strict, derive_public
from api.schemas.requests import EditRequestIn, ProbeIn, UnlearnRequestIn
from workers.calibration import CalibrationInfo
from workers.jobs.codec import to_plain
from workers.jobs.service import JobInfo
from workers.jobs.states import JobState
from workers.ledger.registry import ModelInfo
from workers.ledger.versions import VersionInfo

ModelName = Field(..., min_length=1, max_length=64, pattern=NAME_PATTERN)


class ThresholdIn(Strict):
    """A gate on one audit group: `min_after` and/or `max_drop`."""

    group: str = Field(..., min_length=1, max_length=100)
    metric: Literal["success", "entropy", "exact"] = "success"
    min_after: float | None = Field(None, ge=0, le=1e6)
    max_drop: float | None = Field(None, ge=0, le=1e6)
    relative: bool = False


class JobCreate(Strict):
    """A batch of requests of one kind for one model and method."""

    model: str = ModelName
    method: Name
    kind: Literal["edit", "unlearn"] = "edit"
    requests: list[EditRequestIn | UnlearnRequestIn] = Field(..., min_length=1, max_length=10_000)
    probes: list[ProbeIn] = Field(default_factory=list, max_length=100_000)
    thresholds: list[ThresholdIn] | None = Field(None, max_length=100)
    hparams: dict[str, Any] = Field(default_factory=dict)
    batch_size: int = Field(1, ge=1, le=10_000)

    @model_validator(mode="after")
    def _one_kind(self) -> JobCreate:
        if any(r.type != self.kind for r in self.requests):
            raise ValueError(f"a {self.kind} job takes only {self.kind} requests")
        return self

    def to_spec(self) -> dict[str, Any]:
        """Return the job payload the job service validates (what `to_plain(JobSpec)` writes)."""
        spec = {
            "model": self.model,
            "method": self.method,
            "kind": self.kind,
            "requests": to_plain([r.to_request() for r in self.requests]),
            "probes": to_plain([p.to_probe() for p in self.probes]),
            "hparams": self.hparams,
            "batch_size": self.batch_size,
        }
        if self.thresholds is not None:
            spec["thresholds"] = [t.model_dump() for t in self.thresholds]
        return spec


class _JobView(PublicView):
    """What the job routes add to a job record."""

    warning: str | None = None


JobPublic = derive_public(
    "JobPublic",
    JobInfo,
    exclude=frozenset({"run", "worker_id", "enqueued_at"}),
    types={"state": JobState, "transitions": list[dict[str, Any]]},
    base=_JobView,
)
"""A job's state, progress and result (the fields of `JobInfo`), and a submission warning."""


class ModelCreate(Strict):
    """Register a local model directory (config.json and safetensors weights)."""

    name: str = ModelName
    path: SafeId = Field(..., min_length=1, max_length=4096)
    graph_url: SafeId | None = Field(None, max_length=4096)
    follow: bool = Field(False, description="plan every approved change set on this model")


class FollowBody(Strict):
    """Whether the model follows the graph."""

    follow: bool


ModelPublic = derive_public("ModelPublic", ModelInfo, exclude=frozenset({"meta"}))
CalibrationPublic = derive_public("CalibrationPublic", CalibrationInfo)


class CalibrateBody(Strict):
    """How much of the model's calibration split to use (defaults: docs/calibration.md)."""

    n_trace: int | None = Field(None, ge=2, le=200, description="facts to trace")
    n_dev: int | None = Field(None, ge=2, le=100, description="dev edits per grid point")
    samples: int | None = Field(None, ge=1, le=50, description="noise samples per traced fact")


"""A registered model (the fields of `ModelInfo` but its metadata)."""

VersionPublic = derive_public(
    "VersionPublic",
    VersionInfo,
    exclude=frozenset({"step"}),
    types={"request_ids": list[str], "params": list[str]},
)
"""One version of a model: its parent plus one delta (the fields of `VersionInfo`)."""


class RollbackBody(Strict):
    """The version to make the head again."""

    version_id: DbId


class ExportBody(Strict):
    """Where to write the merged HF directory (under the server's export directory)."""

    version_id: DbId | None = None
    name: str = Field(..., min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    overwrite: bool = False
