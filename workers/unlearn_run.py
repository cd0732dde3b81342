"""Unlearn graph concepts with any registered unlearning method and evaluate them in six forms.

Glue between `kg` (concepts, anchors, related knowledge, form probes) and `editor` (methods,
scoring): `prepare_graph_model` builds the EVOKE graph and trains (or reuses) a knowledge
model; `bench_concepts` picks concepts; `run_unlearning` applies a method to each concept
from the base weights, scores the forms before and after and reverts bit for bit.

Grown forget sets: a concept's forget texts can grow by the facts `kg.related` finds (k-hop
neighbourhood fused with sentence similarity, its defaults). `run_extrapolation_sweep` runs
a base method once per concept on the grown set and scores its update scaled by 1 + α for
every α (UIPE's extrapolation); `choose_alpha` picks α on the forms' retain rate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from contracts.types import FactText, Probe, UnlearnRequest
from editor.delta import scaled
from editor.knowledge.presets import get_preset
from editor.loading import load_model, state_checksum
from editor.prepare import Prepared
from editor.sequence import EditSequence
from kg.concepts import concept_entities, concept_facts, suggest_anchor, unlearn_request
from kg.related import RelatedConfig, related_facts
from kg.store import GraphStore, open_store
from kg.types import Concept, fill
from kg.unlearn_forms import FormConfig, form_probes
from kg.view import GraphView
from workers.graph_models import build_evoke_graph, graph_facts, prepare_on_graph, train_or_reuse
from workers.settings import get_settings
from workers.unlearn_eval import answered, form_rates

EXTRAPOLATIONS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


def prepare_graph_model(
    limit: int, preset_name: str, progress: Callable[[int, int, float], None] | None = None
) -> tuple[GraphStore, list[FactText], Path]:
    """Return the EVOKE graph of the first `limit` cases and its (cached) knowledge model."""
    settings = get_settings()
    store = open_store(f"sqlite:///{settings.var_dir / f'evoke-{limit}.sqlite'}")
    build_evoke_graph(store, settings.evoke_main, settings.evoke_subj_spec, limit=limit)
    facts = graph_facts(store)
    model_dir, _ = train_or_reuse(facts, get_preset(preset_name), settings.models_dir, 0, progress)
    return store, facts, model_dir


@dataclass
class ConceptBench:
    """What every concept-unlearning bench starts from: the graph, its loaded knowledge model,
    the base weights' checksum and the bench concepts with their anchors."""

    store: GraphStore
    facts: list[FactText]
    model: Any
    tokenizer: Any
    base_sha: str
    concepts: list[Concept]
    preset: str

    def prepare(self, method: str, overrides: Any = None) -> Prepared:
        """Return `method` prepared for the bench model as the job runner prepares it."""
        return prepare_on_graph(
            method, self.model, self.tokenizer, self.facts, self.base_sha, self.preset, overrides
        )


def concept_bench(limit: int, preset_name: str, n_concepts: int) -> ConceptBench:
    """Return the EVOKE graph of `limit` cases, its model loaded, and `n_concepts` anchored."""
    store, facts, model_dir = prepare_graph_model(limit, preset_name)
    model, tok = load_model(model_dir)
    concepts = [with_anchor(store, c) for c in bench_concepts(store, n_concepts)]
    return ConceptBench(store, facts, model, tok, state_checksum(model), concepts, preset_name)


def bench_concepts(
    store: GraphStore, n: int, min_facts: int = 2, max_inbound: int = 2
) -> list[Concept]:
    """Return `n` concepts: the subjects with the most current facts (ties by id), leaving out
    hubs that are the object of more than `max_inbound` facts (countries, languages)."""
    counts = [(s, c) for s, c in store.count_facts_by_subject() if c >= min_facts]
    counts.sort(key=lambda x: (-x[1], x[0]))
    chosen = []
    for subject, _ in counts:
        if len(store.facts_with_object(subject)) <= max_inbound:
            chosen.append(subject)
        if len(chosen) == n:
            break
    names = store.entity_names(chosen)
    return [Concept(f"forget:{s}", names[s], entities=(s,)) for s in chosen]


def with_anchor(store: GraphStore | GraphView, concept: Concept) -> Concept:
    """Return the concept with its suggested anchor (unless one is set already)."""
    if concept.redirect_to:
        return concept
    pick = suggest_anchor(store, concept)
    return replace(concept, redirect_to=pick.entity_id) if pick else concept


def grown_request(
    view: GraphView, concept: Concept, request: UnlearnRequest, config: RelatedConfig | None = None
) -> tuple[UnlearnRequest, list[str]]:
    """Return the request with related facts (`kg.related`) added to its forget texts."""
    own = {f.triple for f in concept_facts(view, concept)}
    pool = view.store.list_facts()
    found = related_facts(
        concept_entities(view, concept),
        pool,
        lambda f: _statement(view, f),
        config=config,
        relation_label=lambda r: view.relation(r).label,
    )
    extra = [_statement(view, r.fact) for r in found if r.fact.triple not in own]
    texts = tuple(dict.fromkeys([*request.forget_texts, *extra]))
    return replace(request, forget_texts=texts), [r.reason for r in found]


def _statement(view: GraphView, fact: Any) -> str:
    """Return a fact's first-cloze statement."""
    names = view.names([fact.subject, fact.object])
    template = view.relation(fact.relation).templates.cloze[0]
    return f"{fill(template, names[fact.subject])} {names[fact.object]}."


@dataclass
class MethodResult:
    """Outcome of one method over several concepts."""

    method: str
    rates: dict[str, Any]
    seconds: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def run_unlearning(
    model: Any,
    tokenizer: Any,
    store: GraphStore,
    concepts: Sequence[Concept],
    prepared: Prepared,
    *,
    forms: FormConfig | None = None,
    grow: bool = False,
    related: RelatedConfig | None = None,
    min_known: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> MethodResult:
    """Unlearn each concept from the base weights with a prepared method (`editor.prepare`);
    score the six forms before and after; `grow` adds the related facts to the forget set."""
    view = GraphView(store)
    all_probes: list[Probe] = []
    before: list[bool] = []
    after: list[bool] = []
    seconds: list[float] = []
    for k, concept in enumerate(concepts):
        request = unlearn_request(view, concept)
        if grow:
            request, _ = grown_request(view, concept, request, related)
        probes = form_probes(view, [request], forms)
        b = answered(model, tokenizer, probes)
        seq = EditSequence(
            model, tokenizer, prepared.method, prepared.hparams, **prepared.resources
        )
        t0 = time.perf_counter()
        seq.apply([request])
        seconds.append(time.perf_counter() - t0)
        a = answered(model, tokenizer, probes)
        seq.revert_all()
        all_probes += probes
        before += b
        after += a
        if progress is not None:
            progress(k + 1, len(concepts))
    name = prepared.method.name
    return MethodResult(name, form_rates(all_probes, before, after, min_known), seconds)


def run_extrapolation_sweep(
    model: Any,
    tokenizer: Any,
    store: GraphStore,
    concepts: Sequence[Concept],
    base: Prepared,
    alphas: Sequence[float] = EXTRAPOLATIONS,
    *,
    forms: FormConfig | None = None,
    related: RelatedConfig | None = None,
    min_known: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> dict[float, MethodResult]:
    """Per concept: grown forget set, one run of the base method, then its update scaled by
    1 + α for every α, scored and reverted."""
    view = GraphView(store)
    probes_all: list[Probe] = []
    before: list[bool] = []
    after: dict[float, list[bool]] = {a: [] for a in alphas}
    seconds: dict[float, list[float]] = {a: [] for a in alphas}
    for k, concept in enumerate(concepts):
        request, _ = grown_request(view, concept, unlearn_request(view, concept), related)
        probes = form_probes(view, [request], forms)
        before += answered(model, tokenizer, probes)
        probes_all += probes
        seq = EditSequence(model, tokenizer, base.method, base.hparams, **base.resources)
        t0 = time.perf_counter()
        deltas = seq.apply([request])
        train_s = time.perf_counter() - t0
        seq.revert_all()
        for alpha in alphas:
            t0 = time.perf_counter()
            grown = [scaled(d, 1.0 + alpha, meta={"extrapolation": alpha}) for d in deltas]
            for d in grown:
                d.apply(model)
            seconds[alpha].append(train_s + time.perf_counter() - t0)
            after[alpha] += answered(model, tokenizer, probes)
            for d in reversed(grown):
                d.revert(model)
        if progress is not None:
            progress(k + 1, len(concepts))
    name = base.method.name
    return {
        a: MethodResult(
            f"{name} α={a}", form_rates(probes_all, before, after[a], min_known), seconds[a]
        )
        for a in alphas
    }


def choose_alpha(
    results: dict[float, MethodResult], base_retain: float, keep: float = 0.9
) -> float | None:
    """Return the α with the most forgetting whose retain rate is ≥ keep × base_retain."""
    ok = [
        (r.rates["forget_rate"] or 0.0, -a, a)
        for a, r in results.items()
        if r.rates["retain_rate"] is not None and r.rates["retain_rate"] >= keep * base_retain
    ]
    return max(ok)[2] if ok else None
