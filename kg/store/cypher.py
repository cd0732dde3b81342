"""Cypher text of the Neo4j store: every statement is a constant, all values are parameters.

No statement is ever assembled from user data. Where a query has variants (direction of a
walk), each variant is its own constant and the store picks one by a fixed key.
"""

from __future__ import annotations

# -- schema: Neo4j 5 (constraints and named indexes) ------------------------------------------

NEO4J_SCHEMA = (
    "CREATE CONSTRAINT kg_entity_id IF NOT EXISTS FOR (n:Entity) REQUIRE n.id IS UNIQUE",
    "CREATE CONSTRAINT kg_relation_id IF NOT EXISTS FOR (n:Relation) REQUIRE n.id IS UNIQUE",
    "CREATE CONSTRAINT kg_concept_id IF NOT EXISTS FOR (n:Concept) REQUIRE n.id IS UNIQUE",
    "CREATE CONSTRAINT kg_change_set_id IF NOT EXISTS FOR (n:ChangeSet) REQUIRE n.id IS UNIQUE",
    "CREATE CONSTRAINT kg_counter_name IF NOT EXISTS FOR (n:KgCounter) REQUIRE n.name IS UNIQUE",
    "CREATE CONSTRAINT kg_vector_key IF NOT EXISTS FOR (n:Vector) REQUIRE n.key IS UNIQUE",
    "CREATE INDEX kg_entity_name_key IF NOT EXISTS FOR (n:Entity) ON (n.name_key)",
    "CREATE INDEX kg_alias_key IF NOT EXISTS FOR (n:Alias) ON (n.key)",
    "CREATE INDEX kg_alias_entity IF NOT EXISTS FOR (n:Alias) ON (n.entity_id)",
    "CREATE INDEX kg_concept_name_key IF NOT EXISTS FOR (n:Concept) ON (n.name_key)",
    "CREATE INDEX kg_log_id IF NOT EXISTS FOR (n:LogEntry) ON (n.id)",
    "CREATE INDEX kg_mark_concept IF NOT EXISTS FOR (n:ForgetMark) ON (n.concept_id)",
    "CREATE INDEX kg_fact_id IF NOT EXISTS FOR ()-[f:FACT]-() ON (f.id)",
    "CREATE INDEX kg_fact_rel IF NOT EXISTS FOR ()-[f:FACT]-() ON (f.rel)",
    "CREATE INDEX kg_fact_status IF NOT EXISTS FOR ()-[f:FACT]-() ON (f.status)",
)

# -- schema: FalkorDB (no constraints over Cypher, unnamed indexes, no IF NOT EXISTS) ----------
# (label, property, is_relationship) -> statement; created only when `db.indexes()` lacks it

FALKOR_INDEXES = {
    ("Entity", "id", False): "CREATE INDEX FOR (n:Entity) ON (n.id)",
    ("Entity", "name_key", False): "CREATE INDEX FOR (n:Entity) ON (n.name_key)",
    ("Relation", "id", False): "CREATE INDEX FOR (n:Relation) ON (n.id)",
    ("Concept", "id", False): "CREATE INDEX FOR (n:Concept) ON (n.id)",
    ("Concept", "name_key", False): "CREATE INDEX FOR (n:Concept) ON (n.name_key)",
    ("Alias", "key", False): "CREATE INDEX FOR (n:Alias) ON (n.key)",
    ("Alias", "entity_id", False): "CREATE INDEX FOR (n:Alias) ON (n.entity_id)",
    ("ChangeSet", "id", False): "CREATE INDEX FOR (n:ChangeSet) ON (n.id)",
    ("KgCounter", "name", False): "CREATE INDEX FOR (n:KgCounter) ON (n.name)",
    ("Vector", "key", False): "CREATE INDEX FOR (n:Vector) ON (n.key)",
    ("LogEntry", "id", False): "CREATE INDEX FOR (n:LogEntry) ON (n.id)",
    ("ForgetMark", "concept_id", False): "CREATE INDEX FOR (n:ForgetMark) ON (n.concept_id)",
    ("FACT", "id", True): "CREATE INDEX FOR ()-[f:FACT]-() ON (f.id)",
    ("FACT", "rel", True): "CREATE INDEX FOR ()-[f:FACT]-() ON (f.rel)",
}
LIST_INDEXES = "CALL db.indexes()"
SERVER_KIND = "CALL dbms.components() YIELD name RETURN name"

# -- counters ---------------------------------------------------------------------------------

NEXT_IDS = (
    "MERGE (c:KgCounter {name: $name}) ON CREATE SET c.value = 0 "
    "SET c.value = c.value + $n RETURN c.value AS last"
)
READ_COUNTER = "MATCH (c:KgCounter {name: $name}) RETURN c.value AS value"

# -- entities ---------------------------------------------------------------------------------

EXISTING_ENTITIES = "UNWIND $ids AS eid MATCH (e:Entity {id: eid}) RETURN e.id AS id"
CREATE_ENTITIES = (
    "UNWIND $rows AS row CREATE (:Entity {id: row.id, name: row.name, name_key: row.name_key, "
    "kind: row.kind, aliases: row.aliases})"
)
CREATE_ALIASES = (
    "UNWIND $rows AS row CREATE (:Alias {key: row.key, alias: row.alias, entity_id: row.entity_id})"
)
ENTITY_FIELDS = "e.id AS id, e.name AS name, e.kind AS kind, e.aliases AS aliases"
GET_ENTITIES = "UNWIND $ids AS eid MATCH (e:Entity {id: eid}) RETURN " + ENTITY_FIELDS
LIST_ENTITIES = (
    "MATCH (e:Entity) WHERE $kind IS NULL OR e.kind = $kind "
    "RETURN " + ENTITY_FIELDS + " ORDER BY e.id SKIP $offset LIMIT $limit"
)
FIND_BY_NAME = "MATCH (e:Entity {name_key: $key}) RETURN " + ENTITY_FIELDS
FIND_BY_ALIAS = (
    "MATCH (a:Alias {key: $key}) MATCH (e:Entity {id: a.entity_id}) RETURN " + ENTITY_FIELDS
)
SEARCH_BY_NAME = (
    "MATCH (e:Entity) WHERE e.name_key STARTS WITH $key OR e.name_key CONTAINS $word "
    "RETURN " + ENTITY_FIELDS + " ORDER BY e.id LIMIT $limit"
)
SEARCH_BY_ALIAS = (
    "MATCH (a:Alias) WHERE a.key STARTS WITH $key OR a.key CONTAINS $word "
    "WITH DISTINCT a.entity_id AS eid ORDER BY eid LIMIT $limit "
    "MATCH (e:Entity {id: eid}) RETURN " + ENTITY_FIELDS
)
SET_ALIASES = "MATCH (e:Entity {id: $id}) SET e.aliases = $aliases"
COUNT_ENTITIES = "MATCH (e:Entity) RETURN count(e) AS n"

# -- relations --------------------------------------------------------------------------------

EXISTING_RELATIONS = "UNWIND $ids AS rid MATCH (r:Relation {id: rid}) RETURN r.id AS id"
CREATE_RELATIONS = (
    "UNWIND $rows AS row CREATE (:Relation {id: row.id, label: row.label, "
    "templates: row.templates, functional: row.functional, equivalent_to: row.equivalent_to})"
)
APPEND_TEMPLATES = "MATCH (r:Relation {id: $id}) SET r.templates = r.templates + $part"
RELATION_FIELDS = (
    "r.id AS id, r.label AS label, r.templates AS templates, r.functional AS functional, "
    "r.equivalent_to AS equivalent_to"
)
GET_RELATIONS = "UNWIND $ids AS rid MATCH (r:Relation {id: rid}) RETURN " + RELATION_FIELDS
LIST_RELATIONS = "MATCH (r:Relation) RETURN " + RELATION_FIELDS + " ORDER BY r.id"
COUNT_RELATIONS = "MATCH (r:Relation) RETURN count(r) AS n"

# -- facts ------------------------------------------------------------------------------------

FACT_FIELDS = (
    "s.id AS s, f.rel AS r, o.id AS o, f.status AS status, f.source AS source, "
    "f.version AS version, f.meta AS meta, f.id AS fid"
)
CREATE_FACTS = (
    "UNWIND $rows AS row MATCH (s:Entity {id: row.s}) MATCH (o:Entity {id: row.o}) "
    "CREATE (s)-[:FACT {id: row.id, rel: row.r, status: row.status, source: row.source, "
    "version: row.version, meta: row.meta, skey: row.skey}]->(o)"
)
CURRENT_OF_SUBJECTS = (
    "UNWIND $ids AS sid MATCH (s:Entity {id: sid})-[f:FACT]->(o:Entity) "
    "WHERE f.status = 'current' RETURN " + FACT_FIELDS
)
ALL_OF_SUBJECTS = (
    "UNWIND $ids AS sid MATCH (s:Entity {id: sid})-[f:FACT]->(o:Entity) RETURN " + FACT_FIELDS
)
GET_FACT = "MATCH (s:Entity)-[f:FACT {id: $id}]->(o:Entity) RETURN " + FACT_FIELDS
LIST_FACTS = (
    "MATCH (s:Entity)-[f:FACT]->(o:Entity) "
    "WHERE ($status IS NULL OR f.status = $status) AND ($source IS NULL OR f.source = $source) "
    "RETURN " + FACT_FIELDS + " ORDER BY f.id SKIP $offset LIMIT $limit"
)
FACTS_WITH_OBJECT = (
    "MATCH (s:Entity)-[f:FACT]->(o:Entity {id: $id}) "
    "WHERE $status IS NULL OR f.status = $status RETURN " + FACT_FIELDS + " ORDER BY f.id"
)
FACTS_OF_RELATION = (
    "MATCH (s:Entity)-[f:FACT {rel: $rel}]->(o:Entity) "
    "WHERE $status IS NULL OR f.status = $status "
    "RETURN " + FACT_FIELDS + " ORDER BY f.id LIMIT $limit"
)
RETRACT_FACT = (
    "MATCH (s:Entity {id: $s})-[f:FACT {rel: $r}]->(o:Entity {id: $o}) "
    "WHERE f.status = 'current' SET f.status = 'retracted', f.version = f.version + 1 "
    "RETURN " + FACT_FIELDS
)
COUNT_FACTS = (
    "MATCH ()-[f:FACT]->() WHERE ($status IS NULL OR f.status = $status) "
    "AND ($source IS NULL OR f.source = $source) RETURN count(f) AS n"
)
COUNT_BY_SOURCE = (
    "MATCH ()-[f:FACT]->() WHERE $status IS NULL OR f.status = $status "
    "RETURN f.source AS source, count(f) AS n"
)
COUNT_BY_SUBJECT = (
    "MATCH (s:Entity)-[f:FACT]->() WHERE $status IS NULL OR f.status = $status "
    "RETURN s.id AS id, count(f) AS n"
)
_WALK_FILTER = (
    "WHERE f.status = 'current' AND ($allow IS NULL OR f.rel IN $allow) AND NOT f.rel IN $deny "
)
INCIDENT = {
    "out": (
        "UNWIND $ids AS eid MATCH (e:Entity {id: eid}) CALL { WITH e "
        "MATCH (e)-[f:FACT]->(o:Entity) " + _WALK_FILTER + "RETURN e AS s, f, o "
        "ORDER BY f.skey LIMIT $limit } RETURN " + FACT_FIELDS
    ),
    "in": (
        "UNWIND $ids AS eid MATCH (e:Entity {id: eid}) CALL { WITH e "
        "MATCH (s:Entity)-[f:FACT]->(e) " + _WALK_FILTER + "RETURN s, f, e AS o "
        "ORDER BY f.skey LIMIT $limit } RETURN " + FACT_FIELDS
    ),
}

# -- concepts and forget marks ----------------------------------------------------------------

CONCEPT_FIELDS = (
    "c.id AS id, c.name AS name, c.aliases AS aliases, c.redirect_to AS redirect_to, "
    "c.entities AS entities"
)
CREATE_CONCEPT = (
    "CREATE (:Concept {id: $id, name: $name, name_key: $name_key, aliases: $aliases, "
    "redirect_to: $redirect_to, entities: $entities})"
)
GET_CONCEPTS = "UNWIND $ids AS cid MATCH (c:Concept {id: cid}) RETURN " + CONCEPT_FIELDS
EXISTING_CONCEPTS = "UNWIND $ids AS cid MATCH (c:Concept {id: cid}) RETURN c.id AS id"
SET_CONCEPT_REDIRECT = "MATCH (c:Concept {id: $id}) SET c.redirect_to = $redirect_to"
LIST_CONCEPTS = "MATCH (c:Concept) RETURN " + CONCEPT_FIELDS + " ORDER BY c.id"
COUNT_CONCEPTS = "MATCH (c:Concept) RETURN count(c) AS n"
MARK_FIELDS = (
    "m.id AS id, m.concept_id AS concept_id, m.change_set_id AS change_set_id, "
    "m.who AS who, m.why AS why, m.at AS at"
)
CREATE_MARK = (
    "CREATE (m:ForgetMark {id: $id, concept_id: $concept_id, change_set_id: $change_set_id, "
    "who: $who, why: $why, at: $at}) RETURN " + MARK_FIELDS
)
LIST_MARKS = (
    "MATCH (m:ForgetMark) WHERE $concept_id IS NULL OR m.concept_id = $concept_id "
    "RETURN " + MARK_FIELDS + " ORDER BY m.id"
)

EXISTING = {
    "entity": EXISTING_ENTITIES,
    "relation": EXISTING_RELATIONS,
    "concept": EXISTING_CONCEPTS,
}
COUNT = {"entities": COUNT_ENTITIES, "relations": COUNT_RELATIONS, "concepts": COUNT_CONCEPTS}

# -- change sets ------------------------------------------------------------------------------

CHANGE_SET_FIELDS = (
    "c.id AS id, c.author AS author, c.reason AS reason, c.created_at AS created_at, "
    "c.state AS state, c.operations AS operations, c.base AS base, "
    "c.graph_version AS graph_version, c.reviewer AS reviewer, c.review_note AS review_note"
)
CREATE_CHANGE_SET = (
    "CREATE (c:ChangeSet {id: $id, seq: $seq, author: $author, reason: $reason, "
    "created_at: $created_at, state: $state, operations: $operations, base: $base, "
    "graph_version: $graph_version, reviewer: $reviewer, review_note: $review_note})"
)
UPDATE_CHANGE_SET = (
    "MATCH (c:ChangeSet {id: $id}) SET c.author = $author, c.reason = $reason, "
    "c.created_at = $created_at, c.state = $state, c.operations = $operations, c.base = $base, "
    "c.graph_version = $graph_version, c.reviewer = $reviewer, c.review_note = $review_note "
    "RETURN c.id AS id"
)
GET_CHANGE_SET = "MATCH (c:ChangeSet {id: $id}) RETURN " + CHANGE_SET_FIELDS
LIST_CHANGE_SETS = (
    "MATCH (c:ChangeSet) WHERE $state IS NULL OR c.state = $state "
    "RETURN " + CHANGE_SET_FIELDS + " ORDER BY c.seq, c.id SKIP $offset LIMIT $limit"
)

# -- vectors ----------------------------------------------------------------------------------

GET_VECTORS = "UNWIND $keys AS k MATCH (v:Vector {key: k}) RETURN v.key AS key, v.data AS data"
PUT_VECTORS = (
    "UNWIND $rows AS row MERGE (v:Vector {key: row.key}) SET v.data = row.data, v.dim = row.dim"
)

# -- change log -------------------------------------------------------------------------------

CREATE_LOG = (
    "CREATE (:LogEntry {id: $id, who: $who, why: $why, action: $action, payload: $payload, "
    "at: $at})"
)
LIST_LOG = (
    "MATCH (l:LogEntry) WHERE $action IS NULL OR l.action = $action "
    "RETURN l.id AS id, l.who AS who, l.why AS why, l.action AS action, l.payload AS payload, "
    "l.at AS at ORDER BY l.id LIMIT $limit"
)

# -- maintenance ------------------------------------------------------------------------------

KG_LABELS = (
    "Entity",
    "Alias",
    "Relation",
    "Concept",
    "ForgetMark",
    "ChangeSet",
    "KgCounter",
    "Vector",
    "LogEntry",
)
DELETE_SOME = {
    "Entity": "MATCH (n:Entity) WITH n LIMIT $n DETACH DELETE n RETURN count(*) AS gone",
    "Alias": "MATCH (n:Alias) WITH n LIMIT $n DETACH DELETE n RETURN count(*) AS gone",
    "Relation": "MATCH (n:Relation) WITH n LIMIT $n DETACH DELETE n RETURN count(*) AS gone",
    "Concept": "MATCH (n:Concept) WITH n LIMIT $n DETACH DELETE n RETURN count(*) AS gone",
    "ForgetMark": "MATCH (n:ForgetMark) WITH n LIMIT $n DETACH DELETE n RETURN count(*) AS gone",
    "ChangeSet": "MATCH (n:ChangeSet) WITH n LIMIT $n DETACH DELETE n RETURN count(*) AS gone",
    "KgCounter": "MATCH (n:KgCounter) WITH n LIMIT $n DETACH DELETE n RETURN count(*) AS gone",
    "Vector": "MATCH (n:Vector) WITH n LIMIT $n DETACH DELETE n RETURN count(*) AS gone",
    "LogEntry": "MATCH (n:LogEntry) WITH n LIMIT $n DETACH DELETE n RETURN count(*) AS gone",
}
