"""Glue between the graph, a knowledge model and any registered editing method.

`method_hparams` reads the defaults table (layers from the preset's traced edit layer);
`method_resources` prepares what the method's `apply` needs: second moments of its layers
over the graph's verbalised facts (cached on disk), its context templates (cached), and
method-specific resources.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from contracts.types import FactText
from editor.knowledge.corpus import statement
from editor.methods import get, method_layers
from editor.methods.defaults import KNOWLEDGE, default_hparams
from editor.stats import SecondMoment, layer_second_moment
from workers.settings import get_settings


def corpus_statements(facts: Sequence[FactText]) -> list[str]:
    """Return the graph's verbalised facts, the default corpus of the second moment."""
    texts = []
    for f in facts:
        for template in f.templates[:4]:
            texts.append(statement(template, f.subject, f.object))
    return texts


def method_hparams(
    method: str,
    model: Any,
    preset_edit_layer: int,
    overrides: Mapping[str, Any] | str | Path | None = None,
) -> Any:
    """Return a method's hyper-parameters for a knowledge model (layers from its trace)."""
    return default_hparams(
        method, model, family=KNOWLEDGE, trace_layer=preset_edit_layer, overrides=overrides
    )


class LayerStats:
    """Second moments by layer, computed on first use over one corpus and cached on disk."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        corpus: Sequence[str],
        model_key: str,
        n_samples: int = 20_000,
        cache_dir: Path | None = None,
    ) -> None:
        self.model, self.tokenizer, self.corpus = model, tokenizer, list(corpus)
        self.model_key, self.n_samples = model_key, n_samples
        self.cache_dir = cache_dir if cache_dir is not None else get_settings().cache_dir / "stats"
        self._by_layer: dict[int, SecondMoment] = {}

    def __call__(self, layer: int) -> SecondMoment:
        """Return E[k kᵀ] of the down-projection input at `layer`."""
        if layer not in self._by_layer:
            self._by_layer[layer] = layer_second_moment(
                self.model,
                self.tokenizer,
                layer,
                self.corpus,
                n_samples=self.n_samples,
                cache_dir=self.cache_dir,
                model_key=self.model_key,
            )
        return self._by_layer[layer]


def method_resources(
    method: str,
    hparams: Any,
    model: Any,
    tokenizer: Any,
    stats: LayerStats,
    model_key: str,
    context_cache: Path | None = None,
) -> dict[str, Any]:
    """Return the keyword resources `run_edits`/`EditSequence` pass to the method."""
    entry = get(method)
    out: dict[str, Any] = {"model_key": model_key}
    if entry.needs_second_moment:
        for layer in method_layers(hparams):
            stats(layer)
        out["second_moment"] = stats
    if entry.context is not None:
        cache = context_cache or get_settings().cache_dir / "context"
        out["context_templates"] = entry.context(
            model, tokenizer, hparams, model_key, cache_dir=cache
        )
    return out
