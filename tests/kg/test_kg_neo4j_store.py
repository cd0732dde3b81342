"""Neo4j-driver store details: URL options, FalkorDB's request limit and string escaping."""

from __future__ import annotations

import random

import pytest

from kg.errors import ValidationError
from kg.store.neo4j import FALKORDB, Neo4jGraphStore
from kg.types import Entity, Fact, Relation, RelationTemplates


def test_url_options_and_hidden_password() -> None:
    graph = Neo4jGraphStore(
        "bolt://neo4j:s3cret@127.0.0.1:7999?server=falkordb&batch_size=20&database=kg"
    )
    assert graph.server == FALKORDB and graph.batch_size == 20
    assert "s3cret" not in graph.url and graph.url.startswith("bolt://neo4j@127.0.0.1:7999")
    assert Neo4jGraphStore("bolt://h:1?server=falkordb&batch_size=500").batch_size == 50
    with pytest.raises(ValidationError, match="batch_size"):
        Neo4jGraphStore("bolt://h:1?server=falkordb", batch_size=0)
    with pytest.raises(ValidationError, match="server"):
        Neo4jGraphStore("bolt://h:1?server=mysql")
    with pytest.raises(ValidationError, match="Bolt URL"):
        Neo4jGraphStore("http://h:1")


def test_falkordb_string_codec_round_trips_everything() -> None:
    graph = Neo4jGraphStore("bolt://h:1?server=falkordb")
    rng = random.Random(0)
    alphabet = "ab%'\\\"}{)( /5C27%25é😀\n"
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))
        encoded = graph._encode(text)
        assert "'" not in encoded and "\\" not in encoded
        assert graph._decode(encoded) == text
    nested = {"rows": [{"id": "it's", "aliases": ["a\\b", "100%"]}]}
    assert graph._decode(graph._encode(nested)) == nested


@pytest.mark.service
def test_falkordb_oversized_requests_are_refused_and_the_server_lives(falkor_server) -> None:
    graph = Neo4jGraphStore(falkor_server.bolt_url, batch_size=50)
    graph.drop_all()
    try:
        with pytest.raises(ValidationError, match="why is"):
            graph.add_entity(Entity("a", "A"), who="alice", why="x" * 5000)
        # templates over the budget (EVOKE's have them) are written in parts, then read whole
        huge = RelationTemplates(cloze=tuple(f"{{}} 'é' {i} " + "y\\%" * 100 for i in range(20)))
        graph.add_relation(Relation("big", "big", huge))
        assert graph.get_relation("big").templates == huge
        graph.add_entities([Entity("a", "A"), Entity("b", "B")])
        with pytest.raises(ValidationError, match="Bolt request limit"):  # one value, no parts
            graph.add_fact(Fact("a", "big", "b", meta={"note": "z" * 4000}))
        assert graph.count_facts() == 0
        graph.drop_all()
        # long names are split into requests under the byte budget, not 50 rows at once
        entities = [Entity(f"e{i}", f"{i} " + "'" * 200) for i in range(40)]
        assert graph.add_entities(entities) == 40
        graph.add_relation(Relation("p", "p", RelationTemplates(cloze=("{} p",))))
        graph.add_facts(Fact(f"e{i}", "p", f"e{(i + 1) % 40}", source="s" * 400) for i in range(40))
        assert graph.get_entity("e7").name == "7 " + "'" * 200
        assert graph.count_facts() == 40
        assert falkor_server.alive()
    finally:
        graph.drop_all()
        graph.close()
