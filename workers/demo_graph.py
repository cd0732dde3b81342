"""The demo's graph: EVOKE where the data is present, the project's synthetic world otherwise.

`demo_graph(settings)` opens (or fills) the demo's store and returns what the demo needs to
pick edits from graph facts: the facts in verbal form and candidate edits whose new objects
the graph teaches, so a model trained on the graph can say them. The demo then keeps the
edits the model knows (`workers.edit_run.select_known_edits`).
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.types import EditRequest, FactText
from kg.importers.evoke import EvokeImportSummary, evoke_cases
from kg.importers.synthetic import SyntheticImportSummary, import_synthetic
from kg.store import open_store
from kg.store.base import GraphStore
from workers.edit_run import speakable_edits
from workers.graph_edits import graph_edits
from workers.graph_models import build_evoke_graph, graph_facts
from workers.settings import Settings

EVOKE = "evoke"
SYNTHETIC = "synthetic"
DEMO_CASES = 100  # EVOKE cases per file: the subset the `small` preset learns in its budget
DEMO_PEOPLE = 300  # synthetic people: about as many facts (~1,400) as 100 EVOKE cases


@dataclass
class DemoGraph:
    """The demo's graph: where it came from, what the import added, facts and candidate edits."""

    store: GraphStore
    source: str  # EVOKE or SYNTHETIC
    summary: EvokeImportSummary | SyntheticImportSummary | None  # None: the store was filled
    facts: list[FactText]
    cases: list[EditRequest]

    def describe(self) -> str:
        """Return one line saying which graph this is and what the import added."""
        what = (
            "EVOKE"
            if self.source == EVOKE
            else "the synthetic world (no EVOKE under KGEDIT_DATA_DIR)"
        )
        if self.summary is None:
            return f"graph: {what}, {len(self.facts)} current facts in {self.store.url}"
        return (
            f"graph: imported {what}: {self.summary.facts} facts, {self.summary.entities} "
            f"entities into {self.store.url}"
        )


def demo_graph_url(
    settings: Settings, n_cases: int = DEMO_CASES, n_people: int = DEMO_PEOPLE, seed: int = 0
) -> str:
    """Return the demo graph's URL: `settings.graph_url`, else its own SQLite file."""
    if settings.graph_url:
        return settings.graph_url
    if not settings.has_data_set(EVOKE):
        return synthetic_url(settings, n_people, seed)
    path = settings.var_dir / "demo" / f"evoke-{n_cases}.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def synthetic_url(settings: Settings, n_people: int = DEMO_PEOPLE, seed: int = 0) -> str:
    """Return the URL of the synthetic world's own SQLite file under `var_dir/demo/`."""
    path = settings.var_dir / "demo" / f"synthetic-{n_people}-seed{seed}.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def synthetic_store(
    settings: Settings, n_people: int = DEMO_PEOPLE, seed: int = 0
) -> tuple[GraphStore, SyntheticImportSummary | None]:
    """Return the synthetic world's store (`synthetic_url`), importing it on first use."""
    store = open_store(synthetic_url(settings, n_people, seed))
    if store.count_facts() > 0:
        return store, None
    return store, import_synthetic(store, n_people=n_people, seed=seed)


def demo_graph(
    settings: Settings, n_cases: int = DEMO_CASES, n_people: int = DEMO_PEOPLE, seed: int = 0
) -> DemoGraph:
    """Return the demo's graph: EVOKE (first `n_cases` per file) when present, else synthetic.

    The store is `settings.graph_url` when set, else a SQLite file per graph under
    `var_dir/demo/`; a store that already holds facts is used as it is.
    """
    source = EVOKE if settings.has_data_set(EVOKE) else SYNTHETIC
    store = open_store(demo_graph_url(settings, n_cases, n_people, seed))
    summary: EvokeImportSummary | SyntheticImportSummary | None = None
    if source == EVOKE:
        summary = build_evoke_graph(
            store, settings.evoke_main, settings.evoke_subj_spec, limit=n_cases
        )
        facts = graph_facts(store)
        cases = evoke_cases(settings.evoke_main, settings.evoke_subj_spec, n_cases)
        cases = speakable_edits(cases, facts)
    else:
        if store.count_facts() == 0:
            summary = import_synthetic(store, n_people=n_people, seed=seed)
        facts = graph_facts(store)
        cases = graph_edits(facts, seed=seed, distinct_subjects=True)
    return DemoGraph(store, source, summary, facts, cases)
