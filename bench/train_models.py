"""Train (or reuse from the cache) the knowledge models the unlearning benches need, logging speed.

    python bench/train_models.py graph tiny-forms [--limit 40]
    python bench/train_models.py tofu tofu-qa full retain90 [--steps 20]

`graph`: the EVOKE-graph model of a preset (`workers.unlearn_run.prepare_graph_model`).
`tofu`: QA models of the listed TOFU splits (`workers.tofu.train_or_reuse_qa`). `--steps N`
times N steps of the preset into a scratch directory instead (nothing cached), to estimate a
full run. Prints one line per 50 steps: step, loss, seconds per step so far.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch


def _logger(tag: str, every: int = 50):
    """Return a progress callback printing step, loss and mean seconds per step."""
    t0 = time.perf_counter()

    def log(step: int, total: int, loss: float) -> None:
        if step % every == 0 or step == total:
            per = (time.perf_counter() - t0) / max(step, 1)
            print(f"{tag} step {step}/{total} loss {loss:.3f} {per:.3f} s/step", flush=True)

    return log


def main() -> None:
    """Train what the arguments name."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("kind", choices=["graph", "tofu"])
    ap.add_argument("preset")
    ap.add_argument("splits", nargs="*", default=["full"])
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--steps", type=int, default=None, help="time this many steps only")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("KGEDIT_THREADS", "1")))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average {os.getloadavg()}", flush=True)
    if args.kind == "graph":
        from workers.unlearn_run import prepare_graph_model

        _, facts, path = prepare_graph_model(args.limit, args.preset, _logger(args.preset))
        print(f"{args.preset}: {len(facts)} facts -> {path}", flush=True)
        return
    from editor.knowledge.presets import get_qa_preset
    from editor.knowledge.qa import train_qa_model
    from kg.importers.tofu import load_tofu
    from workers.settings import get_settings
    from workers.tofu import train_or_reuse_qa, training_pairs

    settings = get_settings()
    data = load_tofu(settings.tofu_dir)
    preset = get_qa_preset(args.preset)
    for split in args.splits:
        pairs = training_pairs(data, split)
        t0 = time.perf_counter()
        if args.steps:
            short = replace(preset, steps=args.steps, warmup_steps=min(preset.warmup_steps, 5))
            with tempfile.TemporaryDirectory() as tmp:
                train_qa_model(pairs, short, Path(tmp), progress=_logger(split, 5))
        else:
            path, _ = train_or_reuse_qa(
                pairs, preset, settings.models_dir, split, progress=_logger(split)
            )
            print(f"{split} -> {path}", flush=True)
        print(f"{split}: {time.perf_counter() - t0:.0f} s, load {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
