"""Scoring: padded batches equal unbatched scoring; comparisons and greedy matches."""

from __future__ import annotations

import itertools

import pytest
import torch

from editor.loading import load_model
from editor.scoring import compare_targets, score_targets, target_logprobs
from editor.tokens import target_ids

PROMPTS = [
    "The mother of Barack Obama is",
    "Mount Fuji is located in",
    "A",
    "In the city of Paris, people speak",
]
TARGETS = ["Ann Dunham", "Tokyo", "piano guitar English", "French"]


@pytest.mark.parametrize("arch", ["gpt2", "llama", "gpt_neox"])
def test_padded_batch_equals_unbatched(arch, model_dirs) -> None:
    model, tok = load_model(model_dirs[arch])
    batched = target_logprobs(model, tok, PROMPTS, TARGETS, batch_size=64)
    single = target_logprobs(model, tok, PROMPTS, TARGETS, batch_size=1)
    torch.testing.assert_close(batched, single, rtol=1e-5, atol=1e-5)


def test_matches_manual_computation(model_dirs) -> None:
    model, tok = load_model(model_dirs["gpt2"])
    prompt, target = PROMPTS[0], TARGETS[0]
    p_ids = tok(prompt)["input_ids"]
    t_ids = target_ids(tok, target)
    ids = torch.tensor([p_ids + t_ids])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0].float(), -1)  # (L, V)
    manual = sum(float(logp[len(p_ids) - 1 + i, t]) for i, t in enumerate(t_ids))
    scores = score_targets(model, tok, [prompt], [target])
    assert scores.n_tokens.item() == len(t_ids)
    assert abs(scores.sum_logprob.item() - manual) < 1e-4
    mean = score_targets(model, tok, [prompt], [target]).mean_logprob
    assert abs(mean.item() - manual / len(t_ids)) < 1e-4


class NextTokenLM(torch.nn.Module):
    """A fake LM whose argmax after token a is `table[a]` (one-hot logits)."""

    def __init__(self, vocab: int, table: dict[int, int]) -> None:
        super().__init__()
        self.vocab = vocab
        self.table = torch.zeros(vocab, dtype=torch.long)
        for a, b in table.items():
            self.table[a] = b
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask=None, use_cache=None):
        nxt = self.table[input_ids]  # (B, L)
        logits = torch.nn.functional.one_hot(nxt, self.vocab).float() * 5.0  # (B, L, V)
        return type("Out", (), {"logits": logits})()


def test_greedy_and_top1_and_compare(tokenizer_factory) -> None:
    tok = tokenizer_factory(bos=True)
    tok.pad_token = tok.eos_token
    prompt = "Mount Fuji is located in"
    p, t = tok(prompt)["input_ids"], target_ids(tok, "Tokyo Paris")
    chain = [p[-1], *t]
    model = NextTokenLM(len(tok), dict(itertools.pairwise(chain)))
    scores = score_targets(model, tok, [prompt] * 3, ["Tokyo Paris", "Tokyo Rome", "Paris"])
    assert scores.all_argmax.tolist() == [True, False, False]
    assert scores.first_argmax.tolist() == [True, True, False]
    res = compare_targets(model, tok, [prompt, prompt], ["Tokyo", "Rome"], ["Rome", "Tokyo"])
    assert res.tolist() == [True, False] and res.dtype == torch.bool


def test_greedy_consistent_with_manual_argmax(model_dirs) -> None:
    model, tok = load_model(model_dirs["llama"])
    got = score_targets(model, tok, PROMPTS, TARGETS).all_argmax
    for i, (prompt, target) in enumerate(zip(PROMPTS, TARGETS, strict=True)):
        p, t = tok(prompt)["input_ids"], target_ids(tok, target)
        with torch.no_grad():
            logits = model(torch.tensor([p + t])).logits[0]  # (L, V)
        argmax = logits[len(p) - 1 : len(p) - 1 + len(t)].argmax(-1).tolist()
        assert bool(got[i]) == (argmax == t)
