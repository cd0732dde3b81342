"""Causal tracing: exact identities on a random model, and a real trace of the tiny model."""

from __future__ import annotations

import pytest
import torch
from editor_helpers import make_tokenizer
from transformers import GPT2Config, GPT2LMHeadModel

from editor.trace import BUCKETS, TraceCase, causal_trace, plot_trace, trace_case

CASE = TraceCase("The mother of Marie Curie is", "Marie Curie", "Paris")


@pytest.fixture(scope="module")
def random_gpt2():
    tok = make_tokenizer()
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=3, n_head=2)
    model = GPT2LMHeadModel(config).eval()
    return model, tok


def test_restoring_last_layer_at_last_token_gives_the_clean_probability(random_gpt2):
    model, tok = random_gpt2
    out = trace_case(model, tok, CASE, noise=0.5, samples=4, kinds=("hidden",))
    effects = out["effects"]["hidden"]  # (T, L)
    clean_gap = out["p_clean"] - out["p_corrupt"]
    assert effects[-1, -1].item() == pytest.approx(clean_gap, abs=1e-6)


def test_positions_before_the_subject_have_no_effect(random_gpt2):
    model, tok = random_gpt2
    out = trace_case(model, tok, CASE, noise=0.5, samples=4)
    first = out["subject_positions"][0]
    for kind, effects in out["effects"].items():
        assert torch.all(effects[:first].abs() < 1e-7), kind


def test_trace_is_deterministic(random_gpt2):
    model, tok = random_gpt2
    a = causal_trace(model, tok, [CASE], samples=3, seed=5)
    b = causal_trace(model, tok, [CASE], samples=3, seed=5)
    assert a.tables == b.tables
    assert len(a.tables["mlp"]) == len(BUCKETS)


def test_subject_not_in_prompt_is_a_clear_error(random_gpt2):
    model, tok = random_gpt2
    with pytest.raises(ValueError, match="not in prompt"):
        trace_case(model, tok, TraceCase("The mother of X is", "Marie Curie", "Paris"), 0.5)


@pytest.mark.slow
def test_trace_of_the_tiny_knowledge_model(tiny_model_dir, tiny_graph, tmp_path):
    from editor.loading import load_model
    from workers.graph_models import known_trace_cases

    model, tok = load_model(tiny_model_dir)
    cases = known_trace_cases(model, tok, tiny_graph, 8)
    assert len(cases) >= 4
    result = causal_trace(model, tok, cases, samples=3)
    assert result.p_clean > result.p_corrupt
    _bucket, _layer, value = result.peak("hidden")
    assert value > 0
    png = tmp_path / "trace.png"
    plot_trace(result, str(png))
    assert png.stat().st_size > 5_000


def test_one_token_subject_counts_as_last_subject_token():
    from editor.trace import _bucket_of

    assert BUCKETS[_bucket_of(3, [3], 6)] == "last subject token"
    assert BUCKETS[_bucket_of(2, [2, 3, 4], 8)] == "first subject token"
    assert BUCKETS[_bucket_of(3, [2, 3, 4], 8)] == "middle subject tokens"
    assert BUCKETS[_bucket_of(5, [2, 3, 4], 8)] == "first subsequent token"
    assert BUCKETS[_bucket_of(8, [2, 3, 4], 8)] == "last token"
