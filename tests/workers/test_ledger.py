"""The model-version ledger: registration, committed chains, verified loads, rollback, export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from jobs_helpers import edit_payload, job_settings, random_model_dir  # noqa: F401

from editor.delta import Delta
from editor.loading import load_model
from workers.db import JobRow, VersionRow, get_database
from workers.errors import (
    ChecksumMismatchError,
    ConflictError,
    HeadMovedError,
    InvalidInputError,
    VersionNotFoundError,
)
from workers.jobs import submit_job
from workers.ledger import (
    diff_versions,
    export_version,
    get_model,
    list_versions,
    load_version,
    register_model,
    rollback,
)
from workers.ledger.checksums import ledger_checksum, param_hashes
from workers.ledger.store import (
    commit_step,
    delta_relpath,
    discard_job_versions,
    ledger_dir,
    write_delta,
)
from workers.ledger.versions import version_hashes

PARAMS = ("transformer.h.0.mlp.c_proj.weight", "transformer.h.1.mlp.c_proj.weight")


def _random_delta(model, param: str, seed: int) -> Delta:
    """A rank-one change of one GPT-2 Conv1D weight (storage (4d, d), math (d, 4d))."""
    shape = tuple(model.get_parameter(param).shape)
    gen = torch.Generator().manual_seed(seed)
    U = torch.randn(shape[1], 1, generator=gen) * 0.05  # (d, 1)
    V = torch.randn(shape[0], 1, generator=gen)  # (4d, 1)
    return Delta.low_rank("test", param, shape, U, V, transpose=True, request_ids=[f"q{seed}"])


@pytest.fixture
def chain3(job_settings, random_model_dir):  # noqa: F811
    """A model with three committed versions above the root; returns (name, model, ids)."""
    info = register_model("rand", random_model_dir)
    job = submit_job(edit_payload("rand", [("Ada", "{} was born in", "Paris")]), enqueue=False)
    model, _ = load_model(random_model_dir)
    db = get_database()
    ids = [info.head_version_id]
    with db.session() as session:
        row = session.get(JobRow, job.id)
        row.base_version_id = ids[0]
    hashes = dict(get_model_hashes())
    for step in range(3):
        delta = _random_delta(model, PARAMS[step % 2], step)
        delta.apply(model)
        rel = delta_relpath("rand", job.id, 1, step, 0)
        sha = write_delta(delta, ledger_dir(), rel)
        with db.session() as session:
            row = session.get(JobRow, job.id)
            rows, hashes = commit_step(session, row, step, ids[-1], hashes, [delta], [(rel, sha)])
            ids.append(rows[-1].id)
    return "rand", model, ids, job.id


def get_model_hashes() -> dict[str, str]:
    """Return the root parameter hashes of the registered model `rand`."""
    with get_database().session() as session:
        return version_hashes(session, "rand", get_model("rand").head_version_id)


def register_changed_base(name: str, source: Path, base: Path) -> None:
    """Register a copy of `source` at `base` as `name`, then change a byte of its weights."""
    shutil.copytree(source, base)
    register_model(name, base)
    weights = base / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF
    weights.write_bytes(bytes(data))


def test_register_is_idempotent_and_checks_its_input(job_settings, random_model_dir, tmp_path):  # noqa: F811
    info = register_model("rand", random_model_dir)
    assert info.n_versions == 1 and info.meta["model_type"] == "gpt2"
    model, _ = load_model(random_model_dir)
    (root,) = list_versions("rand")
    assert root.is_head and root.depth == 0 and root.parent_id is None
    assert root.checksum == ledger_checksum(param_hashes(model))
    assert register_model("rand", random_model_dir).head_version_id == root.id
    other = shutil.copytree(random_model_dir, tmp_path / "copy")
    with pytest.raises(ConflictError, match="registered for"):
        register_model("rand", other)
    with pytest.raises(InvalidInputError, match="does not exist"):
        register_model("ghost", tmp_path / "nowhere")
    with pytest.raises(InvalidInputError, match="model name must be"):
        register_model("../etc", random_model_dir)


def test_chain_loads_verified_and_rolls_back(chain3):
    name, live, ids, _ = chain3
    versions = list_versions(name)
    assert [v.id for v in versions] == ids and [v.depth for v in versions] == [0, 1, 2, 3]
    assert versions[-1].is_head and all(v.on_head_chain for v in versions)
    assert versions[1].params == (PARAMS[0],) and versions[2].request_ids == ("q1",)
    lm, _, deltas = load_version(name)
    assert [vid for vid, _ in deltas] == ids[1:]
    assert param_hashes(lm) == param_hashes(live)
    assert ledger_checksum(param_hashes(lm)) == versions[-1].checksum

    back = rollback(name, ids[1])
    assert back.is_head and get_model(name).head_version_id == ids[1]
    lm1, _, _ = load_version(name)
    assert ledger_checksum(param_hashes(lm1)) == versions[1].checksum
    with pytest.raises(ConflictError, match="not an earlier version"):
        rollback(name, ids[3])
    with pytest.raises(VersionNotFoundError):
        rollback(name, 999)
    later = {v.id: v for v in list_versions(name)}
    assert not later[ids[3]].on_head_chain and later[ids[1]].is_head

    diff = diff_versions(name, ids[3], ids[1])
    assert diff["common_ancestor"] == ids[1]
    assert [d["id"] for d in diff["revert"]] == [ids[3], ids[2]] and diff["apply"] == []
    assert diff["params"] == sorted(PARAMS)


def test_export_writes_a_merged_hf_directory(chain3, tmp_path):
    name, _, ids, _ = chain3
    info = export_version(name, ids[2], tmp_path / "export")
    lm, _ = load_model(info.path)
    assert ledger_checksum(param_hashes(lm)) == info.checksum == list_versions(name)[2].checksum
    provenance = json.loads((tmp_path / "export" / "kgedit_version.json").read_text())
    assert [c["version_id"] for c in provenance["chain"]] == ids[1:3]
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())
    with pytest.raises(ConflictError, match="exists"):
        export_version(name, ids[2], tmp_path / "export")


def test_checksum_mismatch_on_load_is_refused(chain3, job_settings, random_model_dir, tmp_path):  # noqa: F811
    name, _, ids, _ = chain3
    with get_database().session() as session:
        path = ledger_dir() / session.get(VersionRow, ids[2]).delta_path
    original = path.read_bytes()
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    with pytest.raises(ChecksumMismatchError, match=r"version \d+: delta file .* refusing"):
        load_version(name)
    path.write_bytes(original)
    load_version(name)  # restored: loads again

    with get_database().session() as session:  # a ledger that disagrees with the weights
        session.get(VersionRow, ids[3]).checksum = "f" * 64
    with pytest.raises(ChecksumMismatchError, match="differ from the ledger"):
        load_version(name)

    register_changed_base("tampered", random_model_dir, tmp_path / "base")
    with pytest.raises(ChecksumMismatchError, match="changed base model"):
        load_version("tampered")


def test_discarded_versions_leave_the_head_chain(chain3):
    name, _, ids, job_id = chain3
    with get_database().session() as session:
        job = session.get(JobRow, job_id)
        assert discard_job_versions(session, job) == ids[1:]
    assert get_model(name).head_version_id == ids[0]
    statuses = {v.id: v.status for v in list_versions(name)}
    assert [statuses[i] for i in ids] == ["active", "discarded", "discarded", "discarded"]
    with pytest.raises(ConflictError, match="discarded"):
        rollback(name, ids[1])
    with get_database().session() as session, pytest.raises(HeadMovedError):
        job = session.get(JobRow, job_id)
        commit_step(session, job, 3, ids[3], {}, [], [])


def test_a_job_on_a_changed_base_fails(job_settings, random_model_dir, tmp_path):  # noqa: F811
    from workers.jobs import get_job
    from workers.jobs.runner import RunContext, execute_job

    register_changed_base("moved", random_model_dir, tmp_path / "base")
    job = submit_job(edit_payload("moved", [("Ada", "{} was born in", "Paris")]), enqueue=False)
    assert execute_job(job.id, RunContext.create(job_settings)).status == "failed"
    info = get_job(job.id)
    assert "ChecksumMismatchError" in info.message and "refusing to load" in info.message
    assert len(list_versions("moved")) == 1
