"""EVOKE importer on the real data files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.types import EditRequest, ProbeKind
from kg.importers.evoke import (
    SOURCE_ATTRIBUTE,
    SOURCE_NEIGHBOUR,
    SOURCE_PORT_NEW,
    SOURCE_PORT_TRUE,
    SOURCE_SAME_SUBJECT,
    SOURCE_TRUE,
    EvokeImportSummary,
    TemplateMatcher,
    evoke_cases,
    import_evoke,
    load_cases,
    parse_recalled,
    subj_relation_ids,
)
from kg.store.sql import SqlGraphStore
from kg.verbalise import fact_texts, verbalise


@pytest.fixture(scope="module")
def full_import(
    tmp_path_factory: pytest.TempPathFactory, evoke_paths: tuple[Path, Path]
) -> Iterator[tuple[SqlGraphStore, EvokeImportSummary]]:
    """Import both EVOKE files once into a SQLite store shared by this module's tests."""
    graph = SqlGraphStore(f"sqlite:///{tmp_path_factory.mktemp('evoke') / 'kg.sqlite'}")
    summary = import_evoke(graph, *evoke_paths)
    yield graph, summary
    graph.close()


def _entity(graph: SqlGraphStore, name: str) -> str:
    found = graph.find_entities(name)
    assert len(found) == 1, found
    return found[0].id


def test_matcher_prefers_the_most_specific_template() -> None:
    matcher = TemplateMatcher(["{} plays", "{}, who plays", "The domain of {} is"])
    assert matcher.match("Al Sears, who plays") == ("Al Sears", "")
    assert matcher.match("Kevin Durant performs") == (None, "no_template")
    assert TemplateMatcher(["{} in", "{}, in"]).match("Paris, in") == ("Paris", "")
    assert TemplateMatcher(["{} x", "{}, x"]).match("a, x") == ("a", "")


def test_matcher_reports_ties_as_ambiguous() -> None:
    matcher = TemplateMatcher(["The {} of x is", "The a of {} is"])
    assert matcher.match("The a of x is") == (None, "ambiguous")


def test_parse_recalled() -> None:
    assert parse_recalled("(Philadelphia, known for, cheesesteaks)") == (
        "Philadelphia",
        "known for",
        "cheesesteaks",
    )
    assert parse_recalled("(Fiat, headquartered in, Turin, Italy)") == (
        "Fiat",
        "headquartered in",
        "Turin, Italy",
    )
    assert parse_recalled("(just, two)") is None


def test_limited_import(sqlite_store: SqlGraphStore, evoke_paths: tuple[Path, Path]) -> None:
    summary = import_evoke(sqlite_store, *evoke_paths, limit=50)
    assert (summary.cases_main, summary.cases_subj) == (50, 50)
    assert 90 <= summary.facts_by_source[SOURCE_TRUE] <= 100
    assert summary.facts_by_source[SOURCE_NEIGHBOUR] > 150  # 500 prompts; subjects repeat
    assert sqlite_store.count_facts() == summary.facts == summary.added["facts"]
    assert sqlite_store.count_entities() == summary.entities
    # case 0: Spike Hughes originates from London (Q84); new target Philadelphia (Q935334)
    spike = _entity(sqlite_store, "Spike Hughes")
    [true_fact] = sqlite_store.facts_about(spike, "P19")
    assert (true_fact.object, true_fact.source) == ("Q84", SOURCE_TRUE)
    assert true_fact.meta["case"] == "evoke-main-0"
    neighbours = {f.subject for f in sqlite_store.facts_with_object("Q84") if f.relation == "P19"}
    assert _entity(sqlite_store, "Max Mosley") in neighbours
    assert _entity(sqlite_store, "Quintin Hogg, Baron Hailsham of St Marylebone") in neighbours
    attribute = sqlite_store.facts_about(_entity(sqlite_store, "Mike Dennis"), "P19")
    assert [(f.object, f.source) for f in attribute] == [("Q935334", SOURCE_ATTRIBUTE)]
    # portability: Philadelphia known for cheesesteaks; London known for fish and chips
    [new_hop] = sqlite_store.facts_about("Q935334", "label:known_for")
    assert new_hop.source == SOURCE_PORT_NEW
    assert sqlite_store.get_entity(new_hop.object).name == "cheesesteaks"
    assert new_hop.meta["question"].startswith("What famous food")
    assert new_hop.meta["answer"] == "Cheesesteaks"
    true_hops = sqlite_store.facts_about("Q84", "label:known_for")
    assert any(
        sqlite_store.get_entity(f.object).name == "Fish and chips" and f.source == SOURCE_PORT_TRUE
        for f in true_hops
    )
    relation = sqlite_store.get_relation("P19")
    assert relation.templates.cloze[0] == "{} originates from"
    assert relation.templates.question == ("Where was {} born?",)
    assert relation.functional
    texts = fact_texts(sqlite_store)
    assert len(texts) == sqlite_store.count_facts(status="current")
    assert all(t.statement(0).endswith(t.object) for t in texts)
    assert verbalise(true_fact, sqlite_store, "question") == (
        "Where was Spike Hughes born?",
        "London",
    )


def test_subj_spec_relations_and_same_subject_facts(
    sqlite_store: SqlGraphStore, evoke_paths: tuple[Path, Path]
) -> None:
    import_evoke(sqlite_store, *evoke_paths, limit=5)
    dicaprio = _entity(sqlite_store, "Leonardo DiCaprio")
    [citizen] = sqlite_store.facts_about(dicaprio, "P27")  # same label as the main relation
    assert citizen.object == "Q30"
    [mother] = sqlite_store.facts_about(dicaprio, "label:mother")
    assert mother.source == SOURCE_SAME_SUBJECT
    irmelin = sqlite_store.get_entity(mother.object)
    assert irmelin.name == "Irmelin DiCaprio" and "Irmelin Indenbirken" in irmelin.aliases
    assert sqlite_store.get_relation("label:mother").templates.cloze == (
        "The name of the mother of {} is",
    )


@pytest.mark.slow
def test_full_import_counts(full_import: tuple[SqlGraphStore, EvokeImportSummary]) -> None:
    graph, summary = full_import
    assert (summary.cases_main, summary.cases_subj) == (1031, 458)
    assert summary.seconds < 30
    by_source = summary.facts_by_source
    assert by_source[SOURCE_TRUE] > 1400  # 1489 cases, a few share subject and object
    assert by_source[SOURCE_NEIGHBOUR] > 3500 and by_source[SOURCE_ATTRIBUTE] > 3500
    assert by_source[SOURCE_SAME_SUBJECT] > 350
    assert by_source[SOURCE_PORT_NEW] > 300 and by_source[SOURCE_PORT_TRUE] > 300
    assert 0 < summary.skipped["neighbour_no_template"] < 0.05 * 10310
    assert all(summary.skipped_examples[reason] for reason in summary.skipped)
    assert graph.count_facts() == summary.facts
    assert graph.count_entities() == summary.entities
    assert graph.count_relations() == summary.relations
    assert graph.count_facts_by_source() == by_source
    relations = {r.id: r for r in graph.list_relations()}
    assert len([r for r in relations if r.startswith("P")]) == 34
    assert all(r.templates.cloze and r.templates.question for r in relations.values())


@pytest.mark.slow
def test_full_import_is_idempotent(
    full_import: tuple[SqlGraphStore, EvokeImportSummary], evoke_paths: tuple[Path, Path]
) -> None:
    graph, summary = full_import
    again = import_evoke(graph, *evoke_paths)
    assert again.added == {"entities": 0, "relations": 0, "facts": 0}
    assert graph.count_facts() == summary.facts


def test_subj_labels_map_to_main_relations(evoke_paths: tuple[Path, Path]) -> None:
    main, subj = (load_cases(path) for path in evoke_paths)
    ids = subj_relation_ids(main, subj)
    assert ids["OCCUPATION"] == "P106"  # shares the case prompt "The occupation of {} is"
    assert ids["COUNTRY OF CITIZENSHIP"] == "P27"  # same Wikidata label
    assert ids["SPOUSE"] == "label:spouse"


@pytest.mark.slow  # the full EVOKE import
def test_occupation_maps_to_the_main_relation(
    full_import: tuple[SqlGraphStore, EvokeImportSummary],
) -> None:
    graph, _ = full_import
    cloze = graph.get_relation("P106").templates.cloze
    assert "The occupation of {} is" in cloze
    assert "label:occupation" not in {r.id for r in graph.list_relations()}


def test_evoke_cases(evoke_paths: tuple[Path, Path]) -> None:
    cases = evoke_cases(*evoke_paths)
    assert len(cases) == 1031 + 458
    assert len({c.request_id for c in cases}) == len(cases)
    first = cases[0]
    assert isinstance(first, EditRequest)
    assert first.request_id == "evoke-main-0"
    assert (first.subject, first.prompt, first.target_new, first.target_true) == (
        "Spike Hughes",
        "{} originates from",
        "Philadelphia",
        "London",
    )
    assert first.relation == "P19" and len(first.paraphrases) == 2
    assert len(first.neighbours) == 10
    assert {(p.expected, p.kind) for p in first.neighbours} == {("London", ProbeKind.NEIGHBOUR)}
    subj = next(c for c in cases if c.request_id == "evoke-subj-0")
    assert subj.relation == "P27"
    spouse = next(c for c in cases if c.request_id == "evoke-subj-457")
    assert spouse.relation == "label:spouse"
    assert [p.kind for p in subj.neighbours] == [ProbeKind.SAME_SUBJECT]
    assert subj.neighbours[0].expected == "Irmelin DiCaprio"
    assert len(evoke_cases(*evoke_paths, limit=3)) == 6
