"""Train the knowledge model: a GPT-2 from a config, on passages about a graph's facts.

Deterministic for a given (facts, preset, seed) on one machine: the sampler, the initial
weights and the data order all derive from the seed, and the schedule counts steps, not seconds.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from contracts.types import FactText
from editor.cancel import checkpoint
from editor.knowledge.corpus import PassageSampler, eval_pairs
from editor.knowledge.presets import KnowledgePreset
from editor.knowledge.tokenizer import train_tokenizer
from editor.loading import CAUSAL_LM_LOSS, save_model
from editor.scoring import score_targets

ProgressFn = Callable[[int, int, float], None]


@dataclass
class TrainReport:
    """What a training run did and how well the model knows its facts."""

    preset: str
    n_facts: int
    n_subjects: int
    n_params: int
    steps: int
    seconds: float
    final_loss: float
    accuracy_train_template: float
    accuracy_heldout_template: float
    first_token_accuracy_train_template: float
    first_token_accuracy_heldout_template: float
    seed: int
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Return the report as a JSON-ready dict."""
        return dict(self.__dict__)


def build_model(preset: KnowledgePreset, vocab_size: int, seed: int) -> GPT2LMHeadModel:
    """Return a freshly initialised GPT-2 for the preset (dropout off, tied embeddings)."""
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=preset.n_positions,
        n_embd=preset.n_embd,
        n_layer=preset.n_layer,
        n_head=preset.n_head,
        n_inner=preset.n_inner,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
        tie_word_embeddings=True,
        loss_type=CAUSAL_LM_LOSS,
    )
    model = GPT2LMHeadModel(config)
    model.loss_type = CAUSAL_LM_LOSS  # transformers reads the model's, not the config's
    return model


def _optimizer(model: torch.nn.Module, preset: KnowledgePreset) -> torch.optim.Optimizer:
    """AdamW with weight decay on matrices only (not biases, norms or position embeddings)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.ndim >= 2 and "wpe" not in name:
            decay.append(param)
        else:
            no_decay.append(param)
    groups = [
        {"params": decay, "weight_decay": preset.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=preset.lr, betas=(0.9, 0.98))


def clipped_step(
    model: torch.nn.Module, optim: torch.optim.Optimizer, loss: torch.Tensor, loss_ema: float | None
) -> float:
    """Take one optimiser step on `loss` (gradient norm clipped at 1); return the loss EMA."""
    optim.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optim.step()
    value = float(loss.detach())
    return value if loss_ema is None else 0.98 * loss_ema + 0.02 * value


def lr_at(step: int, preset: KnowledgePreset) -> float:
    """Linear warm-up, then a cosine down to `min_lr_ratio` of the peak."""
    if step < preset.warmup_steps:
        return preset.lr * (step + 1) / preset.warmup_steps
    progress = (step - preset.warmup_steps) / max(1, preset.steps - preset.warmup_steps)
    floor = preset.min_lr_ratio
    return preset.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _encode_rows(tok: PreTrainedTokenizerFast, rows: list[str], max_len: int) -> dict:
    """Tokenise rows (BOS prepended) right-padded; labels are -100 on padding."""
    enc = tok(rows, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
    labels = enc["input_ids"].clone()  # (B, T)
    labels[enc["attention_mask"] == 0] = -100
    return {
        "input_ids": enc["input_ids"],
        "attention_mask": enc["attention_mask"],
        "labels": labels,
    }


def _length_bucketed(
    tok: PreTrainedTokenizerFast, sampler: PassageSampler, preset: KnowledgePreset, pool: int = 8
) -> Iterator[dict]:
    """Yield batches cut from a pool of rows sorted by length, so little compute goes to padding."""
    while True:
        rows = sampler.batch(preset.batch_size * pool)
        lengths = [len(ids) for ids in tok(rows)["input_ids"]]
        order = sorted(range(len(rows)), key=lambda i: lengths[i])
        chunks = [order[i : i + preset.batch_size] for i in range(0, len(order), preset.batch_size)]
        sampler.rng.shuffle(chunks)
        for chunk in chunks:
            yield _encode_rows(tok, [rows[i] for i in chunk], preset.n_positions)


def object_accuracy(
    model: GPT2LMHeadModel, tok: PreTrainedTokenizerFast, pairs: Sequence[tuple[str, str]]
) -> tuple[float, float]:
    """Return (all object tokens top-1, first object token top-1) under teacher forcing."""
    if not pairs:
        return float("nan"), float("nan")
    scores = score_targets(model, tok, [p for p, _ in pairs], [o for _, o in pairs], 256)
    return float(scores.all_argmax.float().mean()), float(scores.first_argmax.float().mean())


def train_knowledge_model(
    facts: Sequence[FactText],
    preset: KnowledgePreset,
    out_dir: str | Path,
    seed: int = 0,
    progress: ProgressFn | None = None,
    eval_limit: int | None = 3000,
) -> TrainReport:
    """Train tokenizer and model on `facts`, save an HF directory to `out_dir`, return a report."""
    if not facts:
        raise ValueError("no facts to train on")
    started = time.perf_counter()
    facts = [replace(f, templates=f.templates[: preset.max_templates]) for f in facts]
    sampler = PassageSampler(
        facts,
        preset.statements_per_fact,
        preset.cloze_share,
        seed=seed,
        form_share=preset.form_share,
    )
    tok = train_tokenizer(sampler.tokenizer_corpus(), preset.vocab_size)
    model = build_model(preset, len(tok), seed)
    optim = _optimizer(model, preset)
    model.train()
    loss_ema = None
    batches = _length_bucketed(tok, sampler, preset)
    for step in range(preset.steps):
        checkpoint()
        for group in optim.param_groups:
            group["lr"] = lr_at(step, preset)
        batch = next(batches)
        loss = model(**batch).loss
        loss_ema = clipped_step(model, optim, loss, loss_ema)
        if progress is not None:
            progress(step + 1, preset.steps, loss_ema)
    train_seconds = time.perf_counter() - started

    eval_facts = list(facts)
    if eval_limit is not None and len(eval_facts) > eval_limit:
        eval_facts = eval_facts[:: math.ceil(len(eval_facts) / eval_limit)]
    acc_train, first_train = object_accuracy(model, tok, eval_pairs(eval_facts, heldout=False))
    acc_held, first_held = object_accuracy(model, tok, eval_pairs(eval_facts, heldout=True))

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_model(model, tok, out)
    report = TrainReport(
        preset=preset.name,
        n_facts=len(facts),
        n_subjects=len(sampler.subjects),
        n_params=sum(p.numel() for p in model.parameters()),
        steps=preset.steps,
        seconds=round(train_seconds, 1),
        final_loss=round(loss_ema or float("nan"), 4),
        accuracy_train_template=acc_train,
        accuracy_heldout_template=acc_held,
        first_token_accuracy_train_template=first_train,
        first_token_accuracy_heldout_template=first_held,
        seed=seed,
        extra={"preset": preset.to_dict(), "eval_facts": len(eval_facts)},
    )
    (out / "kgedit_knowledge.json").write_text(json.dumps(report.to_dict(), indent=2))
    return report
