"""A job's prepared method: `editor.prepare` run on the warm model's base weights.

Resources are keyed by the base model's weights sha256 and always computed on the base
weights, as the reference code does. A warm model may sit at a later version: the
resources are then first looked up with every forward pass forbidden (cache hits need
none); only on a miss is the model moved to its root to compute them and moved back. So an
interrupted job and an uninterrupted one get bit-identical resources, whatever ran before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from contracts.types import FactText
from editor.knowledge.presets import get_preset
from editor.prepare import Prepared, Progress, corpus_statements, prepare
from kg.store import open_store
from workers.db import ModelRow
from workers.errors import InvalidInputError
from workers.graph_models import graph_facts
from workers.jobs.spec import JobSpec
from workers.settings import Settings


class _ForwardForbiddenError(Exception):
    """A resource lookup needed a forward pass (a cache miss)."""


@contextmanager
def forbid_forward(model: Any) -> Iterator[None]:
    """Raise `_ForwardForbiddenError` from any forward pass of `model` inside the block."""

    def refuse(*_: Any) -> None:
        raise _ForwardForbiddenError

    handle = model.get_input_embeddings().register_forward_pre_hook(refuse)
    try:
        yield
    finally:
        handle.remove()


def graph_corpus(graph_url: str | None, settings: Settings) -> tuple[list[FactText], list[str]]:
    """Return the facts of the model's graph and their verbalisations (the statistics corpus)."""
    store = open_store(graph_url or settings.graph_store_url)
    facts = graph_facts(store)
    texts = corpus_statements(facts)
    if not texts:
        raise InvalidInputError(
            f"graph {store.url} holds no facts for the second-moment statistics; "
            "import facts or register the model with another graph_url"
        )
    return facts, texts


def model_calibration(db: Any, model: str) -> dict[str, Any] | None:
    """Return the model's stored calibration as the ledger holds it now (None: none)."""
    with db.session() as session:
        row = session.get(ModelRow, model)
        return row.calibration if row is not None else None


def prepare_job(
    spec: JobSpec,
    method: Any,
    warm: Any,
    db: Any,
    settings: Settings,
    report: Progress,
    cancel: Callable[[], None] | None = None,
) -> Prepared:
    """Return the job's method prepared (`editor.prepare`) on the base weights.

    A knowledge model's preset fixes the traced edit layer its default rows are relative
    to; the model's calibration (`workers.calibration`), when it has one, moves the edit
    point and sets its tuned settings; the job's `hparams` override both. The statistics
    corpus is `settings.stats_corpus` when set, else the graph's verbalised facts; the
    graph's facts are read only for a method that needs them (second moments from the
    graph, or further resources).
    """
    preset = warm.meta.get("knowledge_preset")
    trace_layer = get_preset(preset).edit_layer if preset else None
    calibration = model_calibration(db, spec.model) if db is not None else None
    from_graph = method.needs_second_moment and settings.stats_corpus is None
    needs_graph = from_graph or method.resources is not None
    facts, corpus = graph_corpus(warm.graph_url, settings) if needs_graph else ([], [])
    if method.needs_second_moment and settings.stats_corpus is not None:
        corpus = settings.stats_corpus

    def compute() -> Prepared:
        return prepare(
            spec.method,
            warm.model,
            warm.tokenizer,
            corpus,
            model_key=warm.weights_sha256,
            cache_dir=settings.cache_dir,
            overrides=spec.hparams or None,
            trace_layer=trace_layer,
            facts=facts,
            calibration=calibration,
            progress=report,
            cancel=cancel,
        )

    if warm.version_id == warm.root_id:
        return compute()
    try:
        with forbid_forward(warm.model):
            return compute()
    except _ForwardForbiddenError:
        at = warm.version_id
        warm.checkout(db, warm.root_id, settings.ledger_path)
        try:
            return compute()
        finally:
            warm.checkout(db, at, settings.ledger_path)
