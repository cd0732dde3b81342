"""Probes derived from the graph for one edit: what the edited model must and must not say.

- rewrite: the edit prompt, new object against the true one;
- paraphrase: other cloze templates of the relation, new against true;
- neighbour: other subjects with the same relation and true object, true against new;
- same_subject: the edited subject's other current facts, which must stay (greedy match).

The audit issue extends this with multi-hop, reverse, forms and prefix distraction.
"""

from __future__ import annotations

import hashlib
import random

from contracts.types import EditRequest, Probe, ProbeKind
from kg.errors import NotFoundError
from kg.store.sql import SqlGraphStore
from kg.types import fill


def _rng(request: EditRequest) -> random.Random:
    """A generator seeded by the request, so probes are the same on every run."""
    key = f"{request.request_id}|{request.subject}|{request.prompt}".encode()
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))


def paraphrase_probes(store: SqlGraphStore, request: EditRequest, limit: int = 5) -> list[Probe]:
    """Return up to `limit` probes of the relation's other cloze templates (new vs true)."""
    if request.relation is None:
        return []
    templates = [t for t in store.get_relation(request.relation).templates.cloze]
    templates = [t for t in templates if t != request.prompt]
    chosen = _rng(request).sample(templates, min(limit, len(templates)))
    return [
        Probe(
            prompt=fill(t, request.subject),
            expected=request.target_new,
            unexpected=request.target_true,
            kind=ProbeKind.PARAPHRASE,
        )
        for t in chosen
    ]


def same_subject_probes(store: SqlGraphStore, request: EditRequest) -> list[Probe]:
    """Return the subject's other current facts as probes that must keep their object."""
    probes: list[Probe] = []
    seen: set[tuple[str, str]] = set()
    for entity in store.find_entities(request.subject):
        try:
            facts = store.facts_about(entity.id)
        except NotFoundError:
            continue
        objects = store.entity_names({f.object for f in facts})
        for fact in facts:
            if fact.relation == request.relation:
                continue
            key = (fact.relation, fact.object)
            if key in seen:
                continue
            seen.add(key)
            template = store.get_relation(fact.relation).templates.cloze[0]
            probes.append(
                Probe(
                    prompt=fill(template, request.subject),
                    expected=objects[fact.object],
                    kind=ProbeKind.SAME_SUBJECT,
                    meta={"relation": fact.relation},
                )
            )
    return probes


def edit_probes(
    store: SqlGraphStore, request: EditRequest, n_paraphrases: int = 5, n_neighbours: int = 10
) -> list[Probe]:
    """Return rewrite, paraphrase, neighbour and same-subject probes for one edit."""
    probes = [
        Probe(
            prompt=request.rendered(),
            expected=request.target_new,
            unexpected=request.target_true,
            kind=ProbeKind.REWRITE,
        )
    ]
    probes += paraphrase_probes(store, request, n_paraphrases)
    for p in request.neighbours[:n_neighbours]:
        if p.kind == ProbeKind.NEIGHBOUR:
            probes.append(
                Probe(
                    prompt=p.prompt,
                    expected=p.expected,
                    unexpected=request.target_new,
                    kind=ProbeKind.NEIGHBOUR,
                )
            )
    probes += same_subject_probes(store, request)
    return probes
