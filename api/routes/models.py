"""Model routes (operators; auditors read): register, follow the graph, versions, diff,
rollback, export, calibration; the agreement with the graph (every reader)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status

from api.deps import READERS, CallerDep, roles
from api.errors import ApiError
from api.keys import Role
from api.schemas.common import MAX_DB_ID, SafeId
from api.schemas.jobs import (
    CalibrateBody,
    CalibrationPublic,
    ExportBody,
    FollowBody,
    ModelCreate,
    ModelPublic,
    RollbackBody,
    VersionPublic,
)
from kg.agreement import MAX_SCOPE_IDS, Scope
from workers import calibration
from workers.ledger import export as ledger_export
from workers.ledger import registry, store, versions
from workers.sync import loop

router = APIRouter(prefix="/v1/models", tags=["models"])
READ = (Role.OPERATOR, Role.AUDITOR)


@router.post("", status_code=status.HTTP_201_CREATED, **roles(Role.OPERATOR))
def register(body: ModelCreate, request: Request, _: CallerDep) -> ModelPublic:
    """Register a local model directory: it must exist and hold config.json and safetensors."""
    settings = request.app.state.settings
    path = Path(body.path)
    if not path.is_absolute():
        raise ApiError(422, "path must be an absolute directory on the server")
    path = path.resolve()
    roots = settings.allowed_model_roots
    if not any(path.is_relative_to(root) for root in roots):
        allowed = ", ".join(str(r) for r in roots)
        raise ApiError(422, f"models may only be registered from: {allowed} (KGEDIT_MODEL_ROOTS)")
    if not path.is_dir():
        raise ApiError(422, f"no such directory: {path}")
    if not (path / "config.json").is_file():
        raise ApiError(422, f"{path} has no config.json")
    if not any(path.glob("*.safetensors")):
        raise ApiError(422, f"{path} has no .safetensors weights")
    if body.graph_url is not None and body.graph_url not in settings.allowed_graph_urls:
        raise ApiError(
            422,
            "graph_url must be the configured graph store or one of KGEDIT_GRAPH_URLS",
            [{"loc": ["body", "graph_url"]}],
        )
    info = registry.register_model(
        body.name, path, graph_url=body.graph_url, follow=body.follow, settings=settings
    )
    return ModelPublic.of(info)


@router.put("/{name}/follow", **roles(Role.OPERATOR))
def follow(name: str, body: FollowBody, request: Request) -> ModelPublic:
    """Make a model follow the graph (every approval plans on it), or stop."""
    settings = request.app.state.settings
    loop.set_following(name, body.follow, settings=settings)
    return ModelPublic.of(registry.get_model(name, settings=settings))


@router.get("/{name}/agreement", **roles(*READERS))
def agreement(
    name: str,
    request: Request,
    entity: Annotated[list[SafeId], Query(max_length=MAX_SCOPE_IDS)] = (),  # type: ignore[assignment]
    relation: Annotated[list[SafeId], Query(max_length=MAX_SCOPE_IDS)] = (),  # type: ignore[assignment]
    change_set: Annotated[SafeId | None, Query(max_length=64)] = None,
    version_id: Annotated[int | None, Query(ge=1, le=MAX_DB_ID)] = None,
    facts: Annotated[bool, Query(description="list every fact's verdict")] = False,
) -> dict[str, Any]:
    """Score the model version (default: the head) against the graph's current facts.

    Counts per verdict (agrees, contradicts, unknown; forgotten / still_known for facts of
    concepts marked to forget) and the conflicts: what the model says instead, with its
    probability. Answers are stored per (version, graph), so a repeat check scores only the
    facts that changed in the graph since.
    """
    scope = Scope(tuple(entity), tuple(relation), change_set)
    result = request.app.state.agreement.check(name, version_id=version_id, scope=scope)
    return result.to_dict(facts=facts)


@router.get("", **roles(*READ))
def list_models(request: Request) -> list[ModelPublic]:
    """List registered models."""
    return [ModelPublic.of(m) for m in registry.list_models(settings=request.app.state.settings)]


@router.get("/{name}", **roles(*READ))
def get_model(name: str, request: Request) -> ModelPublic:
    """Return one registered model."""
    return ModelPublic.of(registry.get_model(name, settings=request.app.state.settings))


@router.get("/{name}/versions", **roles(*READ))
def list_versions(name: str, request: Request) -> list[VersionPublic]:
    """List a model's versions, oldest first, marking the head and its chain."""
    infos = versions.list_versions(name, settings=request.app.state.settings)
    return [VersionPublic.of(v) for v in infos]


@router.get("/{name}/diff", **roles(*READ))
def diff(
    name: str,
    request: Request,
    from_: Annotated[int, Query(alias="from", ge=1, le=MAX_DB_ID)],
    to: Annotated[int, Query(ge=1, le=MAX_DB_ID)],
    per_layer: Annotated[bool, Query(description="read the deltas for per-module norms")] = True,
) -> dict[str, Any]:
    """Return the deltas between two versions (revert, then apply) with their norms."""
    settings = request.app.state.settings
    out = versions.diff_versions(name, from_, to, settings=settings)
    if per_layer:
        out["norms"] = store.delta_norms(
            name, [d["id"] for d in out["revert"] + out["apply"]], settings=settings
        )
    return out


@router.post("/{name}/rollback", **roles(Role.OPERATOR))
def rollback(name: str, body: RollbackBody, request: Request) -> VersionPublic:
    """Make an earlier version on the head's chain the head again."""
    return VersionPublic.of(
        versions.rollback(name, body.version_id, settings=request.app.state.settings)
    )


@router.post("/{name}/export", **roles(Role.OPERATOR))
def export(name: str, body: ExportBody, request: Request) -> dict[str, Any]:
    """Write a version merged into a HF directory under the server's `var/exports/`."""
    settings = request.app.state.settings
    out_dir = Path(settings.var_dir).resolve() / "exports" / body.name
    info = ledger_export.export_version(
        name, body.version_id, out_dir, overwrite=body.overwrite, settings=settings
    )
    return info.to_dict()


@router.post("/{name}/calibrate", status_code=status.HTTP_202_ACCEPTED, **roles(Role.OPERATOR))
def calibrate(
    name: str, request: Request, caller: CallerDep, body: CalibrateBody | None = None
) -> CalibrationPublic:
    """Queue a calibration of the model's head on its worker (poll it; docs/calibration.md)."""
    options = body.model_dump(exclude_none=True) if body is not None else {}
    info = calibration.request_calibration(
        name, options=options, requested_by=caller.actor, settings=request.app.state.settings
    )
    return CalibrationPublic.of(info)


@router.get("/{name}/calibration", **roles(*READ))
def stored_calibration(name: str, request: Request) -> dict[str, Any]:
    """Return the model's stored calibration: edit point, settings, trace figures, split."""
    stored = calibration.model_calibration(name, settings=request.app.state.settings)
    if stored is None:
        raise ApiError(404, f"model {name!r} has no calibration; the per-family presets apply")
    return stored


@router.get("/{name}/calibrations", **roles(*READ))
def list_calibrations(name: str, request: Request) -> list[CalibrationPublic]:
    """List the model's calibration requests, newest first."""
    infos = calibration.list_calibrations(name, settings=request.app.state.settings)
    return [CalibrationPublic.of(i) for i in infos]


@router.get("/{name}/calibrations/{calibration_id}", **roles(*READ))
def get_calibration(name: str, calibration_id: SafeId, request: Request) -> CalibrationPublic:
    """Return one calibration request: state, progress, result."""
    info = calibration.get_calibration_request(calibration_id, settings=request.app.state.settings)
    if info.model != name:
        raise ApiError(404, f"model {name!r} has no calibration {calibration_id!r}")
    return CalibrationPublic.of(info)


@router.post("/{name}/calibrations/{calibration_id}/cancel", **roles(Role.OPERATOR))
def cancel_calibration(name: str, calibration_id: SafeId, request: Request) -> CalibrationPublic:
    """Ask a queued or running calibration to stop."""
    settings = request.app.state.settings
    if calibration.get_calibration_request(calibration_id, settings=settings).model != name:
        raise ApiError(404, f"model {name!r} has no calibration {calibration_id!r}")
    info = calibration.cancel_calibration(calibration_id, settings=settings)
    return CalibrationPublic.of(info)
