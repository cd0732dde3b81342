"""Regression: stepwise multi-hop probes carry `hops` as a JSON list of templates.

The stepwise scorer (`editor.probe_scoring.score_stepwise`) reads `meta["hops"]` with
`json.loads`; the expansion once joined the templates with '|', and every job whose plan
held a stepwise chain failed in its audit gate with a JSONDecodeError. The multi-hop probes
now come from `kg.probes` alone, for the planner as for the audit.
"""

from __future__ import annotations

import json

from contracts.types import EditRequest, ProbeKind
from kg.probes import ProbeConfig, audit_probes
from kg.view import GraphView


def test_stepwise_hops_are_a_json_list_of_templates(tiny_graph) -> None:
    view = GraphView(tiny_graph)
    requests = []
    for fact in tiny_graph.list_facts(limit=100):
        others = sorted(
            {g.object for g in tiny_graph.facts_of_relation(fact.relation)} - {fact.object}
        )
        if not others:
            continue
        names = view.names([fact.subject, fact.object, others[0]])
        template = view.relation(fact.relation).templates.cloze[0]
        requests.append(
            EditRequest(
                names[fact.subject],
                template,
                names[others[0]],
                names[fact.object],
                relation=fact.relation,
                request_id=f"r{len(requests)}",
            )
        )
    seen = 0
    for change in audit_probes(view, requests, ProbeConfig(fluency=False)):
        for probe in change.probes:
            if probe.kind != ProbeKind.MULTI_HOP_STEPWISE:
                continue
            hops = json.loads(probe.meta["hops"])
            assert isinstance(hops, list) and len(hops) >= 2
            assert all(t.count("{}") == 1 for t in hops)
            assert probe.meta["subject"]
            seen += 1
    assert seen > 0, "the tiny graph should yield stepwise chains"
