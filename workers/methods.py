"""Glue between the graph, a knowledge model and any registered editing method.

`method_hparams` reads the defaults table (layers from the preset's traced edit layer);
`method_resources` prepares what the method's `apply` needs: second moments of its layers
over the graph's verbalised facts (cached on disk), its context templates (cached), and
method-specific resources (DiKE: the graph's facts to train its disentangler on).
`graph_edits` turns graph facts into counterfactual edits; `glame_subgraph` builds GLAME's
subgraph around an edit's new object from the graph.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from contracts.types import EditRequest, FactText, Subgraph, SubgraphEdge
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
    facts: Sequence[FactText] | None = None,
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
    if method == "dike":
        out["facts"] = list(facts or [])
        out["cache_dir"] = get_settings().cache_dir / "dike"
    return out


def graph_edits(
    facts: Sequence[FactText], seed: int = 0, distinct_subjects: bool = False
) -> list[EditRequest]:
    """Return one counterfactual edit per (subject, relation) of the graph, in seeded order.

    The prompt is the fact's first template; the new object is another object of the same
    relation (which the model has learned), picked by a hash of the fact, so the model can
    say it. Relations with a single object are skipped. `distinct_subjects` keeps only the
    first edit (in the seeded order) of each subject.
    """
    objects: dict[str, list[str]] = defaultdict(list)
    for f in facts:
        objects[f.relation].append(f.object)
    seen: set[tuple[str, str]] = set()
    out = []
    for f in facts:
        key = (f.subject, f.relation)
        options = sorted(set(objects[f.relation]) - {f.object})
        if key in seen or not options:
            continue
        seen.add(key)
        digest = hashlib.sha256(f"{f.subject}|{f.relation}|{f.object}".encode()).digest()
        out.append(
            EditRequest(
                subject=f.subject,
                prompt=f.templates[0],
                target_new=options[int.from_bytes(digest[:4], "big") % len(options)],
                target_true=f.object,
                relation=f.relation,
                request_id=f"graph-{len(out)}",
            )
        )
    random.Random(seed).shuffle(out)
    if not distinct_subjects:
        return out
    first: dict[str, EditRequest] = {}
    for r in out:
        first.setdefault(r.subject, r)
    return list(first.values())


def glame_subgraph(
    facts: Sequence[FactText],
    request: EditRequest,
    size: int = 20,
    labels: Mapping[str, str] | None = None,
) -> Subgraph:
    """Return GLAME's subgraph: the edit triple (s, r, o*) and o*'s own facts (o*, r', o')."""
    labels = labels or {}
    relation = labels.get(request.relation or "", "") or " ".join(
        request.prompt.replace("{}", " ").split()
    )
    nodes = [request.subject, request.target_new]
    edges = [SubgraphEdge(head=0, relation=relation, tail=1)]
    for f in facts:
        if f.subject != request.target_new or len(edges) >= size:
            continue
        if f.object not in nodes:
            nodes.append(f.object)
        label = labels.get(f.relation, "") or " ".join(f.templates[0].replace("{}", " ").split())
        edges.append(SubgraphEdge(head=1, relation=label, tail=nodes.index(f.object)))
    return Subgraph(nodes=tuple(nodes), edges=tuple(edges), center=0)
