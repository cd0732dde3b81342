"""A job's hyper-parameters and method resources (second moments, context templates).

Resources are keyed by the base model's weights sha256 and always computed on the base
weights, as the reference code does. A warm model may sit at a later version: the
resources are then first looked up with every forward pass forbidden (cache hits need
none); only on a miss is the model moved to its root to compute them and moved back. So an
interrupted job and an uninterrupted one get bit-identical resources, whatever ran before.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from editor.knowledge.presets import get_preset
from editor.methods.defaults import TABLE, default_hparams
from kg.store import open_store
from workers.errors import InvalidInputError
from workers.jobs.spec import JobSpec
from workers.knowledge import graph_facts
from workers.methods import LayerStats, corpus_statements, method_hparams, method_resources
from workers.settings import Settings

Progress = Callable[[float, str], None]


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


def job_hparams(spec: JobSpec, method: Any, model: Any, meta: dict[str, Any]) -> Any:
    """Return the method's hyper-parameters: the defaults for the model, then the overrides.

    Editing and unlearning methods share the defaults table (`editor.methods.defaults`);
    a knowledge model's preset fixes the traced edit layer the table is relative to.
    """
    if spec.method not in TABLE:  # layer-free methods (GA, GradDiff, NPO): class defaults
        cls = method.hparams_cls
        return cls.from_dict(spec.hparams) if hasattr(cls, "from_dict") else cls(**spec.hparams)
    preset = meta.get("knowledge_preset")
    if preset:
        layer = get_preset(preset).edit_layer
        return method_hparams(spec.method, model, layer, spec.hparams or None)
    return default_hparams(spec.method, model, overrides=spec.hparams or None)


class ReportingStats(LayerStats):
    """`LayerStats` that reports its progress while computing a layer's second moment."""

    def __init__(self, *args: Any, report: Progress | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.report = report

    def __call__(self, layer: int) -> Any:
        """Return E[k kᵀ] at `layer`, reporting "statistics" progress on a computation."""
        if layer not in self._by_layer:
            from editor.stats import layer_second_moment

            def on_progress(done: int, total: int) -> None:
                if self.report is not None:
                    self.report(done / max(1, total), f"statistics, layer {layer}")

            self._by_layer[layer] = layer_second_moment(
                self.model,
                self.tokenizer,
                layer,
                self.corpus,
                n_samples=self.n_samples,
                cache_dir=self.cache_dir,
                model_key=self.model_key,
                on_progress=on_progress,
            )
        return self._by_layer[layer]


def statistics_corpus(graph_url: str | None, settings: Settings) -> list[str]:
    """Return the verbalised facts of the model's graph (the second moments' corpus)."""
    store = open_store(graph_url or settings.graph_store_url)
    texts = corpus_statements(graph_facts(store))
    if not texts:
        raise InvalidInputError(
            f"graph {store.url} holds no facts for the second-moment statistics; "
            "import facts or register the model with another graph_url"
        )
    return texts


def _edit_resources(
    spec: JobSpec, method: Any, hparams: Any, warm: Any, settings: Settings, report: Progress
) -> dict[str, Any]:
    """Resources of a method (statistics and context templates as it declares)."""
    corpus = statistics_corpus(warm.graph_url, settings) if method.needs_second_moment else []
    n_samples = getattr(hparams, "mom2_n_samples", 20_000)
    stats = ReportingStats(
        warm.model,
        warm.tokenizer,
        corpus,
        warm.weights_sha256,
        n_samples=n_samples,
        cache_dir=settings.cache_dir / "stats",
        report=report,
    )
    return method_resources(
        spec.method,
        hparams,
        warm.model,
        warm.tokenizer,
        stats,
        warm.weights_sha256,
        context_cache=settings.cache_dir / "context",
    )


def prepare_resources(
    spec: JobSpec,
    method: Any,
    hparams: Any,
    warm: Any,
    db: Any,
    settings: Settings,
    report: Progress,
) -> dict[str, Any]:
    """Return the keyword resources of the job's method (edit or unlearn), on the base weights.

    Both kinds share the registry and its declarations: second-moment statistics for methods
    that need them (ROCR's null-space projector as much as MEMIT's solve), context templates
    for methods that declare a context.
    """

    def compute() -> dict[str, Any]:
        return _edit_resources(spec, method, hparams, warm, settings, report)

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


def keeps_state(method: Any) -> bool:
    """Return whether a method carries state from one call to the next (`state=`)."""
    return "state" in inspect.signature(method.apply).parameters
