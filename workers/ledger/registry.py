"""Registered base models: a local HF directory, the sha256 of its weights, its root version."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from editor.errors import EditorError
from workers.db import Database, ModelRow, VersionRow, get_database, utcnow
from workers.errors import ConflictError, InvalidInputError, ModelNotFoundError
from workers.jobs.spec import check_name
from workers.settings import Settings, get_settings


@dataclass(frozen=True)
class ModelInfo:
    """The public view of a registered model."""

    name: str
    path: str
    weights_sha256: str
    head_version_id: int | None
    n_versions: int
    graph_url: str | None
    meta: dict[str, Any]
    created_at: datetime
    follows_graph: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data."""
        out = dict(self.__dict__)
        out["created_at"] = self.created_at.isoformat()
        return out


def db_of(settings: Settings | None) -> Database:
    """Return the metadata database of the settings."""
    return get_database((settings or get_settings()).metadata_db_url)


def _info(row: ModelRow, n_versions: int) -> ModelInfo:
    """Return the public view of a model row."""
    return ModelInfo(
        name=row.name,
        path=row.path,
        weights_sha256=row.weights_sha256,
        head_version_id=row.head_version_id,
        n_versions=n_versions,
        graph_url=row.graph_url,
        meta=dict(row.meta or {}),
        created_at=row.created_at,
        follows_graph=bool(row.follows_graph),
    )


def model_row(session: Any, name: str) -> ModelRow:
    """Return a model row or raise `ModelNotFoundError`."""
    row = session.get(ModelRow, name) if isinstance(name, str) and len(name) <= 64 else None
    if row is None:
        raise ModelNotFoundError(f"no registered model named {name!r}")
    return row


def _count(session: Any, name: str) -> int:
    """Return how many versions a model has."""
    query = select(func.count()).select_from(VersionRow).where(VersionRow.model_name == name)
    return int(session.scalar(query) or 0)


def _describe(path: Path, model: Any) -> dict[str, Any]:
    """Return metadata kept beside a registration: architecture, size, knowledge preset."""
    from workers.graph_models import REPORT_FILE  # the knowledge trainer imports transformers

    meta: dict[str, Any] = {
        "model_type": str(model.config.model_type),
        "n_params": int(sum(p.numel() for p in model.parameters())),
        "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
    }
    report = path / REPORT_FILE
    if report.is_file():
        with contextlib.suppress(ValueError, KeyError):
            meta["knowledge_preset"] = str(json.loads(report.read_text())["preset"])
    return meta


def register_model(
    name: str,
    path: str | Path,
    *,
    graph_url: str | None = None,
    follow: bool | None = None,
    settings: Settings | None = None,
) -> ModelInfo:
    """Register a base model directory as version 0 of `name` (idempotent for the same weights).

    `graph_url` names the graph whose verbalised facts feed the model's second-moment
    statistics (default: the settings' graph store). `follow`: the model follows the graph
    (every approved change set is planned on it); None leaves an existing setting alone.
    """
    from editor.loading import load_model, weights_sha256  # torch: only registering needs it
    from workers.ledger.checksums import ledger_checksum, param_hashes

    check_name(name, "model name")
    path = Path(path).expanduser().resolve()
    try:
        sha = weights_sha256(path)
    except EditorError as exc:
        raise InvalidInputError(str(exc)) from None
    db = db_of(settings)
    with db.session() as session:
        row = session.get(ModelRow, name)
        if row is not None:
            if row.weights_sha256 != sha or row.path != str(path):
                raise ConflictError(
                    f"model {name!r} is registered for {row.path} "
                    f"(weights {row.weights_sha256[:12]}…); pick another name"
                )
            if follow is not None:
                row.follows_graph = follow
            return _info(row, _count(session, name))
    try:
        model, _ = load_model(path)
    except EditorError as exc:
        raise InvalidInputError(str(exc)) from None
    hashes = param_hashes(model)
    meta = _describe(path, model)
    del model
    with db.session() as session:
        if session.get(ModelRow, name) is not None:  # registered meanwhile
            return get_model(name, settings=settings)
        row = ModelRow(
            name=name,
            path=str(path),
            weights_sha256=sha,
            param_hashes=hashes,
            graph_url=graph_url,
            meta=meta,
            follows_graph=bool(follow),
            created_at=utcnow(),
        )
        session.add(row)
        session.flush()
        root = VersionRow(
            model_name=name,
            parent_id=None,
            depth=0,
            checksum=ledger_checksum(hashes),
            status="active",
            request_ids=[],
            params={},
            note="base model",
            created_at=utcnow(),
        )
        session.add(root)
        session.flush()
        row.head_version_id = root.id
        return _info(row, 1)


def get_model(name: str, *, settings: Settings | None = None) -> ModelInfo:
    """Return a registered model, or raise `ModelNotFoundError`."""
    with db_of(settings).session() as session:
        return _info(model_row(session, name), _count(session, name))


def list_models(*, settings: Settings | None = None) -> list[ModelInfo]:
    """Return every registered model, by name."""
    with db_of(settings).session() as session:
        rows = session.scalars(select(ModelRow).order_by(ModelRow.name)).all()
        return [_info(r, _count(session, r.name)) for r in rows]
