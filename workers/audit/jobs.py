"""Audit jobs the command line runs: edit-then-audit on EVOKE, and the audit of any version.

A *version* is a base model directory plus an ordered chain of delta files
(`editor.delta.Delta.save`). `audit_version` audits the whole-graph sample (and the probes
of any edit requests given) between the base and that version, with the trend along the
chain; `edit_and_audit` applies real EVOKE edits with the default editing method first,
audits, saves the deltas if asked, and reverts them, checking the weights against the
original checksum.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from editor.delta import Delta
from editor.knowledge.presets import get_preset
from editor.loading import load_model, state_checksum, weights_sha256
from editor.methods import default_method
from editor.prepare import corpus_statements, prepare
from editor.sequence import EditSequence
from kg.importers.evoke import evoke_cases
from kg.store import open_store
from workers.audit.run import AuditConfig, Progress, audit_edits, sample_audit
from workers.demo import interleave_sets
from workers.edit_run import select_known_edits, speakable_edits
from workers.graph_models import graph_facts, knowledge_preset
from workers.settings import get_settings


def _preset_of(model_dir: Path, default: str) -> str:
    """Return the knowledge-model preset recorded beside the weights, else `default`."""
    return knowledge_preset(model_dir) or default


def _model_info(model_dir: Path) -> dict[str, Any]:
    """Return the report's model block (path and weights hash)."""
    return {"path": str(model_dir), "weights_sha256": weights_sha256(model_dir)}


def edit_and_audit(
    model_dir: Path,
    graph_url: str,
    n_edits: int = 10,
    n_cases: int = 100,
    preset: str = "small",
    config: AuditConfig | None = None,
    save_deltas: Path | None = None,
    progress: Progress | None = None,
) -> dict:
    """Apply `n_edits` known EVOKE edits in sequence (the default editing method), audit them,
    revert them."""
    settings = get_settings()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    store = open_store(graph_url)
    facts = graph_facts(store)
    model, tok = load_model(model_dir, device=settings.device)
    key = weights_sha256(model_dir)
    ready = prepare(
        default_method("edit"),
        model,
        tok,
        corpus_statements(facts),
        model_key=key,
        cache_dir=settings.cache_dir,
        trace_layer=get_preset(_preset_of(model_dir, preset)).edit_layer,
        facts=facts,
    )
    cases = evoke_cases(settings.evoke_main, settings.evoke_subj_spec, n_cases)
    edits = select_known_edits(model, tok, interleave_sets(speakable_edits(cases, facts)), n_edits)
    if not edits:
        raise RuntimeError("the model knows none of the EVOKE edit subjects")
    base = state_checksum(model)
    seq = EditSequence(model, tok, ready.method, ready.hparams, **ready.resources)
    for i, request in enumerate(edits):
        for delta in seq.apply([request]):
            if save_deltas is not None:
                delta.save(save_deltas / f"{len(seq) - 1:04d}-{delta.method}.safetensors")
        if progress:
            progress("edit", i + 1, len(edits))
    deltas = list(seq.deltas)
    try:
        report = audit_edits(
            model,
            tok,
            store,
            edits,
            deltas,
            applied=True,
            config=config,
            model_info=_model_info(model_dir),
            progress=progress,
        )
    finally:
        for delta in reversed(deltas):
            delta.revert(model)
    if state_checksum(model) != base:
        raise RuntimeError("reverting the deltas did not restore the weights")
    return report


def audit_version(
    model_dir: Path,
    delta_paths: Sequence[Path],
    graph_url: str,
    config: AuditConfig | None = None,
    progress: Progress | None = None,
) -> dict:
    """Whole-graph sample audit of base vs base + deltas (applied in order, then reverted)."""
    settings = get_settings()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model, tok = load_model(model_dir, device=settings.device)
    deltas = [Delta.load(p) for p in delta_paths]
    store = open_store(graph_url)
    return sample_audit(
        model,
        tok,
        store,
        deltas,
        applied=False,
        config=config,
        model_info=_model_info(model_dir),
        progress=progress,
    )
