"""A synthetic world written by this project: people, places and organisations, from a seed.

The graph needs no download: `import_synthetic(store, n_people, seed)` builds the same world
for the same arguments on every machine. Names are made of syllables (no real people); each
relation has several cloze templates, questions and, where the types allow, a reverse
question. Every relation is functional (one object per subject), and the relations compose
into multi-hop chains, e.g. person -born_in-> city -located_in-> country -capital-> city or
-official_language-> language.

World size: one country per 25 people (at least 3), 4 cities per country (the first is the
capital), one organisation per 8 people (at least 4), one language per country.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import count

from kg.store.base import GraphStore
from kg.types import Entity, Fact, Relation, RelationTemplates

SOURCE = "synthetic"
CITIES_PER_COUNTRY = 4
PEOPLE_PER_COUNTRY = 25
PEOPLE_PER_ORGANISATION = 8
CITIZEN_OF_BIRTH_COUNTRY = 0.8  # the share of people who are citizens where they were born
LIVE_WHERE_BORN = 0.3  # the share of people who live in their city of birth
MAX_PEOPLE = 100_000

_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr")
_ONSETS += ("kr", "tr", "st", "th", "sh", "ch", "gl", "pl")
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "ai", "ou")
_CODAS = ("", "", "", "", "n", "r", "l", "s", "m")
_COUNTRY_ENDINGS = ("ia", "land", "ar", "ova", "ania", "esh")
_LANGUAGE_ENDINGS = ("ish", "ese", "ian", "ic")
_ORGANISATION_KINDS = ("Industries", "Labs", "Group", "Works", "Bank", "Press", "Systems")


def _relation(
    rel_id: str,
    label: str,
    cloze: tuple[str, ...],
    question: tuple[str, ...],
    reverse: tuple[str, ...] = (),
) -> Relation:
    """Return a functional relation with its templates."""
    return Relation(rel_id, label, RelationTemplates(cloze, question, reverse), functional=True)


# (subject kind, object kind) of each relation, and its templates. Cloze templates put the
# object at the end; questions with "What/Who is the … of {}?" give the relation a noun
# phrase, so it can be an inner hop of a composed multi-hop prompt (`kg.chains`).
RELATION_KINDS: dict[str, tuple[str, str]] = {
    "born_in": ("person", "city"),
    "lives_in": ("person", "city"),
    "citizen_of": ("person", "country"),
    "works_for": ("person", "organisation"),
    "headquartered_in": ("organisation", "city"),
    "founded_by": ("organisation", "person"),
    "located_in": ("city", "country"),
    "capital": ("country", "city"),
    "official_language": ("country", "language"),
}

RELATIONS: tuple[Relation, ...] = (
    _relation(
        "born_in",
        "place of birth",
        ("{} was born in", "The birthplace of {} is", "{} was born in the city of"),
        ("What is the birthplace of {}?", "Where was {} born?"),
        ("{} is the birthplace of",),
    ),
    _relation(
        "lives_in",
        "residence",
        ("{} lives in", "The home town of {} is", "{} has made a home in"),
        ("What is the home town of {}?", "Where does {} live?"),
    ),
    _relation(
        "citizen_of",
        "country of citizenship",
        ("{} is a citizen of", "The country of citizenship of {} is", "{} holds a passport of"),
        ("What is the country of citizenship of {}?", "Which country is {} a citizen of?"),
    ),
    _relation(
        "works_for",
        "employer",
        ("{} works for", "The employer of {} is", "{} is employed by"),
        ("Who is the employer of {}?", "Which organisation does {} work for?"),
        ("{} employs",),
    ),
    _relation(
        "headquartered_in",
        "headquarters location",
        ("{} is headquartered in", "The headquarters city of {} is", "{} has its head office in"),
        ("What is the headquarters city of {}?", "Where is {} headquartered?"),
        ("{} is home to the headquarters of",),
    ),
    _relation(
        "founded_by",
        "founder",
        ("{} was founded by", "The founder of {} is", "{} was set up by"),
        ("Who is the founder of {}?", "Who founded {}?"),
        ("{} founded",),
    ),
    _relation(
        "located_in",
        "country",
        ("{} is located in", "The country of {} is", "{} is a city in"),
        ("What is the country of {}?", "Which country is {} in?"),
    ),
    _relation(
        "capital",
        "capital",
        ("The capital of {} is", "{} has its capital in", "The seat of government of {} is"),
        ("What is the capital of {}?", "Which city is the capital of {}?"),
        ("{} is the capital of",),
    ),
    _relation(
        "official_language",
        "official language",
        ("The official language of {} is", "{} has the official language", "In {} people speak"),
        ("What is the official language of {}?", "Which language is spoken in {}?"),
        ("{} is the official language of",),
    ),
)


@dataclass
class SyntheticImportSummary:
    """What a synthetic import built and added."""

    seed: int
    n_people: int
    entities_by_kind: dict[str, int] = field(default_factory=dict)
    relations: int = 0
    facts_by_relation: dict[str, int] = field(default_factory=dict)
    added: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def entities(self) -> int:
        """Return the number of entities built."""
        return sum(self.entities_by_kind.values())

    @property
    def facts(self) -> int:
        """Return the number of facts built."""
        return sum(self.facts_by_relation.values())


@dataclass(frozen=True)
class SyntheticWorld:
    """The entities and facts of one synthetic world (relations are `RELATIONS`)."""

    entities: tuple[Entity, ...]
    facts: tuple[Fact, ...]


class _Names:
    """Pronounceable made-up names, each used once."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def word(self, syllables: int) -> str:
        """Return a capitalised word of `syllables` syllables."""
        parts = [
            self.rng.choice(_ONSETS) + self.rng.choice(_VOWELS) + self.rng.choice(_CODAS)
            for _ in range(syllables)
        ]
        return "".join(parts).capitalize()

    def unique(self, make) -> str:
        """Return the first name `make()` gives that no entity has yet."""
        for _ in range(10_000):
            name = make()
            if name not in self.used:
                self.used.add(name)
                return name
        raise RuntimeError("ran out of unique synthetic names")  # pragma: no cover

    def person(self) -> str:
        """Return a given name and a family name."""
        return self.unique(
            lambda: f"{self.word(self.rng.randint(1, 2))} {self.word(self.rng.randint(2, 3))}"
        )

    def place(self) -> str:
        """Return a city name."""
        return self.unique(lambda: self.word(self.rng.randint(2, 3)))

    def country(self) -> str:
        """Return a country name."""
        return self.unique(lambda: self.word(2) + self.rng.choice(_COUNTRY_ENDINGS))

    def language(self, country: str) -> str:
        """Return the language named after a country's stem."""
        stem = country[:-1] if country[-1] in "aeiou" else country
        return self.unique(
            lambda: stem[: self.rng.randint(3, 5)] + self.rng.choice(_LANGUAGE_ENDINGS)
        )

    def organisation(self) -> str:
        """Return an organisation name."""
        return self.unique(
            lambda: f"{self.word(self.rng.randint(2, 3))} {self.rng.choice(_ORGANISATION_KINDS)}"
        )


def build_world(n_people: int = 200, seed: int = 0) -> SyntheticWorld:
    """Return the synthetic world of `n_people` people for `seed` (same arguments, same world)."""
    if (
        not isinstance(n_people, int)
        or isinstance(n_people, bool)
        or not 1 <= n_people <= MAX_PEOPLE
    ):
        raise ValueError(f"n_people must be an integer in 1..{MAX_PEOPLE}, got {n_people!r}")
    rng = random.Random(f"kgedit-synthetic-{seed}")
    names = _Names(rng)
    entities: list[Entity] = []
    facts: list[Fact] = []
    serial = count()

    def entity(kind: str, name: str) -> str:
        entity_id = f"syn:{kind}:{next(serial)}"
        entities.append(Entity(entity_id, name, kind=kind))
        return entity_id

    def fact(subject: str, relation: str, obj: str) -> None:
        facts.append(Fact(subject, relation, obj, source=SOURCE))

    countries, cities_of = [], {}
    for _ in range(max(3, n_people // PEOPLE_PER_COUNTRY)):
        country_name = names.country()
        country = entity("country", country_name)
        countries.append(country)
        fact(country, "official_language", entity("language", names.language(country_name)))
        cities_of[country] = [entity("city", names.place()) for _ in range(CITIES_PER_COUNTRY)]
        for city in cities_of[country]:
            fact(city, "located_in", country)
        fact(country, "capital", cities_of[country][0])
    all_cities = [city for country in countries for city in cities_of[country]]

    people = [entity("person", names.person()) for _ in range(n_people)]
    organisations = [
        entity("organisation", names.organisation())
        for _ in range(max(4, n_people // PEOPLE_PER_ORGANISATION))
    ]
    founders = rng.sample(people, min(len(people), len(organisations)))
    for i, organisation in enumerate(organisations):
        fact(organisation, "headquartered_in", rng.choice(all_cities))
        fact(organisation, "founded_by", founders[i % len(founders)])
    for person in people:
        birth_country = rng.choice(countries)
        birth_city = rng.choice(cities_of[birth_country])
        fact(person, "born_in", birth_city)
        home = birth_city if rng.random() < LIVE_WHERE_BORN else rng.choice(all_cities)
        fact(person, "lives_in", home)
        citizen = birth_country
        if rng.random() >= CITIZEN_OF_BIRTH_COUNTRY:
            citizen = rng.choice(countries)
        fact(person, "citizen_of", citizen)
        fact(person, "works_for", rng.choice(organisations))
    return SyntheticWorld(tuple(entities), tuple(facts))


def import_synthetic(
    store: GraphStore,
    n_people: int = 200,
    seed: int = 0,
    who: str = "system",
    why: str = "import the synthetic world",
) -> SyntheticImportSummary:
    """Write the synthetic world into `store` in one transaction; return what was added."""
    started = time.perf_counter()
    world = build_world(n_people, seed)
    with store.transaction():
        added_relations = store.add_relations(RELATIONS, who, why, skip_existing=True)
        added_entities = store.add_entities(world.entities, who, why, skip_existing=True)
        added_facts = store.add_facts(world.facts, who, why, skip_duplicates=True)
        store.log(who, why, "import_synthetic", {"n_people": n_people, "seed": seed})
    return SyntheticImportSummary(
        seed=seed,
        n_people=n_people,
        entities_by_kind=dict(sorted(Counter(e.kind for e in world.entities).items())),
        relations=len(RELATIONS),
        facts_by_relation=dict(sorted(Counter(f.relation for f in world.facts).items())),
        added={"entities": added_entities, "relations": added_relations, "facts": added_facts},
        seconds=time.perf_counter() - started,
    )
