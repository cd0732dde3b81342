"""Graph routes: entities, relations, facts, concepts, search and neighbourhoods."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, status

from api.deps import READERS, CallerDep, StoreDep, roles
from api.keys import Role
from api.schemas.common import MAX_DB_ID, Page, page_of
from api.schemas.graph import (
    AliasCreate,
    ConceptCreate,
    ConceptPublic,
    ConceptRedirect,
    EdgePublic,
    EntityCreate,
    EntityPublic,
    FactCreate,
    FactPublic,
    NeighbourhoodPublic,
    NodePublic,
    RelationCreate,
    RelationPublic,
)
from kg.types import Concept, Entity, Fact, Relation, RelationTemplates

router = APIRouter(prefix="/v1/graph", tags=["graph"])
Limit = Annotated[int, Query(ge=1, le=500, description="page size")]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
MAX_NEIGHBOURHOOD_NODES = 500


@router.get("/entities", **roles(*READERS))
def list_entities(
    store: StoreDep,
    limit: Limit = 50,
    offset: Offset = 0,
    q: Annotated[
        str | None,
        Query(max_length=512, description="a partial name: the start of a word of a name or alias"),
    ] = None,
    match: Annotated[
        Literal["prefix", "exact"],
        Query(description="`exact`: only entities with `q` as a whole name or alias"),
    ] = "prefix",
) -> Page[EntityPublic]:
    """List entities by id, or those `q` finds (best match first; at most 1000 in all)."""
    if q is not None:
        found = store.find_entities(q) if match == "exact" else store.search_entities(q, 1000)
        return page_of(found, limit, offset, EntityPublic.of)
    items = store.list_entities(limit=limit, offset=offset)
    return Page(
        items=[EntityPublic.of(e) for e in items],
        total=store.count_entities(),
        limit=limit,
        offset=offset,
    )


@router.post("/entities", status_code=status.HTTP_201_CREATED, **roles(Role.CURATOR))
def create_entity(body: EntityCreate, store: StoreDep, caller: CallerDep) -> EntityPublic:
    """Create an entity."""
    entity = Entity(body.id, body.name, tuple(body.aliases), body.kind)
    return EntityPublic.of(store.add_entity(entity, who=caller.actor, why=body.reason))


@router.post("/entities/{entity_id:path}/aliases", **roles(Role.CURATOR))
def add_alias(
    entity_id: str, body: AliasCreate, store: StoreDep, caller: CallerDep
) -> EntityPublic:
    """Give an entity another name."""
    return EntityPublic.of(
        store.add_alias(entity_id, body.alias, who=caller.actor, why=body.reason)
    )


@router.get("/entities/{entity_id:path}/facts", **roles(*READERS))
def entity_facts(entity_id: str, store: StoreDep) -> list[FactPublic]:
    """Return the current facts whose subject is the entity."""
    return [FactPublic.of(f) for f in store.facts_about(entity_id)]


@router.get("/entities/{entity_id:path}/neighbourhood", **roles(*READERS))
def neighbourhood(
    entity_id: str, store: StoreDep, hops: Annotated[int, Query(ge=1, le=4)] = 1
) -> NeighbourhoodPublic:
    """Return the entities and current facts within `hops` of the entity (at most 500 nodes)."""
    store.get_entity(entity_id)
    depth = {entity_id: 0}
    edges: dict[Any, Fact] = {}
    frontier = [entity_id]
    truncated = False
    for hop in range(1, hops + 1):
        nxt: list[str] = []
        for node in frontier:
            for fact in [*store.facts_about(node), *store.facts_with_object(node)]:
                edges[fact.id if fact.id is not None else fact.triple] = fact
                for other in (fact.subject, fact.object):
                    if other in depth:
                        continue
                    if len(depth) >= MAX_NEIGHBOURHOOD_NODES:
                        truncated = True
                        continue
                    depth[other] = hop
                    nxt.append(other)
        frontier = nxt
    names = store.entity_names(depth)
    kept = [f for f in edges.values() if f.subject in depth and f.object in depth]
    return NeighbourhoodPublic(
        center=entity_id,
        hops=hops,
        nodes=[NodePublic(id=i, name=names.get(i, i), hops=h) for i, h in depth.items()],
        edges=[
            EdgePublic(fact_id=f.id, source=f.subject, relation=f.relation, target=f.object)
            for f in kept
        ],
        truncated=truncated,
    )


@router.get("/relations", **roles(*READERS))
def list_relations(store: StoreDep, limit: Limit = 50, offset: Offset = 0) -> Page[RelationPublic]:
    """List relations by id."""
    return page_of(store.list_relations(), limit, offset, RelationPublic.of)


@router.post("/relations", status_code=status.HTTP_201_CREATED, **roles(Role.CURATOR))
def create_relation(body: RelationCreate, store: StoreDep, caller: CallerDep) -> RelationPublic:
    """Create a relation with its templates."""
    templates = RelationTemplates.from_dict(body.templates.model_dump())
    relation = Relation(body.id, body.label, templates, body.functional, tuple(body.equivalent_to))
    return RelationPublic.of(store.add_relation(relation, who=caller.actor, why=body.reason))


@router.get("/relations/{relation_id:path}", **roles(*READERS))
def get_relation(relation_id: str, store: StoreDep) -> RelationPublic:
    """Return one relation."""
    return RelationPublic.of(store.get_relation(relation_id))


@router.get("/facts", **roles(*READERS))
def list_facts(
    store: StoreDep,
    limit: Limit = 50,
    offset: Offset = 0,
    status_: Annotated[str, Query(alias="status", pattern="^(current|retracted|all)$")] = "current",
) -> Page[FactPublic]:
    """List facts by id (current ones unless `status` says otherwise)."""
    wanted = None if status_ == "all" else status_
    facts = store.list_facts(wanted, limit=limit, offset=offset)
    return Page(
        items=[FactPublic.of(f) for f in facts],
        total=store.count_facts(status=wanted),
        limit=limit,
        offset=offset,
    )


@router.post("/facts", status_code=status.HTTP_201_CREATED, **roles(Role.CURATOR))
def create_fact(body: FactCreate, store: StoreDep, caller: CallerDep) -> FactPublic:
    """Add a fact between existing entities (the model follows only through a change set)."""
    fact = Fact(body.subject, body.relation, body.object, source=body.source)
    return FactPublic.of(store.add_fact(fact, who=caller.actor, why=body.reason))


@router.get("/facts/{fact_id}", **roles(*READERS))
def get_fact(fact_id: Annotated[int, Path(ge=1, le=MAX_DB_ID)], store: StoreDep) -> FactPublic:
    """Return one fact by id."""
    return FactPublic.of(store.get_fact(fact_id))


@router.delete("/facts/{fact_id}", **roles(Role.CURATOR))
def retract_fact(
    fact_id: Annotated[int, Path(ge=1, le=MAX_DB_ID)],
    store: StoreDep,
    caller: CallerDep,
    reason: Annotated[str, Query(min_length=1, max_length=2000)],
) -> FactPublic:
    """Retract a current fact (it stays in the history with status 'retracted')."""
    fact = store.get_fact(fact_id)
    retracted = store.retract_fact(
        fact.subject, fact.relation, fact.object, who=caller.actor, why=reason
    )
    return FactPublic.of(retracted)


@router.get("/concepts", **roles(*READERS))
def list_concepts(store: StoreDep, limit: Limit = 50, offset: Offset = 0) -> Page[ConceptPublic]:
    """List concepts by id."""
    return page_of(store.list_concepts(), limit, offset, ConceptPublic.of)


@router.post("/concepts", status_code=status.HTTP_201_CREATED, **roles(Role.CURATOR))
def create_concept(body: ConceptCreate, store: StoreDep, caller: CallerDep) -> ConceptPublic:
    """Create a concept."""
    concept = Concept(body.id, body.name, tuple(body.aliases), body.redirect_to)
    return ConceptPublic.of(store.add_concept(concept, who=caller.actor, why=body.reason))


@router.put("/concepts/{concept_id:path}/redirect", **roles(Role.CURATOR))
def set_concept_redirect(
    concept_id: str, body: ConceptRedirect, store: StoreDep, caller: CallerDep
) -> ConceptPublic:
    """Override a concept's redirect anchor (an entity id; null clears it); change-logged."""
    concept = store.set_concept_redirect(
        concept_id, body.redirect_to, who=caller.actor, why=body.reason
    )
    return ConceptPublic.of(concept)


@router.get("/concepts/{concept_id:path}", **roles(*READERS))
def get_concept(concept_id: str, store: StoreDep) -> ConceptPublic:
    """Return one concept."""
    return ConceptPublic.of(store.get_concept(concept_id))


@router.get("/entities/{entity_id:path}", **roles(*READERS))
def get_entity(entity_id: str, store: StoreDep) -> EntityPublic:
    """Return one entity (ids may hold '/'; this route is matched last for that reason)."""
    return EntityPublic.of(store.get_entity(entity_id))
