"""Validation rules of the kg data model."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kg.errors import DuplicateError, ImportFormatError, KGError, NotFoundError, ValidationError
from kg.types import (
    ChangeSet,
    ChangeSetState,
    Concept,
    Entity,
    Fact,
    FactStatus,
    Operation,
    OperationKind,
    Relation,
    RelationTemplates,
    name_key,
    slug,
)


def test_entity_keeps_fields_and_tuples_aliases() -> None:
    entity = Entity("Q84", "London", ["LDN"], "city")  # type: ignore[arg-type]
    assert entity.aliases == ("LDN",)
    assert entity.names() == ("London", "LDN")


@pytest.mark.parametrize("name", ["", "   ", "\t"])
def test_blank_names_are_rejected(name: str) -> None:
    with pytest.raises(ValidationError, match="empty"):
        Entity("Q1", name)


def test_oversized_name_is_rejected_with_its_length() -> None:
    with pytest.raises(ValidationError, match="513 characters"):
        Entity("Q1", "x" * 513)
    assert Entity("Q1", "x" * 512).name == "x" * 512


@pytest.mark.parametrize("ident", ["Q\x001", "Q1\n", "a\x7fb", ""])
def test_bad_ids_are_rejected(ident: str) -> None:
    with pytest.raises(ValueError):
        Entity(ident, "name")


def test_control_characters_in_alias_rejected() -> None:
    with pytest.raises(ValidationError, match="control"):
        Entity("Q1", "London", ("Lon\x00don",))


def test_errors_are_value_or_lookup_errors() -> None:
    assert issubclass(ValidationError, ValueError) and issubclass(ValidationError, KGError)
    assert issubclass(DuplicateError, KGError)
    missing = NotFoundError("entity", "Q9")
    assert isinstance(missing, LookupError) and str(missing) == "unknown entity id 'Q9'"
    error = ImportFormatError(7, "bad JSON")
    assert error.line_no == 7 and "line 7" in str(error)


@pytest.mark.parametrize("template", ["{} is {}", "no placeholder", "{0} was born in", "{}"])
def test_bad_templates_are_rejected(template: str) -> None:
    with pytest.raises(ValidationError):
        RelationTemplates(cloze=(template,))


def test_relation_needs_a_cloze_template_and_accepts_a_dict() -> None:
    with pytest.raises(ValidationError, match="cloze"):
        RelationTemplates(cloze=())
    relation = Relation("P19", "born in", {"cloze": ["{} was born in"], "question": []})
    assert relation.templates.cloze == ("{} was born in",)
    assert relation.templates.to_dict() == {
        "cloze": ["{} was born in"],
        "question": [],
        "reverse": [],
    }
    with pytest.raises(ValidationError, match="unknown template forms"):
        RelationTemplates.from_dict({"cloze": ["{} x"], "haiku": []})


def test_fact_status_is_checked() -> None:
    assert Fact("a", "r", "b").status is FactStatus.CURRENT
    assert Fact("a", "r", "b", status="retracted").status is FactStatus.RETRACTED
    with pytest.raises(ValidationError, match="status"):
        Fact("a", "r", "b", status="deleted")
    with pytest.raises(ValidationError, match="version"):
        Fact("a", "r", "b", version=0)


def test_concept_and_change_set() -> None:
    concept = Concept("c1", "Harry Potter", ("HP",), redirect_to="Q1")
    assert concept.aliases == ("HP",)
    change = ChangeSet(
        id="cs1",
        author="alice",
        reason="fix birthplace",
        created_at=datetime.now(UTC),
        operations=(
            Operation("replace_object", {"subject": "a", "relation": "r", "object": "b"}),
            {"kind": "mark_forget", "payload": {"concept": "c1"}},  # type: ignore[arg-type]
        ),
    )
    assert change.state is ChangeSetState.DRAFT
    assert [op.kind for op in change.operations] == [
        OperationKind.REPLACE_OBJECT,
        OperationKind.MARK_FORGET,
    ]
    with pytest.raises(ValidationError, match="operation kind"):
        Operation("drop_database")
    with pytest.raises(ValidationError, match="state"):
        ChangeSet("cs2", "bob", "why", datetime.now(UTC), state="merged")


def test_slug_and_name_key_are_stable() -> None:
    assert slug("Spike Hughes") == "spike_hughes"
    assert slug("Émile  Coué!") == "émile_coué"
    assert slug("!!!") == slug("!!!") and slug("!!!").startswith("x")
    assert name_key("  New   York ") == name_key("new york")
