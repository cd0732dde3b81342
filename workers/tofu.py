"""TOFU end to end: QA models trained on `full` and on the retain splits (cached by input
hash), unlearning of a forget split, and TOFU's forget quality and model utility (Maini et
al., 2024).

* forget quality = p-value of the two-sample Kolmogorov–Smirnov test between the per-item
  truth ratios on the forget set of the unlearned model and of the retain model (trained
  without the forget authors) — `scipy.stats.ks_2samp`, as TOFU;
* model utility = harmonic mean of {probability, ROUGE-L recall, truth ratio} on {retain set,
  real authors, world facts}; the truth-ratio aggregate is mean(max(0, 1 − R)) there and
  mean(min(R, 1/R)) on the forget set.

Decisions:
* kgedit's models are trained from scratch, so they know no real authors or world facts.
  Every TOFU model here (full and retain) is also trained on `real_authors` and
  `world_facts` (217 QA): that is the general knowledge whose survival model utility
  measures, as pre-training knowledge does for TOFU's Llama models.
* The retain evaluation uses the first `retain_eval_size` rows of `retain_perturbed` (TOFU's
  `ds_size` 300 by default) and greedy answers of at most `max_new_tokens` tokens.
* UIPE on TOFU extrapolates the base run; TOFU has no graph, so its forget set is not grown.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from editor.delta import scaled
from editor.knowledge.presets import KnowledgePreset
from editor.knowledge.qa import QA_REPORT_FILE, qa_examples, qa_prompt, train_qa_model
from editor.methods.gradient_unlearning import GradUnlearnHyperParams, unlearn_examples
from editor.tofu_eval import score_items
from kg.importers.tofu import PAIRS, TofuData
from workers.model_cache import train_cached

QA_TRAINER_VERSION = "1"
SETS = ("retain", "real_authors", "world_facts")


def training_pairs(data: TofuData, split: str) -> list[tuple[str, str]]:
    """Return the QA a model of `split` trains on: the split plus real authors and world facts."""
    return data.pairs(split) + data.pairs("real_authors") + data.pairs("world_facts")


def qa_hash(pairs: Sequence[tuple[str, str]], preset: KnowledgePreset, seed: int) -> str:
    """Return a hash of everything that determines a trained QA model."""
    h = hashlib.sha256()
    h.update(QA_TRAINER_VERSION.encode())
    h.update(json.dumps(preset.to_dict(), sort_keys=True).encode())
    h.update(str(seed).encode())
    for q, a in pairs:
        h.update(json.dumps([q, a]).encode())
    return h.hexdigest()[:16]


def train_or_reuse_qa(
    pairs: Sequence[tuple[str, str]],
    preset: KnowledgePreset,
    models_dir: Path,
    tag: str,
    seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[Path, dict | None]:
    """Return the QA model directory for these inputs, training it only when not cached."""
    name = f"{preset.name}-{tag}-{qa_hash(pairs, preset, seed)}"
    return train_cached(
        models_dir,
        name,
        QA_REPORT_FILE,
        lambda out: train_qa_model(pairs, preset, out, seed=seed, progress=progress),
    )


@dataclass(frozen=True)
class EvalConfig:
    """Sizes of the TOFU evaluation."""

    retain_eval_size: int = 300
    max_new_tokens: int = 64


def evaluate(
    model: Any, tokenizer: Any, data: TofuData, forget_split: str, config: EvalConfig
) -> dict[str, Any]:
    """Return per-set aggregates and the forget set's per-item truth ratios."""
    forget = data.split(f"{forget_split}_perturbed")
    sets = {
        "forget": (forget, False, True),
        "retain": (data.split("retain_perturbed")[: config.retain_eval_size], False, True),
        "real_authors": (data.split("real_authors_perturbed"), True, False),
        "world_facts": (data.split("world_facts_perturbed"), True, False),
    }
    out: dict[str, Any] = {}
    for name, (items, normalise, paraphrase) in sets.items():
        scores = score_items(
            model,
            tokenizer,
            items,
            qa_prompt,
            normalise_probability=normalise,
            paraphrase_in_ratio=paraphrase,
            max_new_tokens=config.max_new_tokens,
        )
        ratios = [r for r in scores.truth_ratio if math.isfinite(r)]
        if name == "forget":
            tr = sum(min(r, 1 / r) if r > 0 else 0.0 for r in ratios) / len(ratios)
        else:
            tr = sum(max(0.0, 1 - r) for r in ratios) / len(ratios)
        out[name] = {
            "n": len(items),
            "probability": sum(scores.probability) / len(items),
            "rouge_l_recall": sum(scores.rouge_recall) / len(items),
            "truth_ratio": tr,
            "truth_ratios": scores.truth_ratio,
        }
    out["model_utility"] = model_utility(out)
    return out


def forget_quality(unlearned: Sequence[float], retain: Sequence[float]) -> float:
    """Return the KS-test p-value between two samples of per-item truth ratios."""
    from scipy.stats import ks_2samp

    a = [x for x in unlearned if math.isfinite(x)]
    b = [x for x in retain if math.isfinite(x)]
    if not a or not b:
        raise ValueError("forget quality needs truth ratios from both models")
    return float(ks_2samp(a, b).pvalue)


def harmonic_mean(values: Sequence[float]) -> float:
    """Return the harmonic mean (0 when any value is 0)."""
    if not values:
        raise ValueError("harmonic mean of nothing")
    if any(v <= 0 for v in values):
        return 0.0
    return len(values) / sum(1 / v for v in values)


def model_utility(evaluation: dict[str, Any]) -> float:
    """Return TOFU's model utility: the harmonic mean of the nine retain-side numbers."""
    keys = ("probability", "rouge_l_recall", "truth_ratio")
    return harmonic_mean([float(evaluation[s][k]) for s in SETS for k in keys])


def unlearn_split(
    model: Any,
    tokenizer: Any,
    data: TofuData,
    forget_split: str,
    objective: str,
    hparams: GradUnlearnHyperParams,
    extrapolation: float | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Unlearn a forget split in place with a gradient objective, its update optionally
    scaled by 1 + `extrapolation` (UIPE's α); return the delta."""
    if forget_split not in PAIRS:
        raise ValueError(f"forget split must be one of {sorted(PAIRS)}, not {forget_split!r}")
    forget = qa_examples(data.pairs(forget_split))
    retain = qa_examples(data.pairs(PAIRS[forget_split]))
    delta, info = unlearn_examples(
        model, tokenizer, objective, forget, retain, hparams, progress=progress
    )
    if extrapolation is not None:
        delta.revert(model)
        delta = scaled(delta, 1.0 + extrapolation, meta={"extrapolation": extrapolation})
        delta.apply(model)
    return delta, info
