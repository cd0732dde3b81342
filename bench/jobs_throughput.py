"""Job-system throughput: 200 small jobs queued at once, on the embedded broker and on Redis.

A small job is one ROME edit (5 v* steps) of a random 2-layer GPT-2 (hidden 32) whose
tokenizer and second-moment corpus come from the first EVOKE cases. One `kgedit worker`
(prefork, concurrency 1) serves the model's queue; the jobs are submitted in one burst
while it runs. Reported per broker:

* jobs per minute, from the first submission to the last job finishing;
* queue latency (submission → claimed by the worker), p50 and p99;
* dispatch gap (previous job finished → next job claimed: the broker's own overhead);
* proof that none was lost or duplicated: every job succeeded, was claimed exactly once
  (`attempts == 1`), went queued → planning → running → auditing → succeeded (each job
  carries its rewrite probe and a gate that only asks for it to be measured), and the ledger holds
  exactly one delta per job with 200 distinct request ids in one unbroken chain.

Writes bench/results/jobs_throughput.json and the results-page table between `jobs-throughput`
markers.

    .venv/bin/python bench/jobs_throughput.py [--jobs 200] [--brokers embedded,redis]
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REPO, machine, today, update_results, write_json

REDIS_URL = "redis://127.0.0.1:6379/12"


def percentile(values: list[float], q: float) -> float:
    """Return the q-quantile (0..1) with linear interpolation."""
    data = sorted(values)
    pos = q * (len(data) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def prepare(root: Path, n_jobs: int) -> tuple[Path, str, list]:
    """Build the graph, the random model and the edit requests under `root`."""
    from editor.knowledge.random_gpt2 import save_random_gpt2
    from editor.prepare import corpus_statements
    from kg.importers.evoke import evoke_cases
    from kg.store import open_store
    from workers.graph_models import build_evoke_graph, graph_facts
    from workers.settings import get_settings

    settings = get_settings()
    graph_url = f"sqlite:///{root / 'graph.sqlite'}"
    store = open_store(graph_url)
    build_evoke_graph(store, settings.evoke_main, settings.evoke_subj_spec, limit=120)
    model_dir = save_random_gpt2(root / "model", corpus_statements(graph_facts(store)), 2000)
    cases = evoke_cases(settings.evoke_main, settings.evoke_subj_spec, limit=120)
    if len(cases) < n_jobs:
        raise SystemExit(f"only {len(cases)} EVOKE cases for {n_jobs} jobs")
    return model_dir, graph_url, cases[:n_jobs]


def run_broker(name: str, broker: str | None, n_jobs: int, root: Path) -> dict:
    """Measure one broker: fresh databases, one worker, `n_jobs` jobs in one burst."""
    from workers.db import reset_databases
    from workers.jobs import get_job, list_jobs, submit_job
    from workers.jobs.codec import to_plain
    from workers.jobs.probes import rewrite_probe
    from workers.ledger import list_versions, register_model
    from workers.settings import get_settings

    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    os.environ["KGEDIT_VAR_DIR"] = str(root / "var")
    os.environ["KGEDIT_THREADS"] = "1"
    for key in ("KGEDIT_BROKER_URL", "KGEDIT_RESULT_BACKEND"):
        os.environ.pop(key, None)
    if broker:
        os.environ["KGEDIT_BROKER_URL"] = broker
        os.environ["KGEDIT_RESULT_BACKEND"] = broker
    get_settings.cache_clear()
    reset_databases()
    model_dir, graph_url, cases = prepare(root, n_jobs)
    model = f"bench-{name}-{int(time.time())}"
    register_model(model, model_dir, graph_url=graph_url)
    settings = get_settings()

    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    log = (root / "worker.log").open("ab")
    cmd = [sys.executable, "-m", "api.cli", "worker", "--model", model, "--loglevel", "info"]
    worker = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        deadline = time.monotonic() + 180
        while "ready" not in (root / "worker.log").read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"worker did not start: {(root / 'worker.log').read_text()}")
            time.sleep(0.2)
        hparams = {"v_num_grad_steps": 5, "mom2_n_samples": 2000}
        t0 = time.perf_counter()
        ids = []
        for i, case in enumerate(cases):
            payload = {
                "model": model,
                "method": "rome",
                "requests": [to_plain(case)],
                "hparams": hparams,
                # the queue is measured, not edit quality: the rewrite probe, always passing
                "probes": [to_plain(rewrite_probe(case))],
                "thresholds": [{"group": "rewrite", "min_after": 0.0}],
            }
            ids.append(submit_job(payload, idempotency_key=f"{model}-{i}").id)
        submit_s = time.perf_counter() - t0
        deadline = time.monotonic() + 3600
        while True:
            done = sum(j.done for j in list_jobs(model=model, limit=1000))
            print(f"\r{name}: {done}/{n_jobs} jobs done", end="", flush=True)
            if done == n_jobs:
                break
            if worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"worker died or timed out: {worker.returncode}")
            time.sleep(1.0)
        print()
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.close()

    jobs = [get_job(i, settings=settings) for i in ids]
    versions = [v for v in list_versions(model) if v.job_id is not None]
    states = Counter(j.state for j in jobs)
    paths = Counter(tuple(t.to_state for t in j.transitions) for j in jobs)
    requests = Counter(r for v in versions for r in v.request_ids)
    per_job = Counter(v.job_id for v in versions)
    chain_ok = all(v.on_head_chain for v in versions) and len({v.depth for v in versions}) == len(
        versions
    )
    latency = [(j.started_at - j.created_at).total_seconds() for j in jobs]
    service = [(j.finished_at - j.started_at).total_seconds() for j in jobs]
    ordered = sorted(jobs, key=lambda j: j.started_at)
    gaps = [
        (b.started_at - a.finished_at).total_seconds()
        for a, b in itertools.pairwise(ordered)
        if b.created_at <= a.finished_at
    ]
    span = (max(j.finished_at for j in jobs) - min(j.created_at for j in jobs)).total_seconds()
    result = {
        "broker": name,
        "url": settings.broker.split("@")[-1],
        "jobs": n_jobs,
        "submit_s": round(submit_s, 2),
        "span_s": round(span, 1),
        "jobs_per_min": round(60 * n_jobs / span, 1),
        "queue_latency_p50_s": round(percentile(latency, 0.5), 2),
        "queue_latency_p99_s": round(percentile(latency, 0.99), 2),
        "service_median_s": round(statistics.median(service), 3),
        "dispatch_gap_median_s": round(statistics.median(gaps), 3) if gaps else None,
        "dispatch_gap_p99_s": round(percentile(gaps, 0.99), 3) if gaps else None,
        "succeeded": states.get("succeeded", 0),
        "states": dict(states),
        "claimed_once": sum(j.attempts == 1 for j in jobs),
        "transition_paths": {" → ".join(k): v for k, v in paths.items()},
        "deltas": len(versions),
        "distinct_requests": len(requests),
        "duplicated_requests": sum(1 for c in requests.values() if c > 1),
        "jobs_with_one_delta": sum(1 for c in per_job.values() if c == 1),
        "unbroken_chain": chain_ok,
    }
    result["none_lost_or_duplicated"] = (
        result["succeeded"] == n_jobs
        and result["claimed_once"] == n_jobs
        and result["deltas"] == n_jobs
        and result["distinct_requests"] == n_jobs
        and result["jobs_with_one_delta"] == n_jobs
        and chain_ok
    )
    return result


def _table(results: list[dict], when: str, where: str) -> str:
    """Return the results-page block."""
    lines = [
        f"Measured {when} on {where}; {results[0]['jobs']} one-edit ROME jobs queued at once, "
        "one prefork worker (concurrency 1) on the model's queue.",
        "",
        "| broker | jobs/min | queue latency p50 | p99 | dispatch gap median | service median "
        "| succeeded | claimed once | deltas (distinct requests) | none lost or duplicated |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['broker']} | {r['jobs_per_min']} | {r['queue_latency_p50_s']} s "
            f"| {r['queue_latency_p99_s']} s | {r['dispatch_gap_median_s']} s "
            f"| {r['service_median_s']} s | {r['succeeded']}/{r['jobs']} "
            f"| {r['claimed_once']}/{r['jobs']} | {r['deltas']} ({r['distinct_requests']}) "
            f"| {'yes' if r['none_lost_or_duplicated'] else 'NO'} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Run the benchmark on each broker and write its JSON and results-page table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--brokers", default="embedded,redis")
    parser.add_argument("--no-results-page", action="store_true")
    args = parser.parse_args()
    urls = {"embedded": None, "redis": REDIS_URL}
    results = []
    for name in args.brokers.split(","):
        if name not in urls:
            raise SystemExit(f"unknown broker {name!r}; choose from {', '.join(urls)}")
        results.append(run_broker(name, urls[name], args.jobs, REPO / "var" / "bench-jobs" / name))
        print(results[-1])
    where = machine()
    write_json("jobs_throughput", {"date": today(), "machine": where, "results": results})
    if not args.no_results_page:
        update_results("jobs-throughput", _table(results, today(), where))
    if not all(r["none_lost_or_duplicated"] for r in results):
        raise SystemExit("a job was lost or duplicated")


if __name__ == "__main__":
    main()
