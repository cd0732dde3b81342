"""Bodies of the graph routes: entities, relations, facts, concepts and neighbourhoods."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import Reason, Strict
from kg.types import Concept, Entity, Fact, Relation

Name = Field(..., min_length=1, max_length=512)
Id = Field(..., min_length=1, max_length=512)


class EntityCreate(Strict):
    """A new entity."""

    id: str = Id
    name: str = Name
    aliases: list[str] = Field(default_factory=list, max_length=100)
    kind: str = Field("entity", min_length=1, max_length=512)
    reason: str = Reason


class EntityPublic(BaseModel):
    """An entity as the API shows it."""

    id: str
    name: str
    aliases: list[str]
    kind: str

    @classmethod
    def of(cls, e: Entity) -> EntityPublic:
        """Return the public view of an entity."""
        return cls(id=e.id, name=e.name, aliases=list(e.aliases), kind=e.kind)


class AliasCreate(Strict):
    """Another name for an entity."""

    alias: str = Name
    reason: str = Reason


class TemplatesBody(Strict):
    """Templates of a relation by form, each holding one `{}`."""

    cloze: list[str] = Field(..., min_length=1, max_length=50)
    question: list[str] = Field(default_factory=list, max_length=50)
    reverse: list[str] = Field(default_factory=list, max_length=50)


class RelationCreate(Strict):
    """A new relation."""

    id: str = Id
    label: str = Name
    templates: TemplatesBody
    functional: bool = False
    equivalent_to: list[str] = Field(default_factory=list, max_length=50)
    reason: str = Reason


class RelationPublic(BaseModel):
    """A relation as the API shows it."""

    id: str
    label: str
    templates: dict[str, list[str]]
    functional: bool
    equivalent_to: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, r: Relation) -> RelationPublic:
        """Return the public view of a relation."""
        return cls(
            id=r.id,
            label=r.label,
            templates=r.templates.to_dict(),
            functional=r.functional,
            equivalent_to=list(r.equivalent_to),
        )


class FactCreate(Strict):
    """A new fact between existing entities."""

    subject: str = Id
    relation: str = Id
    object: str = Id
    source: str = Field("api", max_length=200)
    reason: str = Reason


class FactPublic(BaseModel):
    """A fact as the API shows it."""

    id: int | None
    subject: str
    relation: str
    object: str
    status: str
    source: str
    version: int

    @classmethod
    def of(cls, f: Fact) -> FactPublic:
        """Return the public view of a fact."""
        return cls(
            id=f.id,
            subject=f.subject,
            relation=f.relation,
            object=f.object,
            status=str(getattr(f.status, "value", f.status)),
            source=f.source,
            version=f.version,
        )


class ConceptCreate(Strict):
    """A new concept (something that may later be forgotten)."""

    id: str = Id
    name: str = Name
    aliases: list[str] = Field(default_factory=list, max_length=100)
    redirect_to: str | None = Field(None, max_length=512)
    reason: str = Reason


class ConceptRedirect(Strict):
    """A curator's redirect anchor for a concept: an entity id, or null to clear it."""

    redirect_to: str | None = Field(..., max_length=512)
    reason: str = Reason


class ConceptPublic(BaseModel):
    """A concept as the API shows it."""

    id: str
    name: str
    aliases: list[str]
    redirect_to: str | None

    @classmethod
    def of(cls, c: Concept) -> ConceptPublic:
        """Return the public view of a concept."""
        return cls(id=c.id, name=c.name, aliases=list(c.aliases), redirect_to=c.redirect_to)


class NodePublic(BaseModel):
    """A node of a neighbourhood view."""

    id: str
    name: str
    hops: int


class EdgePublic(BaseModel):
    """An edge of a neighbourhood view."""

    fact_id: int | None
    source: str
    relation: str
    target: str


class NeighbourhoodPublic(BaseModel):
    """The entities and facts within k hops of a centre entity."""

    center: str
    hops: int
    nodes: list[NodePublic]
    edges: list[EdgePublic]
    truncated: bool
