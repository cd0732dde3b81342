"""JSONL export and import."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from kg.errors import ImportFormatError
from kg.io_jsonl import MAX_LINE_BYTES, export_jsonl, import_jsonl
from kg.store.sql import SqlGraphStore
from kg.types import Fact, Relation


def _state(graph: SqlGraphStore) -> tuple[object, ...]:
    facts = sorted(
        (f.triple, f.status, f.source, f.version, tuple(sorted(f.meta.items())))
        for f in graph.list_facts(status=None)
    )
    return (facts, graph.list_entities(), graph.list_relations())


def _fact_line(**fields: object) -> str:
    return json.dumps({"relation": "P19", **fields})


def test_export_import_round_trip(seeded: SqlGraphStore, tmp_path: Path) -> None:
    seeded.add_fact(Fact("name:spike_hughes", "P19", "Q935334", meta={"q": "Where?"}))
    seeded.retract_fact("name:spike_hughes", "P19", "Q935334")
    path = tmp_path / "out" / "graph.jsonl"
    assert export_jsonl(seeded, path) == 3
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    fact = next(line for line in lines if line["type"] == "fact")
    assert {"subject", "subject_id", "relation", "object", "object_id", "status", "source"} <= set(
        fact
    )
    assert fact["subject"] == "Spike Hughes" and fact["object"] == "London"
    fresh = SqlGraphStore(f"sqlite:///{tmp_path / 'fresh.sqlite'}")
    summary = import_jsonl(fresh, path, who="importer", why="round trip")
    assert (summary.relations, summary.entities, summary.facts) == (1, 4, 3)
    assert _state(fresh) == _state(seeded)
    assert fresh.change_log()[-1].who == "importer"
    again = import_jsonl(fresh, path)  # idempotent
    assert again.facts == 0 and again.skipped_duplicates == 3
    assert _state(fresh) == _state(seeded)
    fresh.close()


def test_export_current_only_to_stream(seeded: SqlGraphStore) -> None:
    seeded.retract_fact("name:max_mosley", "P19", "Q84")
    buffer = io.StringIO()
    assert export_jsonl(seeded, buffer, status="current", definitions=False) == 1
    assert [json.loads(line)["type"] for line in buffer.getvalue().splitlines()] == ["fact"]


def test_import_by_names_creates_entities(sqlite_store: SqlGraphStore, birth: Relation) -> None:
    sqlite_store.add_relation(birth)
    data = "\n".join(
        [
            _fact_line(subject="Ada Lovelace", object="London", source="hand"),
            "",
            _fact_line(subject="Alan Turing", object="London", source="hand"),
        ]
    )
    summary = import_jsonl(sqlite_store, io.BytesIO(data.encode()))
    assert summary.facts == 2 and summary.entities == 3 and summary.by_source == {"hand": 2}
    london = sqlite_store.find_entities("London")
    assert [e.id for e in london] == ["name:london"]
    assert len(sqlite_store.facts_with_object("name:london")) == 2


def test_malformed_line_names_its_number_and_commits_nothing(seeded: SqlGraphStore) -> None:
    before = _state(seeded), len(seeded.change_log())
    data = "\n".join(
        [
            _fact_line(subject="Ada", object="Paris"),
            _fact_line(subject="Bob", object="Rome"),
            '{"relation": "P19", "subject": "Carl", ',
        ]
    )
    with pytest.raises(ImportFormatError, match="line 3") as info:
        import_jsonl(seeded, io.StringIO(data))
    assert info.value.line_no == 3
    assert (_state(seeded), len(seeded.change_log())) == before


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("[1, 2]", "JSON object"),
        (_fact_line(subject="Ada"), "'object'"),
        (json.dumps({"relation": "P404", "subject": "a", "object": "b"}), "unknown relation"),
        (_fact_line(subject="", object="b"), "empty"),
        (_fact_line(subject="a", object="b", status="deleted"), "status"),
        (json.dumps({"type": "poem"}), "unknown line type"),
        (_fact_line(subject_id="Q404", object="b"), "unknown subject id"),
        (
            json.dumps(
                {
                    "type": "relation",
                    "id": "r",
                    "templates": {"cloze": ["{} r"]},
                    "equivalent_to": "P19",
                }
            ),
            "'equivalent_to' must be a list",
        ),
    ],
)
def test_bad_lines_are_reported_with_line_number(
    seeded: SqlGraphStore, line: str, message: str
) -> None:
    data = _fact_line(subject="Ada", object="Paris") + "\n" + line + "\n"
    with pytest.raises(ImportFormatError, match=f"line 2: .*{message}"):
        import_jsonl(seeded, io.BytesIO(data.encode()))
    assert seeded.count_facts() == 2


def test_oversized_line_is_rejected(seeded: SqlGraphStore) -> None:
    big = _fact_line(subject="Ada", object="Paris", source="x" * (MAX_LINE_BYTES + 10))
    data = (_fact_line(subject="Ada", object="Paris") + "\n" + big + "\n").encode()
    with pytest.raises(ImportFormatError, match=f"line 2: line is longer than {MAX_LINE_BYTES}"):
        import_jsonl(seeded, io.BytesIO(data))
    assert seeded.count_facts() == 2


def test_line_at_the_limit_is_read(sqlite_store: SqlGraphStore, birth: Relation) -> None:
    sqlite_store.add_relation(birth)
    line = _fact_line(subject="Ada", object="Paris", meta={"pad": ""})
    pad = MAX_LINE_BYTES - len(line.encode())
    line = _fact_line(subject="Ada", object="Paris", meta={"pad": "p" * pad})
    assert len(line.encode()) == MAX_LINE_BYTES
    assert import_jsonl(sqlite_store, io.BytesIO((line + "\r\n").encode())).facts == 1


def test_invalid_utf8_is_reported(seeded: SqlGraphStore) -> None:
    with pytest.raises(ImportFormatError, match="line 1: not UTF-8"):
        import_jsonl(seeded, io.BytesIO(b'{"subject": "\xff"}\n'))


def test_relation_equivalence_is_imported_and_exported(sqlite_store: SqlGraphStore) -> None:
    line = {
        "type": "relation",
        "id": "asked_birth",
        "label": "asked birthplace",
        "templates": {"cloze": ["{} came into the world in"]},
        "equivalent_to": ["P19"],
    }
    import_jsonl(sqlite_store, io.BytesIO((json.dumps(line) + "\n").encode()))
    assert sqlite_store.get_relation("asked_birth").equivalent_to == ("P19",)
    buffer = io.StringIO()
    export_jsonl(sqlite_store, buffer)
    (exported,) = [json.loads(x) for x in buffer.getvalue().splitlines()]
    assert exported["equivalent_to"] == ["P19"]
