"""CLI latency: wall time of the commands that touch no weights, each in a fresh process.

Times `kgedit models list`, `kgedit jobs list` and `kgedit keys list` (`python -m api.cli`)
against an embedded metadata database in a temporary var directory: one warm-up run per
command (it creates the tables), then `--runs` timed runs; reports the median, the fastest
and the slowest, and whether the process imported torch (`python -X importtime`).
`--repo DIR` times another checkout of kgedit the same way (for a before/after).

Writes bench/results/cli_latency.json and the results-page block between `cli-latency`
markers (docs/results/cli-latency.md).

    .venv/bin/python bench/cli_latency.py [--runs 7] [--repo DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REPO, machine, today, update_results, write_json

COMMANDS = (("models", "list"), ("jobs", "list"), ("keys", "list"))
BUDGET_S = 2.0


def _env(repo: Path, var_dir: Path) -> dict[str, str]:
    """Return the environment of a timed run: the repository on the path, a fresh var dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGEDIT_")}
    env.update(PYTHONPATH=str(repo), KGEDIT_VAR_DIR=str(var_dir), PYTHONDONTWRITEBYTECODE="1")
    return env


def _run(repo: Path, env: dict[str, str], args: tuple[str, ...], *flags: str) -> tuple[float, str]:
    """Run `python [flags] -m api.cli ARGS` once; return (seconds, stderr)."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, *flags, "-m", "api.cli", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"kgedit {' '.join(args)} failed: {out.stderr[-2000:]}")
    return seconds, out.stderr


def imports_torch(importtime_stderr: str) -> bool:
    """Return whether a `python -X importtime` log shows torch being imported."""
    return any(
        line.rsplit("|", 1)[-1].strip() == "torch" for line in importtime_stderr.splitlines()
    )


def time_commands(repo: Path, runs: int) -> list[dict]:
    """Time every command `runs` times in fresh processes; return one row per command."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = _env(repo, Path(tmp) / "var")
        for args in COMMANDS:
            _run(repo, env, args)  # warm-up: creates the tables, fills the OS file cache
            times = [_run(repo, env, args)[0] for _ in range(runs)]
            _, log = _run(repo, env, args, "-X", "importtime")
            rows.append(
                {
                    "command": "kgedit " + " ".join(args),
                    "median_s": statistics.median(times),
                    "min_s": min(times),
                    "max_s": max(times),
                    "runs": runs,
                    "imports_torch": imports_torch(log),
                }
            )
    return rows


def _table(rows: list[dict], baseline: list[dict] | None, date: str, where: str) -> str:
    """Return the results-page block: one row per command."""
    load = os.getloadavg()[0]
    head = "| command | median | fastest | slowest | imports torch |"
    if baseline:
        head += " before (median, torch) |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for i, r in enumerate(rows):
        line = (
            f"| `{r['command']}` | {r['median_s']:.2f} s | {r['min_s']:.2f} s "
            f"| {r['max_s']:.2f} s | {'yes' if r['imports_torch'] else 'no'} |"
        )
        if baseline:
            b = baseline[i]
            line += f" {b['median_s']:.2f} s, {'yes' if b['imports_torch'] else 'no'} |"
        lines.append(line)
    runs = rows[0]["runs"]
    lines += [
        "",
        f"{runs} runs per command in fresh processes after one warm-up, embedded SQLite "
        f"metadata database; budget {BUDGET_S:.0f} s. Measured {date} on {where}, "
        f"load average {load:.1f} at the end.",
    ]
    return "\n".join(lines)


def main() -> None:
    """Time the commands, write the JSON and the results-page block."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7, help="timed runs per command")
    parser.add_argument("--repo", type=Path, default=None, help="also time this checkout")
    parser.add_argument("--no-page", action="store_true", help="leave docs/results as it is")
    args = parser.parse_args()
    rows = time_commands(REPO, args.runs)
    baseline = time_commands(args.repo.resolve(), args.runs) if args.repo else None
    for r in rows:
        print(f"{r['command']:<20} median {r['median_s']:.2f} s  torch {r['imports_torch']}")
    where = machine()
    data = {"date": today(), "machine": where, "results": rows, "baseline": baseline}
    write_json("cli_latency", data)
    if not args.no_page:
        update_results("cli-latency", _table(rows, baseline, today(), where))


if __name__ == "__main__":
    main()
