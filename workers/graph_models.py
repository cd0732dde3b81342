"""Glue between the graph and the knowledge-model trainer: build, train, cache by input hash;
and methods prepared (`editor.prepare`) for such a model on its graph."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from contracts.types import FactText
from editor.knowledge.presets import KnowledgePreset, get_preset
from editor.knowledge.train import TrainReport, train_knowledge_model
from editor.prepare import Prepared, corpus_statements, prepare
from editor.trace import TraceCase
from kg.importers.evoke import EvokeImportSummary, import_evoke
from kg.store import GraphStore
from kg.verbalise import fact_texts
from workers.model_cache import train_cached
from workers.settings import get_settings

# Bump when the trainer or corpus changes in a way that changes the model for the same inputs.
TRAINER_VERSION = "1"
REPORT_FILE = "kgedit_knowledge.json"


def facts_hash(facts: Sequence[FactText], preset: KnowledgePreset, seed: int) -> str:
    """Return a hash of everything that determines a trained model."""
    h = hashlib.sha256()
    h.update(TRAINER_VERSION.encode())
    h.update(json.dumps(preset.to_dict(), sort_keys=True).encode())
    h.update(str(seed).encode())
    for f in sorted(facts, key=lambda f: (f.subject, f.relation, f.object)):
        row = [f.subject, f.relation, f.object, list(f.templates)]
        if preset.form_share:  # form rows ask the relation's question template
            row.append(f.question)
        h.update(json.dumps(row).encode())
    return h.hexdigest()[:16]


def build_evoke_graph(
    store: GraphStore, main: Path, subj_spec: Path | None, limit: int | None = None
) -> EvokeImportSummary | None:
    """Import EVOKE into an empty store; return None when the store already holds facts."""
    if store.count_facts() > 0:
        return None
    return import_evoke(store, main, subj_spec, limit=limit)


def train_or_reuse(
    facts: Sequence[FactText],
    preset: KnowledgePreset,
    models_dir: Path,
    seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[Path, TrainReport | None]:
    """Return the model directory for these inputs, training it only if it is not cached."""
    name = f"{preset.name}-{facts_hash(facts, preset, seed)}"
    return train_cached(
        models_dir,
        name,
        REPORT_FILE,
        lambda out: train_knowledge_model(facts, preset, out, seed=seed, progress=progress),
    )


def graph_facts(store: GraphStore) -> list[FactText]:
    """Return every current fact of the store in verbal form, in a stable order."""
    return sorted(fact_texts(store), key=lambda f: (f.subject, f.relation, f.object))


def load_report(model_dir: Path) -> dict:
    """Return the training report stored beside a knowledge model."""
    return json.loads((model_dir / REPORT_FILE).read_text())


def knowledge_preset(model_dir: Path) -> str | None:
    """Return the knowledge-model preset recorded beside the weights (None: not one)."""
    try:
        return str(load_report(Path(model_dir))["preset"])
    except (OSError, KeyError, ValueError):
        return None


def subset_by_subjects(facts: Sequence[FactText], max_subjects: int) -> list[FactText]:
    """Return the facts of the first `max_subjects` subjects in sorted order."""
    keep = sorted({f.subject for f in facts})[:max_subjects]
    chosen = set(keep)
    return [f for f in facts if f.subject in chosen]


def known_trace_cases(model, tokenizer, store: GraphStore, n: int) -> list[TraceCase]:
    """Return up to `n` facts (first template) whose first object token the model predicts."""
    from editor.scoring import score_targets

    facts = graph_facts(store)
    step = max(1, len(facts) // (4 * n))
    candidates = list(facts[::step])
    prompts = [f.templates[0].format(f.subject) for f in candidates]
    scores = score_targets(model, tokenizer, prompts, [f.object for f in candidates])
    cases = [
        TraceCase(prompt=p, subject=f.subject, target=f.object)
        for p, f, ok in zip(prompts, candidates, scores.first_argmax.tolist(), strict=True)
        if ok
    ]
    return cases[:n]


def prepare_on_graph(
    method: str,
    model: Any,
    tokenizer: Any,
    facts: Sequence[FactText],
    model_key: str,
    preset_name: str,
    overrides: Any = None,
    progress: Callable[[float, str], None] | None = None,
) -> Prepared:
    """Return `method` prepared for a knowledge model of a preset trained on `facts`, with
    the settings' caches: the same preparation the job runner makes."""
    return prepare(
        method,
        model,
        tokenizer,
        corpus_statements(facts),
        model_key=model_key,
        cache_dir=get_settings().cache_dir,
        overrides=overrides,
        trace_layer=get_preset(preset_name).edit_layer,
        facts=facts,
        progress=progress,
    )
