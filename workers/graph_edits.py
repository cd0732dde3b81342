"""Edit requests drawn from a graph: `graph_edits` turns graph facts into counterfactual edits
(GLAME's subgraphs come from `kg.expand`)."""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Sequence

from contracts.types import EditRequest, FactText


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
