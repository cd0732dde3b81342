"""Reading and writing the ledger's weights: verified loads, delta files, commits, discards.

Every load is checked against the ledger: the base directory's sha256, each delta file's
sha256 and, per parameter, the hashes a delta recorded before and after (`Delta.apply` in
strict mode). A mismatch raises `ChecksumMismatchError` naming the file and both hashes;
nothing half-loaded is returned. Delta files are written to a temporary name and renamed,
then the version rows and the head move in one transaction: a crash leaves either no
version or a complete one (an orphan file is simply rewritten by the retry).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from sqlalchemy import select

from editor.delta import Delta
from editor.errors import EditorError
from editor.loading import load_model, weights_sha256
from workers.db import JobRow, ModelRow, VersionRow, utcnow
from workers.errors import ChecksumMismatchError, InvalidInputError
from workers.ledger.checksums import file_sha256, ledger_checksum, param_hashes
from workers.ledger.registry import db_of, model_row
from workers.ledger.versions import DISCARDED, chain, set_head, version_hashes, version_row
from workers.settings import Settings, get_settings


def ledger_dir(settings: Settings | None = None) -> Path:
    """Return the directory of delta files."""
    return (settings or get_settings()).ledger_path


def load_base(row: ModelRow, device: str = "cpu") -> tuple[Any, Any]:
    """Load a registered base model after checking its weights' sha256 against the ledger."""
    try:
        actual = weights_sha256(row.path)
    except EditorError as exc:
        raise ChecksumMismatchError(
            f"model {row.name!r}: base directory {row.path} is unusable ({exc}); refusing to load"
        ) from None
    if actual != row.weights_sha256:
        raise ChecksumMismatchError(
            f"model {row.name!r}: weights in {row.path} have sha256 {actual[:16]}…, the ledger "
            f"recorded {row.weights_sha256[:16]}…; refusing to load a changed base model"
        )
    return load_model(row.path, device=device)


def load_delta(row: VersionRow, directory: Path) -> Delta:
    """Read a version's delta file after checking its sha256 against the ledger."""
    if row.delta_path is None or row.delta_sha256 is None:
        raise InvalidInputError(f"version {row.id} is a root version; it has no delta")
    path = directory / row.delta_path
    if not path.is_file():
        raise ChecksumMismatchError(f"version {row.id}: delta file {path} is missing")
    actual = file_sha256(path)
    if actual != row.delta_sha256:
        raise ChecksumMismatchError(
            f"version {row.id}: delta file {path} has sha256 {actual[:16]}…, the ledger "
            f"recorded {row.delta_sha256[:16]}…; refusing to load"
        )
    return Delta.load(path)


def apply_verified(model: Any, delta: Delta, version_id: int) -> None:
    """Apply a delta in strict mode, reporting a per-parameter hash mismatch clearly."""
    try:
        delta.apply(model, strict=True)
    except EditorError as exc:
        raise ChecksumMismatchError(f"version {version_id}: {exc}; refusing to load") from None


def load_version(
    model: str,
    version_id: int | None = None,
    *,
    device: str = "cpu",
    verify: bool = True,
    settings: Settings | None = None,
) -> tuple[Any, Any, list[tuple[int, Delta]]]:
    """Load a version (default: the head): `(model, tokenizer, [(version id, delta), ...])`.

    With `verify`, every parameter is hashed at the end and the version checksum compared.
    """
    with db_of(settings).session() as session:
        row = model_row(session, model)
        version_id = row.head_version_id if version_id is None else version_id
        rows = chain(session, model, version_id)
        expected = version_hashes(session, model, version_id)
    directory = ledger_dir(settings)
    deltas = [(r.id, load_delta(r, directory)) for r in rows[1:]]
    lm, tok = load_base(row, device)
    with torch.no_grad():
        for vid, delta in deltas:
            apply_verified(lm, delta, vid)
    if verify:
        actual = param_hashes(lm)
        if ledger_checksum(actual) != rows[-1].checksum:
            bad = sorted(n for n in set(actual) | set(expected) if actual.get(n) != expected.get(n))
            raise ChecksumMismatchError(
                f"version {version_id} of {model!r}: weights after loading differ from the "
                f"ledger in {len(bad)} parameter(s) ({', '.join(bad[:5])}); refusing to load"
            )
    return lm, tok, deltas


def delta_relpath(model: str, job_id: str, run: int, step: int, index: int) -> str:
    """Return the ledger-relative path of a job's delta file."""
    return f"{model}/{job_id}/run{run}-step{step:05d}-{index}.safetensors"


def write_delta(delta: Delta, directory: Path, relpath: str) -> str:
    """Write a delta file atomically (temporary name, fsync, rename); return its sha256."""
    path = directory / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    delta.save(tmp)
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return file_sha256(path)


def commit_step(
    session: Any,
    job: JobRow,
    step: int,
    parent_id: int,
    parent_hashes: dict[str, str],
    deltas: Sequence[Delta],
    files: Sequence[tuple[str, str]],
) -> tuple[list[VersionRow], dict[str, str]]:
    """Record one job step's deltas as versions and move the head, in the caller's transaction.

    `files` are the (relative path, sha256) of the deltas' files. Raises `HeadMovedError`
    when the head is not `parent_id`; the unique (job, run, step, index) constraint refuses
    a step recorded before.
    """
    hashes = dict(parent_hashes)
    parent_depth = session.get(VersionRow, parent_id).depth
    rows, parent = [], parent_id
    for index, (delta, (relpath, sha)) in enumerate(zip(deltas, files, strict=True)):
        touched = {e.param: str(e.sha_after) for e in delta.entries}
        hashes.update(touched)
        norms = delta.norms()
        row = VersionRow(
            model_name=job.model_name,
            parent_id=parent,
            depth=parent_depth + index + 1,
            checksum=ledger_checksum(hashes),
            status="active",
            delta_path=relpath,
            delta_sha256=sha,
            method=delta.method,
            request_ids=list(delta.request_ids),
            norm=float(sum(v * v for v in norms.values()) ** 0.5) if norms else None,
            params=touched,
            job_id=job.id,
            job_run=job.run,
            step=step,
            step_index=index,
            note=f"job {job.id} step {step}",
            created_at=utcnow(),
        )
        session.add(row)
        session.flush()
        rows.append(row)
        parent = row.id
    set_head(session, job.model_name, parent_id, parent)
    return rows, hashes


def job_versions(session: Any, job: JobRow) -> list[VersionRow]:
    """Return the versions the job's current run committed, in order."""
    return list(
        session.scalars(
            select(VersionRow)
            .where(VersionRow.job_id == job.id, VersionRow.job_run == job.run)
            .order_by(VersionRow.step, VersionRow.step_index)
        )
    )


def discard_job_versions(session: Any, job: JobRow) -> list[int]:
    """Mark the job run's versions discarded and move the head back to the job's base."""
    rows = job_versions(session, job)
    if not rows:
        return []
    ids = [r.id for r in rows]
    head = model_row(session, job.model_name).head_version_id
    if head in ids and job.base_version_id is not None:
        set_head(session, job.model_name, head, job.base_version_id)
    for r in rows:
        r.status = DISCARDED
    return ids


def delta_norms(
    model: str, version_ids: Sequence[int], *, settings: Settings | None = None
) -> dict[str, dict[str, float]]:
    """Return {version id: {module: Frobenius norm}} read from the verified delta files."""
    directory = ledger_dir(settings)
    out: dict[str, dict[str, float]] = {}
    with db_of(settings).session() as session:
        rows = [version_row(session, model, v) for v in version_ids]
    for row in rows:
        if row.delta_path is None:
            continue
        out[str(row.id)] = {
            k: round(float(v), 6) for k, v in load_delta(row, directory).norms().items()
        }
    return out
