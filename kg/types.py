"""Data model of the knowledge graph: entities, relations, facts, concepts, change sets.

Plain frozen dataclasses; each checks its own fields on construction and raises
`kg.errors.ValidationError` (a `ValueError`) with a message naming the field.
Templates follow the CounterFact convention of `contracts.types`: one `{}` placeholder,
and the answer follows the end of the template.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from kg.errors import ValidationError

MAX_NAME_LEN = 512
MAX_ID_LEN = 512
PLACEHOLDER = "{}"


def _has_control(value: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in value)


def _check_text(value: object, what: str, max_len: int, blank: str) -> str:
    """Return `value` if it is a non-blank string of at most `max_len` characters, no controls."""
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ValidationError(f"{what} must not be {blank}")
    if len(value) > max_len:
        raise ValidationError(f"{what} is {len(value)} characters long (max {max_len})")
    if _has_control(value):
        raise ValidationError(f"{what} {value[:60]!r} contains control characters")
    return value


def check_id(value: object, what: str = "id") -> str:
    """Return `value` if it is a usable id (non-empty, short, no control characters)."""
    value = _check_text(value, what, MAX_ID_LEN, "empty")
    if value != value.strip():
        raise ValidationError(f"{what} {value!r} has leading or trailing whitespace")
    return value


def check_name(value: object, what: str = "name") -> str:
    """Return `value` if it is a usable display name (non-blank, short, no control chars)."""
    return _check_text(value, what, MAX_NAME_LEN, "empty or whitespace")


def check_template(value: object, what: str = "template") -> str:
    """Return `value` if it holds exactly one `{}` and no other braces."""
    check_name(value, what)
    assert isinstance(value, str)
    if value.count(PLACEHOLDER) != 1:
        raise ValidationError(f"{what} {value!r} must hold exactly one '{{}}'")
    rest = value.replace(PLACEHOLDER, "")
    if "{" in rest or "}" in rest:
        raise ValidationError(f"{what} {value!r} holds a brace besides the '{{}}' placeholder")
    if not rest.strip():
        raise ValidationError(f"{what} {value!r} holds nothing but the placeholder")
    return value


def name_key(name: str) -> str:
    """Return the lookup key of a name: case-folded, inner whitespace collapsed."""
    return " ".join(name.casefold().split())


def fill(template: str, text: str) -> str:
    """Return `template` with its `{}` replaced by `text` (braces in `text` stay literal)."""
    return template.replace(PLACEHOLDER, text, 1)


def slug(text: str, max_len: int = 200) -> str:
    """Return a stable id fragment of `text`: case-folded words joined by `_`."""
    words: list[str] = []
    current: list[str] = []
    for ch in text.casefold():
        if ch.isalnum():
            current.append(ch)
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    out = "_".join(words)[:max_len].rstrip("_")
    return out or "x" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def _str_tuple(values: Iterable[str] | None, what: str) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        raise ValidationError(f"{what} must be a list of strings, not a string")
    return tuple(values)


def _store_checked(
    item: object, field: str, check: Callable[[object, str], str], what: str, many: str = ""
) -> None:
    """Store the frozen `item`'s `field` as a tuple of strings, each passed by `check(v, what)`."""
    values = _str_tuple(getattr(item, field), many or field)
    for value in values:
        check(value, what)
    object.__setattr__(item, field, values)


def _check_named(item: Entity | Concept, what: str) -> None:
    """Check the id, name and aliases of a frozen `item`, storing its aliases as a tuple."""
    check_id(item.id, f"{what} id")
    check_name(item.name, f"name of {what} {item.id!r}")
    _store_checked(item, "aliases", check_name, f"alias of {what} {item.id!r}")


class FactStatus(StrEnum):
    """Life-cycle state of a fact."""

    CURRENT = "current"
    RETRACTED = "retracted"
    PROPOSED = "proposed"


_STATUSES = {status.value: status for status in FactStatus}


class TemplateForm(StrEnum):
    """Verbal forms a relation has templates for."""

    CLOZE = "cloze"
    QUESTION = "question"
    REVERSE = "reverse"


@dataclass(frozen=True)
class Entity:
    """A node of the graph: a stable id, a display name, other names, and a kind."""

    id: str
    name: str
    aliases: tuple[str, ...] = ()
    kind: str = "entity"

    def __post_init__(self) -> None:
        _check_named(self, "entity")
        check_id(self.kind, f"kind of entity {self.id!r}")

    def names(self) -> tuple[str, ...]:
        """Return the name followed by the aliases."""
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class RelationTemplates:
    """Templates of a relation by form; `reverse` templates hold the object in `{}`."""

    cloze: tuple[str, ...]
    question: tuple[str, ...] = ()
    reverse: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for form in TemplateForm:
            what = f"{form.value} template"
            _store_checked(self, form.value, check_template, what, many=f"{what}s")
        if not self.cloze:
            raise ValidationError("a relation needs at least one cloze template")

    def of(self, form: TemplateForm | str) -> tuple[str, ...]:
        """Return the templates of one form."""
        return tuple(getattr(self, TemplateForm(form).value))

    def to_dict(self) -> dict[str, list[str]]:
        """Return the templates as a JSON-ready dict."""
        return {form.value: list(self.of(form)) for form in TemplateForm}

    @classmethod
    def from_dict(cls, data: Mapping[str, Iterable[str]]) -> RelationTemplates:
        """Build templates from a dict of form -> list of templates."""
        unknown = set(data) - {form.value for form in TemplateForm}
        if unknown:
            raise ValidationError(f"unknown template forms: {sorted(unknown)}")
        return cls(**{key: tuple(value) for key, value in data.items()})


@dataclass(frozen=True)
class Relation:
    """A labelled edge type with its verbal templates; `functional` = one object per subject.

    `equivalent_to`: ids of relations that state the same fact in other words (a question
    asked differently); audits do not count them as the subject's other facts.
    """

    id: str
    label: str
    templates: RelationTemplates
    functional: bool = False
    equivalent_to: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_id(self.id, "relation id")
        check_name(self.label, f"label of relation {self.id!r}")
        if isinstance(self.templates, Mapping):
            object.__setattr__(self, "templates", RelationTemplates.from_dict(self.templates))
        if not isinstance(self.templates, RelationTemplates):
            raise ValidationError(f"templates of relation {self.id!r} must be RelationTemplates")
        if isinstance(self.equivalent_to, str) or not isinstance(self.equivalent_to, Iterable):
            raise ValidationError(f"equivalent_to of relation {self.id!r} must be a list of ids")
        others = tuple(dict.fromkeys(self.equivalent_to))
        for other in others:
            check_id(other, f"equivalent relation of {self.id!r}")
        if self.id in others:
            raise ValidationError(f"relation {self.id!r} cannot be equivalent to itself")
        object.__setattr__(self, "equivalent_to", others)


@dataclass(frozen=True)
class Fact:
    """A (subject, relation, object) triple of entity/relation ids with its status and origin."""

    subject: str
    relation: str
    object: str
    status: FactStatus | str = FactStatus.CURRENT
    source: str = ""
    version: int = 1
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    id: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        check_id(self.subject, "fact subject id")
        check_id(self.relation, "fact relation id")
        check_id(self.object, "fact object id")
        try:
            object.__setattr__(self, "status", FactStatus(self.status))
        except ValueError:
            allowed = ", ".join(s.value for s in FactStatus)
            raise ValidationError(f"fact status {self.status!r} is not one of: {allowed}") from None
        if len(self.source) > MAX_NAME_LEN or _has_control(self.source):
            raise ValidationError(f"fact source {self.source[:60]!r} is too long or has controls")
        if not isinstance(self.version, int) or self.version < 1:
            raise ValidationError(f"fact version must be a positive integer, got {self.version!r}")

    @property
    def triple(self) -> tuple[str, str, str]:
        """Return (subject, relation, object)."""
        return (self.subject, self.relation, self.object)

    @classmethod
    def trusted(
        cls,
        subject: str,
        relation: str,
        obj: str,
        status: str,
        source: str,
        version: int,
        meta: dict[str, Any],
        fact_id: int | None,
    ) -> Fact:
        """Build a fact read back from a store without re-checking its fields (fast path)."""
        fact = object.__new__(cls)
        for name, value in (
            ("subject", subject),
            ("relation", relation),
            ("object", obj),
            ("status", _STATUSES[status]),
            ("source", source),
            ("version", version),
            ("meta", meta),
            ("id", fact_id),
        ):
            object.__setattr__(fact, name, value)
        return fact


@dataclass(frozen=True)
class Concept:
    """Something a curator may ask the model to forget, optionally redirected to another id.

    `entities` are the graph entities the concept stands for; the facts it covers are their
    current facts (`kg.concepts.concept_facts`). Empty: the entities named by its name or an
    alias. `redirect_to` is the redirect anchor, an entity id (`kg.concepts.suggest_anchor`).
    """

    id: str
    name: str
    aliases: tuple[str, ...] = ()
    redirect_to: str | None = None
    entities: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_named(self, "concept")
        if self.redirect_to is not None:
            check_id(self.redirect_to, f"redirect of concept {self.id!r}")
        _store_checked(self, "entities", check_id, f"entity of concept {self.id!r}")


class OperationKind(StrEnum):
    """Graph operations a change set may hold."""

    ADD_FACT = "add_fact"
    RETRACT_FACT = "retract_fact"
    REPLACE_OBJECT = "replace_object"
    ADD_CONCEPT = "add_concept"
    MARK_FORGET = "mark_forget"
    ADD_ALIAS = "add_alias"


class ChangeSetState(StrEnum):
    """Review state of a change set."""

    DRAFT = "draft"
    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Operation:
    """One graph operation of a change set: its kind and a JSON-ready payload."""

    kind: OperationKind | str
    payload: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", OperationKind(self.kind))
        except ValueError:
            allowed = ", ".join(k.value for k in OperationKind)
            raise ValidationError(
                f"operation kind {self.kind!r} is not one of: {allowed}"
            ) from None


@dataclass(frozen=True)
class ChangeSet:
    """A curator's batch of graph operations with who, when, why and its review state."""

    id: str
    author: str
    reason: str
    created_at: datetime
    operations: tuple[Operation, ...] = ()
    state: ChangeSetState | str = ChangeSetState.DRAFT
    # curation bookkeeping (kg.curation): the slots the operations were based on, the graph
    # version an approval produced, and who reviewed it with which note
    base: tuple[dict[str, Any], ...] = field(default=(), compare=False, hash=False)
    graph_version: int | None = None
    reviewer: str | None = None
    review_note: str = ""

    def __post_init__(self) -> None:
        check_id(self.id, "change set id")
        check_name(self.author, "change set author")
        check_name(self.reason, "change set reason")
        if isinstance(self.operations, str | Mapping):
            raise ValidationError("change set operations must be a list of operations")
        ops = tuple(op if isinstance(op, Operation) else Operation(**op) for op in self.operations)
        object.__setattr__(self, "operations", ops)
        try:
            object.__setattr__(self, "state", ChangeSetState(self.state))
        except ValueError:
            allowed = ", ".join(s.value for s in ChangeSetState)
            raise ValidationError(
                f"change set state {self.state!r} is not one of: {allowed}"
            ) from None
        object.__setattr__(self, "base", tuple(dict(slot) for slot in self.base))


@dataclass(frozen=True)
class ChangeLogEntry:
    """One row of the change log: who did what, when and why."""

    who: str
    when: datetime
    why: str
    action: str
    payload: dict[str, Any] = field(default_factory=dict, hash=False)
    id: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ForgetMark:
    """A concept marked to be forgotten by the model, by which change set, who and why."""

    concept_id: str
    change_set_id: str | None
    who: str
    when: datetime
    why: str
    id: int | None = field(default=None, compare=False)
