"""Cancelled queued jobs must not hold up a later job: N jobs queued then cancelled, then one
more job, then one worker on the model's queue.

Cancelling a queued job takes its message off the queue (`workers.jobs.withdraw`), so the
worker's first message is the later job's. Reported: the seconds to submit and to cancel
the N jobs, the messages left on the queue, and the wait of the later job (worker ready →
job claimed). The target is under 10 s for N = 10,000. Writes
bench/results/cancelled_queue.json.

    .venv/bin/python bench/cancelled_queue.py [--jobs 10000] [--broker embedded|redis]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REPO, machine, today, write_json
from bench.jobs_throughput import REDIS_URL, prepare


def run(n_jobs: int, broker: str | None, root: Path) -> dict:
    """Queue and cancel `n_jobs`, queue one more, start a worker, time the later job's wait."""
    from workers.db import reset_databases
    from workers.jobs import cancel_job, get_job, submit_job
    from workers.jobs.codec import to_plain
    from workers.ledger import register_model
    from workers.settings import get_settings

    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    os.environ.update({"KGEDIT_VAR_DIR": str(root / "var"), "KGEDIT_THREADS": "1"})
    for key in ("KGEDIT_BROKER_URL", "KGEDIT_RESULT_BACKEND"):
        os.environ.pop(key, None)
        if broker:
            os.environ[key] = broker
    get_settings.cache_clear()
    reset_databases()
    model_dir, graph_url, cases = prepare(root, 1)
    model = f"cancelled-{int(time.time())}"
    register_model(model, model_dir, graph_url=graph_url)
    payload = {
        "model": model,
        "method": "rome",
        "requests": [to_plain(cases[0])],
        "hparams": {"v_num_grad_steps": 5, "mom2_n_samples": 2000},
    }
    t0 = time.perf_counter()
    ids = [submit_job(payload).id for _ in range(n_jobs)]
    submit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for job_id in ids:
        cancel_job(job_id)
    cancel_s = time.perf_counter() - t0
    later = submit_job(payload).id
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    log_path = root / "worker.log"
    cmd = [sys.executable, "-m", "api.cli", "worker", "--model", model, "--loglevel", "info"]
    with log_path.open("ab") as log:
        worker = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        try:
            deadline = time.monotonic() + 180
            while "ready" not in log_path.read_text(errors="replace"):
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"worker did not start: {log_path.read_text()}")
                time.sleep(0.05)
            ready = time.perf_counter()
            while get_job(later).state == "queued":
                if time.perf_counter() - ready > 3600:
                    raise SystemExit("the later job was never claimed")
                time.sleep(0.05)
            wait_s = time.perf_counter() - ready
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    skipped = log_path.read_text(errors="replace").count("not run here")
    return {
        "cancelled_jobs": n_jobs,
        "submit_s": round(submit_s, 2),
        "cancel_s": round(cancel_s, 2),
        "later_job_wait_s": round(wait_s, 2),
        "dead_messages_skipped_by_worker": skipped,
    }


def main() -> None:
    """Run the benchmark and write its results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--broker", choices=("embedded", "redis"), default="embedded")
    args = parser.parse_args()
    broker = REDIS_URL if args.broker == "redis" else None
    result = run(args.jobs, broker, REPO / "var" / "bench-cancelled-queue")
    data = {"date": today(), "machine": machine(), "broker": args.broker, **result}
    print(data)
    write_json(f"cancelled_queue_{args.broker}", data)


if __name__ == "__main__":
    main()
