"""HTTP API throughput: a real uvicorn process on loopback, measured from client threads.

Builds a graph of `--facts` facts in a fresh SQLite store, creates API keys, starts
`uvicorn api.app:create_app --factory` as its own process, then for each scenario runs
`--clients` client threads (one keep-alive connection each) for `--seconds` and reports
requests per second and p50/p99 latency. Scenarios:

- `fact_read`: GET /v1/graph/facts/{id} of random facts (auditor key);
- `job_submit`: POST /v1/jobs with one small ROME edit (operator key); the jobs are only
  queued (no worker runs), so this measures the API and the job table, not editing.

Writes bench/results/api_throughput.json and the results-page block `api-throughput`.

    .venv/bin/python bench/api_throughput.py [--seconds 10] [--clients 8]
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from api.keys import KeyStore, Role
from bench.common import machine, today, update_results, write_json
from kg.store import open_store
from kg.types import Entity, Fact, Relation, RelationTemplates
from workers.settings import Settings


def build_graph(url: str, n_facts: int, seed: int = 0) -> list[int]:
    """Fill a graph store with `n_facts` random facts; return their ids."""
    store = open_store(url)
    n_entities = max(100, n_facts // 4)
    store.add_entities([Entity(f"e{i}", f"Entity {i}") for i in range(n_entities)])
    relations = [
        Relation(f"r{i}", f"relation {i}", RelationTemplates(cloze=(f"{{}} relates{i} to",)))
        for i in range(20)
    ]
    store.add_relations(relations)
    rng = random.Random(seed)
    triples = set()
    while len(triples) < n_facts:
        triples.add(
            (
                f"e{rng.randrange(n_entities)}",
                f"r{rng.randrange(20)}",
                f"e{rng.randrange(n_entities)}",
            )
        )
    store.add_facts([Fact(s, r, o, source="bench") for s, r, o in sorted(triples)])
    ids = [f.id for f in store.list_facts()]
    store.close()
    return ids


def free_port() -> int:
    """Return a free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(var_dir: Path, port: int) -> subprocess.Popen:
    """Start uvicorn serving the app on loopback; return once /healthz answers."""
    env = {**os.environ, "KGEDIT_VAR_DIR": str(var_dir), "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "api.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    proc = subprocess.Popen(cmd, env=env, cwd=Path(__file__).resolve().parents[1])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("uvicorn did not start within 60 s")


def load(make_request, clients: int, seconds: float) -> dict:
    """Run `make_request(client, rng)` from `clients` threads for `seconds`; return stats."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker(index: int) -> None:
        rng = random.Random(index)
        mine: list[float] = []
        bad = 0
        with httpx.Client(timeout=30) as client:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                ok = make_request(client, rng)
                mine.append(time.perf_counter() - t0)
                bad += 0 if ok else 1
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {
        "requests": len(latencies),
        "errors": errors[0],
        "rps": len(latencies) / elapsed,
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
    }


def main() -> None:
    """Run the scenarios and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--facts", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--no-results-page", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kgedit-api-bench-") as tmp:
        var = Path(tmp)
        ids = build_graph(f"sqlite:///{var / 'kg.sqlite'}", args.facts)
        keys = KeyStore(Settings(var_dir=var).metadata_db_url)
        auditor = keys.create("bench auditor", Role.AUDITOR)[0]
        operator = keys.create("bench operator", Role.OPERATOR)[0]
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(var, port)
        results = {}
        try:

            def read_fact(client: httpx.Client, rng: random.Random) -> bool:
                fid = ids[rng.randrange(len(ids))]
                r = client.get(f"{base}/v1/graph/facts/{fid}", headers={"X-API-Key": auditor})
                return r.status_code == 200

            results["fact_read"] = load(read_fact, args.clients, args.seconds)
            results.update(job_scenarios(base, operator, args, var))
        finally:
            server.terminate()
            server.wait(timeout=30)
    data = {
        "date": today(),
        "machine": machine(),
        "facts": args.facts,
        "clients": args.clients,
        "seconds": args.seconds,
        "server": "uvicorn, 1 process, loopback",
        "results": results,
    }
    path = write_json("api_throughput", data)
    print(f"wrote {path}")
    rows = [
        f"| {name} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} |"
        for name, r in results.items()
    ]
    table = "\n".join(
        [
            f"Measured {data['date']} on {data['machine']}: one uvicorn process, "
            f"{args.clients} client threads on the same machine, {args.seconds:.0f} s each, "
            f"{args.facts} facts in SQLite.",
            "",
            "| scenario | requests/s | p50 ms | p99 ms | errors |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )
    print(table)
    if not args.no_results_page:
        update_results("api-throughput", table)


def job_scenarios(base: str, operator: str, args, var: Path) -> dict:
    """Submit one-edit jobs (queued only: no worker runs); return the scenario's stats."""
    from workers.ledger import register_model

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "workers"))
    from jobs_helpers import save_random_gpt2

    model_dir = save_random_gpt2(var / "random-gpt2")
    register_model("bench", model_dir, settings=Settings(var_dir=var))
    counter = iter(range(10**9))
    lock = threading.Lock()

    def submit(client: httpx.Client, rng: random.Random) -> bool:
        with lock:
            n = next(counter)
        body = {
            "model": "bench",
            "method": "rome",
            "requests": [{"subject": f"Subject {n}", "prompt": "{} is in", "target_new": "Paris"}],
        }
        headers = {"X-API-Key": operator, "Idempotency-Key": f"bench-{n}"}
        return client.post(f"{base}/v1/jobs", json=body, headers=headers).status_code == 201

    return {"job_submit": load(submit, args.clients, args.seconds)}


if __name__ == "__main__":
    main()
