"""Regression: stepwise multi-hop probes from the expansion carry `hops` as a JSON list.

The stepwise scorer (`editor.probe_scoring.score_stepwise`) reads `meta["hops"]` with
`json.loads`; the expansion once joined the templates with '|', and every job whose plan
held a stepwise chain failed in its audit gate with a JSONDecodeError.
"""

from __future__ import annotations

import json

from contracts.types import ProbeKind
from kg.expand import ExpansionConfig, expand_edit


def test_stepwise_hops_are_a_json_list_of_templates(tiny_graph) -> None:
    seen = 0
    for fact in tiny_graph.list_facts(limit=100):
        others = sorted(
            {g.object for g in tiny_graph.facts_of_relation(fact.relation)} - {fact.object}
        )
        if not others:
            continue
        exp = expand_edit(
            tiny_graph, fact.subject, fact.relation, others[0], fact.object, ExpansionConfig()
        )
        for probe in exp.probes:
            if probe.kind != ProbeKind.MULTI_HOP_STEPWISE:
                continue
            hops = json.loads(probe.meta["hops"])
            assert isinstance(hops, list) and len(hops) >= 2
            assert all(t.count("{}") == 1 for t in hops)
            assert probe.meta["subject"]
            seen += 1
    assert seen > 0, "the tiny graph should yield stepwise chains"
