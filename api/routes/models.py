"""Model routes (operators; auditors read): register, versions, diff, rollback, export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status

from api.deps import CallerDep, roles
from api.errors import ApiError
from api.keys import Role
from api.schemas.common import MAX_DB_ID
from api.schemas.jobs import ExportBody, ModelCreate, ModelPublic, RollbackBody, VersionPublic
from workers.ledger import export as ledger_export
from workers.ledger import registry, store, versions

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
    info = registry.register_model(body.name, path, graph_url=body.graph_url, settings=settings)
    return ModelPublic.of(info)


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
