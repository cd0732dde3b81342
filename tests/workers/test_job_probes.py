"""Probes a job gets from the graph when it was submitted without any."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kg"))
from geo_graph import build

from contracts.types import EditRequest, UnlearnRequest
from kg.store.sql import SqlGraphStore
from workers.jobs.probes import derive_job_probes


def _geo(tmp_path) -> SqlGraphStore:
    store = SqlGraphStore(f"sqlite:///{tmp_path / 'geo.sqlite'}")
    build(store)
    return store


def test_an_edit_without_a_relation_is_placed_by_its_template(tmp_path):
    store = _geo(tmp_path)
    edit = EditRequest("Max Mosley", "{} was born in", "Paris", "London", request_id="e")
    kinds = {str(p.kind) for p in derive_job_probes(store, "edit", [edit])}
    assert {"rewrite", "paraphrase", "neighbour"} <= kinds


def test_an_edit_the_graph_cannot_place_keeps_its_rewrite_probe(tmp_path):
    store = _geo(tmp_path)
    edit = EditRequest("Nobody", "{} likes the colour", "blue", "red", request_id="x")
    (probe,) = derive_job_probes(store, "edit", [edit])
    assert (str(probe.kind), probe.prompt, probe.expected) == (
        "rewrite",
        "Nobody likes the colour",
        "blue",
    )
    assert probe.meta["placed"] == "no"


def test_forgetting_gets_forget_and_retain_probes(tmp_path):
    store = _geo(tmp_path)
    probes = derive_job_probes(store, "unlearn", [UnlearnRequest("Spike Hughes", request_id="u")])
    roles = {p.meta.get("role") for p in probes}
    assert "forget" in roles and any(str(p.kind) == "retain" for p in probes)
    assert derive_job_probes(store, "unlearn", [UnlearnRequest("Nobody at all")]) == []
