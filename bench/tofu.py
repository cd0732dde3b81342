"""TOFU on kgedit's QA knowledge model: forget quality and model utility of GA, GradDiff and
NPO, each with and without UIPE, against retain models trained without the forget authors.

    python bench/tofu.py [--forget forget01 forget05 forget10] [--preset tofu-qa]

Trains (or reuses, cached by input hash under var/models) the model on `full` and one retain
model per forget split (`retain99/95/90`). Writes bench/results/tofu.json and the results-page
table between `<!-- tofu:start -->` and `<!-- tofu:end -->`; every split that finished is
in it, and the JSON says which ran.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from tqdm.auto import tqdm

from bench.common import RESULTS, machine, today, update_results, write_json
from editor.knowledge.presets import get_qa_preset
from editor.loading import load_model, state_checksum
from editor.methods.gradient_unlearning import GradUnlearnHyperParams
from editor.methods.uipe import extrapolate
from kg.importers.tofu import PAIRS, load_tofu
from workers.settings import get_settings
from workers.tofu import (
    EvalConfig,
    evaluate,
    forget_quality,
    train_or_reuse_qa,
    training_pairs,
    unlearn_split,
)


def _summary(ev: dict, reference: list[float]) -> dict:
    """Return forget quality against the retain model's truth ratios, and utility."""
    return {
        "forget_quality": forget_quality(ev["forget"]["truth_ratios"], reference),
        "model_utility": ev["model_utility"],
        "forget_probability": ev["forget"]["probability"],
        "forget_rouge": ev["forget"]["rouge_l_recall"],
        "retain_rouge": ev["retain"]["rouge_l_recall"],
    }


def _train(data, split: str, preset) -> Path:
    """Train or reuse the model of one split, with a progress bar."""
    bar = tqdm(total=preset.steps, desc=f"train {split}", leave=False)
    path, _ = train_or_reuse_qa(
        training_pairs(data, split),
        preset,
        get_settings().models_dir,
        split,
        progress=lambda s, n, loss: (bar.update(s - bar.n), bar.set_postfix(loss=f"{loss:.3f}")),
    )
    bar.close()
    return path


def main() -> None:
    """Run the TOFU benchmark at the requested scale."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--forget", nargs="+", default=["forget01"], choices=sorted(PAIRS))
    ap.add_argument("--preset", default="tofu-qa")
    ap.add_argument("--methods", nargs="+", default=["ga", "graddiff", "npo"])
    ap.add_argument("--alphas", nargs="+", type=float, default=[0.5, 1.0])
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--retain-eval-size", type=int, default=100)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("KGEDIT_THREADS", "1")))
    ap.add_argument("--no-results-page", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    settings = get_settings()
    data = load_tofu(settings.tofu_dir)
    preset = get_qa_preset(args.preset)
    config = EvalConfig(args.retain_eval_size, args.max_new_tokens)
    hp = GradUnlearnHyperParams(lr=args.lr, epochs=args.epochs, batch_size=args.batch_size)
    t0 = time.perf_counter()
    full_dir = _train(data, "full", preset)
    out: dict = {
        "date": today(),
        "machine": machine(),
        "preset": preset.to_dict(),
        "hparams": hp.to_dict(),
        "eval": {
            "retain_eval_size": config.retain_eval_size,
            "max_new_tokens": args.max_new_tokens,
        },
        "splits": {},
    }
    earlier = RESULTS / "tofu.json"
    if earlier.is_file():  # keep splits measured earlier under the same settings
        old = json.loads(earlier.read_text())
        if all(old.get(k) == out[k] for k in ("preset", "hparams", "eval")):
            out["splits"] = old.get("splits", {})
    for split in args.forget:
        retain_model, retain_tok = load_model(_train(data, PAIRS[split], preset))
        reference = evaluate(retain_model, retain_tok, data, split, config)
        ref_tr = reference["forget"]["truth_ratios"]
        del retain_model
        model, tok = load_model(full_dir)
        base_sha = state_checksum(model)
        base = evaluate(model, tok, data, split, config)
        rows = {
            "retain model": _summary(reference, ref_tr),
            "finetuned (full)": _summary(base, ref_tr),
        }
        for method in args.methods:
            started = time.perf_counter()
            delta, _ = unlearn_split(model, tok, data, split, method, hp)
            seconds = time.perf_counter() - started
            rows[method] = {**_summary(evaluate(model, tok, data, split, config), ref_tr),
                            "seconds": seconds}  # fmt: skip
            delta.revert(model)
            sweep = {}
            for alpha in args.alphas:
                scaled = extrapolate(delta, alpha)
                scaled.apply(model)
                sweep[alpha] = _summary(evaluate(model, tok, data, split, config), ref_tr)
                scaled.revert(model)
            floor = 0.9 * rows["finetuned (full)"]["model_utility"]
            ok = [a for a, r in sweep.items() if r["model_utility"] >= floor]
            best = max(ok, key=lambda a: (sweep[a]["forget_quality"], -a)) if ok else None
            rows[f"{method}+uipe"] = {
                **(sweep[best] if best is not None else {}),
                "alpha": best,
                "sweep": {str(a): r for a, r in sweep.items()},
            }
        assert state_checksum(model) == base_sha, "an unlearning run did not revert"
        out["splits"][split] = rows
        out["seconds"] = time.perf_counter() - t0
        write_json("tofu", out)
        if not args.no_results_page:
            update_results("tofu", readme_table(out))


def readme_table(data: dict) -> str:
    """Return the results-page block of one run."""
    p = data["preset"]
    lines = [
        f"Measured {data['date']} on {data['machine']}; `{p['name']}` QA model "
        f"({p['n_layer']} × {p['n_embd']}, {p['steps']} steps of {p['batch_size']}); unlearning "
        f"lr {data['hparams']['lr']}, {data['hparams']['epochs']} epochs; retain set "
        f"{data['eval']['retain_eval_size']} rows, answers ≤ {data['eval']['max_new_tokens']} "
        "tokens. UIPE's α: the highest forget quality with utility ≥ 90 % of the finetuned "
        "model's (none: no α kept it).",
        "",
        "| split | model | forget quality | model utility | forget ROUGE-L | s |",
        "|---|---|---|---|---|---|",
    ]
    for split, rows in data["splits"].items():
        for name, r in rows.items():
            if "forget_quality" not in r:
                lines.append(f"| {split} | {name} (no α kept utility) | – | – | – | |")
                continue
            label = name + (f" (α={r['alpha']})" if r.get("alpha") is not None else "")
            secs = f"{r['seconds']:.0f}" if "seconds" in r else ""
            lines.append(
                f"| {split} | {label} | {r['forget_quality']:.3g} | {r['model_utility']:.3f} "
                f"| {r['forget_rouge']:.3f} | {secs} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
