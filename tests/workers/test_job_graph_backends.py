"""Jobs read their graph through `open_store`: the statistics corpus comes from a Bolt graph
(FalkorDB) as it does from SQLite."""

from __future__ import annotations

import pytest
from jobs_helpers import make_settings

from kg.io_jsonl import export_jsonl, import_jsonl
from kg.store import open_store
from workers.errors import InvalidInputError
from workers.jobs.resources import graph_corpus


@pytest.mark.service
def test_statistics_corpus_from_a_bolt_graph(tmp_path, falkor_server, tiny_graph) -> None:
    source = tmp_path / "facts.jsonl"
    export_jsonl(tiny_graph, source, status="current")
    bolt = open_store(falkor_server.bolt_url)
    bolt.drop_all()  # the session's server is shared
    try:
        import_jsonl(bolt, source, "test", "statistics corpus on Bolt")
        settings = make_settings(tmp_path / "var")
        from_bolt = graph_corpus(falkor_server.bolt_url, settings)
        assert from_bolt == graph_corpus(tiny_graph.url, settings) and from_bolt[1]
        bolt.drop_all()
        with pytest.raises(InvalidInputError, match="holds no facts"):
            graph_corpus(falkor_server.bolt_url, settings)
    finally:
        bolt.drop_all()
