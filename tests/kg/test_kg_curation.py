"""Curation workflow: review states, version bumps, stale-version refusal, functional slots."""

from __future__ import annotations

import pytest
from conftest import seed

from kg import curation
from kg.errors import ConflictError, NotFoundError, StateError, ValidationError
from kg.store.base import GraphStore
from kg.types import ChangeSetState, Entity, Fact, FactStatus, Operation, Relation

SPIKE, MAX, LONDON, PHILLY = "name:spike_hughes", "name:max_mosley", "Q84", "Q935334"


def _op(kind: str, **payload: str) -> Operation:
    return Operation(kind, payload)


def _replace(obj: str, new: str, subject: str = SPIKE) -> Operation:
    return _op("replace_object", subject=subject, relation="P19", object=obj, new_object=new)


def _approved(store: GraphStore, ops: list[Operation], author: str = "alice") -> str:
    cs = curation.create_change_set(store, author, "fix birthplace", ops)
    curation.propose(store, cs.id, who=author)
    return curation.approve(store, cs.id, reviewer="rita", note="checked").id


def test_full_workflow_applies_every_operation(graph_store: GraphStore) -> None:
    seed(graph_store)
    graph_store.add_entity(Entity("Q90", "Paris"))
    ops = [
        _replace(LONDON, PHILLY),
        _op("add_alias", entity=PHILLY, alias="City of Brotherly Love"),
        _op("add_concept", id="c:spike", name="Spike Hughes", aliases=["Spike"]),
        _op("mark_forget", concept="c:spike"),
        _op("retract_fact", subject=MAX, relation="P19", object=LONDON),
        _op("add_fact", subject=MAX, relation="P19", object="Q90", source="census"),
    ]
    cs = curation.create_change_set(graph_store, "alice", "corrections", ops)
    assert cs.state is ChangeSetState.DRAFT and graph_store.graph_version() == 0
    assert {(b["subject"], b["relation"]) for b in cs.base} == {(SPIKE, "P19"), (MAX, "P19")}
    proposed = curation.propose(graph_store, cs.id, who="alice")
    assert proposed.state is ChangeSetState.PROPOSED
    assert graph_store.facts_about(SPIKE)[0].object == LONDON  # nothing applied before approval
    approved = curation.approve(graph_store, cs.id, reviewer="rita", note="ok")
    assert approved.state is ChangeSetState.APPROVED and approved.graph_version == 1
    assert graph_store.graph_version() == 1
    stored = graph_store.get_change_set(cs.id)
    assert stored.reviewer == "rita" and stored.graph_version == 1
    (spike,) = graph_store.facts_about(SPIKE)
    assert spike.object == PHILLY and spike.version == 2 and spike.meta["old_object"] == LONDON
    old = [f for f in graph_store.facts_about(SPIKE, status=None) if f.object == LONDON]
    assert old[0].status is FactStatus.RETRACTED
    assert [f.object for f in graph_store.facts_about(MAX)] == ["Q90"]
    assert graph_store.facts_about(MAX)[0].source == "census"
    assert "City of Brotherly Love" in graph_store.get_entity(PHILLY).aliases
    assert graph_store.get_concept("c:spike").aliases == ("Spike",)
    assert [m.change_set_id for m in graph_store.forget_marks("c:spike")] == [cs.id]
    actions = [e.action for e in graph_store.change_log()]
    assert actions[-1] == "approve_change_set" and "mark_forget" in actions
    assert graph_store.change_log(action="approve_change_set")[-1].who == "rita"


def test_every_approval_bumps_the_version(graph_store: GraphStore) -> None:
    seed(graph_store)
    _approved(graph_store, [_replace(LONDON, PHILLY)])
    _approved(graph_store, [_replace(PHILLY, LONDON)])
    assert graph_store.graph_version() == 2
    assert [c.graph_version for c in graph_store.list_change_sets(state="approved")] == [1, 2]


def test_stale_change_set_is_refused_naming_the_facts(graph_store: GraphStore) -> None:
    seed(graph_store)
    graph_store.add_entity(Entity("Q90", "Paris"))
    mine = curation.create_change_set(graph_store, "alice", "a", [_replace(LONDON, PHILLY)])
    curation.propose(graph_store, mine.id, who="alice")
    _approved(graph_store, [_replace(LONDON, "Q90")], author="bob")  # bob gets there first
    with pytest.raises(ConflictError) as caught:
        curation.approve(graph_store, mine.id, reviewer="rita")
    err = caught.value
    assert mine.id in str(err) and SPIKE in str(err) and LONDON in str(err) and "Q90" in str(err)
    (slot,) = err.facts
    assert slot["subject"] == SPIKE and slot["relation"] == "P19"
    assert [f["object"] for f in slot["expected"]] == [LONDON]
    assert [f["object"] for f in slot["current"]] == ["Q90"]
    assert graph_store.get_change_set(mine.id).state is ChangeSetState.PROPOSED
    assert graph_store.graph_version() == 1  # conflicts are found before the bump
    assert [f.object for f in graph_store.facts_about(SPIKE)] == ["Q90"]
    # after a rebase the operation no longer fits the graph: London is not current any more
    with pytest.raises(ValidationError, match="not current"):
        curation.rebase(graph_store, mine.id, who="alice")


def test_retract_and_readd_is_still_a_conflict(sqlite_store: GraphStore) -> None:
    """The base holds fact ids, so retract + re-add of the same triple is seen (ABA)."""
    seed(sqlite_store)
    mine = curation.create_change_set(sqlite_store, "alice", "a", [_replace(LONDON, PHILLY)])
    curation.propose(sqlite_store, mine.id, who="alice")
    sqlite_store.retract_fact(SPIKE, "P19", LONDON)
    sqlite_store.add_fact(Fact(SPIKE, "P19", LONDON))
    with pytest.raises(ConflictError, match="stale"):
        curation.approve(sqlite_store, mine.id, reviewer="rita")
    rebased = curation.rebase(sqlite_store, mine.id, who="alice")
    assert curation.approve(sqlite_store, rebased.id, reviewer="rita").graph_version == 1


def test_functional_relation_keeps_one_current_object(sqlite_store: GraphStore) -> None:
    seed(sqlite_store)
    add = _op("add_fact", subject=SPIKE, relation="P19", object=PHILLY)
    with pytest.raises(ValidationError, match=r"functional.*replace_object"):
        curation.create_change_set(sqlite_store, "alice", "second birthplace", [add])
    # a non-functional relation may hold several objects
    sqlite_store.add_relation(Relation("P1412", "languages", {"cloze": ("{} speaks",)}))
    ops = [
        _op("add_fact", subject=SPIKE, relation="P1412", object=LONDON),
        _op("add_fact", subject=SPIKE, relation="P1412", object=PHILLY),
    ]
    _approved(sqlite_store, ops)
    assert len(sqlite_store.facts_about(SPIKE, "P1412")) == 2
    # retract then add in one change set is fine on a functional slot
    ok = [_op("retract_fact", subject=SPIKE, relation="P19", object=LONDON), add]
    _approved(sqlite_store, ok)
    assert [f.object for f in sqlite_store.facts_about(SPIKE, "P19")] == [PHILLY]


def test_review_states_are_enforced(sqlite_store: GraphStore) -> None:
    seed(sqlite_store)
    cs = curation.create_change_set(sqlite_store, "alice", "a", [_replace(LONDON, PHILLY)])
    with pytest.raises(StateError, match=r"draft.*proposed"):
        curation.approve(sqlite_store, cs.id, reviewer="rita")
    with pytest.raises(StateError):
        curation.reject(sqlite_store, cs.id, reviewer="rita", note="no")
    curation.propose(sqlite_store, cs.id, who="alice")
    with pytest.raises(StateError):
        curation.propose(sqlite_store, cs.id, who="alice")
    with pytest.raises(StateError):
        curation.update_draft(sqlite_store, cs.id, [_replace(LONDON, MAX)], who="alice")
    rejected = curation.reject(sqlite_store, cs.id, reviewer="rita", note="source is weak")
    assert rejected.state is ChangeSetState.REJECTED and rejected.review_note == "source is weak"
    with pytest.raises(StateError):
        curation.approve(sqlite_store, cs.id, reviewer="rita")
    assert sqlite_store.graph_version() == 0
    assert sqlite_store.facts_about(SPIKE)[0].object == LONDON


def test_update_draft_keeps_old_base_and_adds_new_slots(sqlite_store: GraphStore) -> None:
    seed(sqlite_store)
    cs = curation.create_change_set(sqlite_store, "alice", "a", [_replace(LONDON, PHILLY)])
    updated = curation.update_draft(
        sqlite_store, cs.id, [_replace(LONDON, PHILLY), _replace(LONDON, PHILLY, MAX)], who="al"
    )
    assert {(b["subject"], b["relation"]) for b in updated.base} == {(SPIKE, "P19"), (MAX, "P19")}
    assert sqlite_store.get_change_set(cs.id).operations == updated.operations


@pytest.mark.parametrize(
    ("ops", "error", "match"),
    [
        ([], ValidationError, "at least one"),
        ([_op("add_fact", subject=SPIKE, relation="P19")], ValidationError, "missing"),
        ([_op("add_alias", entity=LONDON, alias="x", colour="red")], ValidationError, "unknown"),
        ([_op("add_fact", subject=SPIKE, relation="P404", object=LONDON)], NotFoundError, "P404"),
        ([_op("retract_fact", subject=SPIKE, relation="P19", object=PHILLY)], ValidationError,
         "not current"),
        ([_replace(LONDON, "ghost")], NotFoundError, "ghost"),
        ([_replace(LONDON, LONDON)], ValidationError, "equals"),
        ([_op("mark_forget", concept="c404")], NotFoundError, "c404"),
        ([_op("add_alias", entity=LONDON, alias="LDN")], ValidationError, "already has"),
        ([_op("add_alias", entity=LONDON, alias="bad\x00")], ValidationError, "control"),
        ([{"kind": "delete_everything", "payload": {}}], ValidationError, "not one of"),
    ],
)  # fmt: skip
def test_bad_change_sets_are_refused_and_store_nothing(
    sqlite_store: GraphStore, ops: list, error: type, match: str
) -> None:
    seed(sqlite_store)
    with pytest.raises(error, match=match):
        curation.create_change_set(sqlite_store, "alice", "bad", ops)
    assert sqlite_store.list_change_sets() == []
    assert sqlite_store.count_facts(status="current") == 2


def test_change_sets_need_author_and_reason(sqlite_store: GraphStore) -> None:
    seed(sqlite_store)
    with pytest.raises(ValidationError, match="why"):
        curation.create_change_set(sqlite_store, "alice", " ", [_replace(LONDON, PHILLY)])
    with pytest.raises(ValidationError, match="who"):
        curation.create_change_set(sqlite_store, "", "r", [_replace(LONDON, PHILLY)])
    cs = curation.create_change_set(sqlite_store, "alice", "r", [_replace(LONDON, PHILLY)])
    assert cs.author == "alice" and cs.reason == "r" and cs.created_at.tzinfo is not None


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.service)]
)
def test_concurrent_approvals_of_one_slot_serialise(backend: str, request, tmp_path) -> None:
    """Two reviewers approve conflicting change sets at once: one wins, one gets a conflict."""
    import threading
    import uuid

    from kg.store.sql import SqlGraphStore

    if backend == "sqlite":
        store = SqlGraphStore(f"sqlite:///{tmp_path / 'kg.sqlite'}")
    else:
        store = SqlGraphStore(
            request.getfixturevalue("pg_url"), schema=f"kg_c_{uuid.uuid4().hex[:10]}"
        )
    try:
        seed(store)
        store.add_entity(Entity("Q90", "Paris"))
        ids = []
        for new in (PHILLY, "Q90"):
            cs = curation.create_change_set(store, "alice", "race", [_replace(LONDON, new)])
            curation.propose(store, cs.id, who="alice")
            ids.append(cs.id)
        barrier = threading.Barrier(2)
        outcomes: dict[str, str] = {}

        def run(cs_id: str) -> None:
            barrier.wait()
            try:
                curation.approve(store, cs_id, reviewer="rita")
                outcomes[cs_id] = "approved"
            except ConflictError:
                outcomes[cs_id] = "conflict"
            except Exception as exc:  # recorded, so a failure names what went wrong
                outcomes[cs_id] = f"{type(exc).__name__}: {exc}"

        threads = [threading.Thread(target=run, args=(i,)) for i in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(outcomes.values()) == ["approved", "conflict"]
        assert store.graph_version() == 1
        assert len(store.facts_about(SPIKE)) == 1
    finally:
        if backend == "postgresql":
            store.drop_schema()
        store.close()
