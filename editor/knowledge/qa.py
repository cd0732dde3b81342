"""Train a question-answer knowledge model (the TOFU preset): a GPT-2 from a config on
"Question: <q>\\nAnswer: <a>" rows, the loss on the answer tokens only (TOFU's fine-tuning
loss), with the knowledge trainer's tokenizer, initialisation, optimiser and schedule.

Deterministic for a given (pairs, preset, seed): the data order comes from the seed.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from pathlib import Path

from editor.cancel import checkpoint
from editor.knowledge.presets import KnowledgePreset
from editor.knowledge.tokenizer import train_tokenizer
from editor.knowledge.train import ProgressFn, _optimizer, build_model, clipped_step, lr_at
from editor.loading import save_model
from editor.methods.gradient_unlearning import Example, encode_examples, sequence_nll
from editor.scoring import score_targets

QA_REPORT_FILE = "kgedit_qa.json"


def qa_prompt(question: str) -> str:
    """Return the prompt of a question; the answer follows as `" " + answer`."""
    return f"Question: {question}\nAnswer:"


def qa_examples(pairs: Sequence[tuple[str, str]]) -> list[Example]:
    """Return training examples (prompt, answer) of question-answer pairs."""
    return [Example(qa_prompt(q), a) for q, a in pairs]


def train_qa_model(
    pairs: Sequence[tuple[str, str]],
    preset: KnowledgePreset,
    out_dir: str | Path,
    seed: int = 0,
    progress: ProgressFn | None = None,
    eval_size: int = 200,
) -> dict:
    """Train tokenizer and model on QA pairs, save an HF directory, return the report dict."""
    if not pairs:
        raise ValueError("no question-answer pairs to train on")
    started = time.perf_counter()
    examples = qa_examples(pairs)
    texts = [f"{e.prompt} {e.completion}" for e in examples]
    tok = train_tokenizer(texts, preset.vocab_size)
    model = build_model(preset, len(tok), seed)
    optim = _optimizer(model, preset)
    rng = random.Random(seed)
    order: list[int] = []
    model.train()
    loss_ema = None
    for step in range(preset.steps):
        checkpoint()
        for group in optim.param_groups:
            group["lr"] = lr_at(step, preset)
        if len(order) < preset.batch_size:
            fresh = list(range(len(examples)))
            rng.shuffle(fresh)
            order += fresh
        idx, order = order[: preset.batch_size], order[preset.batch_size :]
        ids, att, lab = encode_examples(tok, [examples[i] for i in idx], preset.n_positions)
        s, n = sequence_nll(model(input_ids=ids, attention_mask=att).logits, lab)
        loss = s.sum() / n.sum().clamp(min=1)
        loss_ema = clipped_step(model, optim, loss, loss_ema)
        if progress is not None:
            progress(step + 1, preset.steps, loss_ema)
    seconds = time.perf_counter() - started
    sample = examples[:: max(1, len(examples) // eval_size)][:eval_size]
    scores = score_targets(model, tok, [e.prompt for e in sample], [e.completion for e in sample])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_model(model, tok, out)
    report = {
        "preset": preset.to_dict(),
        "n_pairs": len(pairs),
        "n_params": sum(p.numel() for p in model.parameters()),
        "steps": preset.steps,
        "epochs": round(preset.steps * preset.batch_size / len(pairs), 2),
        "seconds": round(seconds, 1),
        "final_loss": round(loss_ema or float("nan"), 4),
        "answer_mean_logprob": float(scores.mean_logprob.mean()),
        "answer_exact_share": float(scores.all_argmax.float().mean()),
        "seed": seed,
    }
    (out / QA_REPORT_FILE).write_text(json.dumps(report, indent=2))
    return report
