"""The audit's scorer: packed scoring equals pairwise scoring, exact match equals greedy
decoding, scores repeat exactly, stepwise chains use the model's own answers, entropy."""

from __future__ import annotations

import json
import math

import pytest
import torch

from contracts.types import Probe, ProbeKind
from editor.generation import ends_answer, first_answer, generate, ngram_entropy
from editor.loading import load_model
from editor.packed import continuation_table, score_candidates
from editor.probe_scoring import ScoringConfig, score_probes, score_stepwise
from editor.scoring import score_targets

PROMPTS = [
    "The mother of Barack Obama is",
    "Mount Fuji is located in",
    "The mother of Barack Obama is",  # repeated prompt: its own segment again
    "A",
    "In the city of Paris, people speak",
]
CANDIDATES = [
    ["Ann Dunham", "Paris"],
    ["Tokyo", "London", "piano guitar English"],
    ["Rome"],
    ["piano guitar English", "B"],
    ["French", "English", "Berlin", "Tokyo"],
]
ARCHS = ["gpt2", "gptj", "gpt_neox", "llama", "mistral", "qwen2"]


@pytest.mark.parametrize("arch", ARCHS)
def test_packed_scores_equal_one_row_per_pair(arch, model_dirs) -> None:
    model, tok = load_model(model_dirs[arch])
    boundary = [[j == 0 for j in range(len(c))] for c in CANDIDATES]
    packed = score_candidates(model, tok, PROMPTS, CANDIDATES, boundary, row_tokens=16)
    flat_p = [p for p, cands in zip(PROMPTS, CANDIDATES, strict=True) for _ in cands]
    flat_c = [c for cands in CANDIDATES for c in cands]
    plain = score_targets(model, tok, flat_p, flat_c)
    torch.testing.assert_close(packed.sum_logprob, plain.sum_logprob, rtol=1e-4, atol=1e-4)
    assert torch.equal(packed.n_tokens, plain.n_tokens)
    assert torch.equal(packed.all_argmax, plain.all_argmax)


@pytest.mark.parametrize("row_tokens", [3, 8, 256])
def test_trie_rows_of_any_size_score_the_same(row_tokens, model_dirs) -> None:
    """Shared prefixes, subtrees split over rows (small rows) or one row for all (large)."""
    model, tok = load_model(model_dirs["llama"])
    prompts = [
        "The mother of Barack Obama is",
        "The mother of Marie Curie is",
        "The mother of Marie Curie was",
        "The native language of Marie Curie is",
        "Marie Curie was born in",
    ]
    cands = [["Ann Dunham", "Ann"], ["Paris", "Ann Dunham"], ["Bronisława"], ["Polish"], ["Warsaw"]]
    marks = [[True] * len(c) for c in cands]
    packed = score_candidates(model, tok, prompts, cands, marks, row_tokens=row_tokens)
    reference = score_candidates(model, tok, prompts, cands, marks, row_tokens=1024, batch_tokens=1)
    flat_p = [p for p, c in zip(prompts, cands, strict=True) for _ in c]
    plain = score_targets(model, tok, flat_p, [c for cs in cands for c in cs])
    torch.testing.assert_close(packed.sum_logprob, plain.sum_logprob, rtol=1e-4, atol=1e-4)
    assert torch.equal(packed.all_argmax, plain.all_argmax)
    assert torch.equal(packed.stops, reference.stops)


def _greedy_ids(model, tok, prompt: str, n: int) -> list[int]:
    """Reference greedy decoding with Hugging Face `generate` (one prompt, no padding)."""
    ids = torch.tensor([tok(prompt)["input_ids"]])
    out = model.generate(
        ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False, pad_token_id=0
    )
    return out[0, ids.shape[1] :].tolist()


@pytest.mark.slow
def test_exact_match_is_greedy_decoding_of_the_whole_word(tiny_model_dir, tiny_facts) -> None:
    model, tok = load_model(tiny_model_dir)
    table = continuation_table(tok, model.get_output_embeddings().weight.shape[0])
    prompts = [f.templates[0].format(f.subject) for f in tiny_facts[:40:4]]
    checked = 0
    for prompt in prompts:
        greedy = _greedy_ids(model, tok, prompt, 6)
        k = 1
        while k < len(greedy) and table[greedy[k]]:
            k += 1
        word = tok.decode(greedy[:k]).strip()
        if not word or tok(" " + word, add_special_tokens=False)["input_ids"] != greedy[:k]:
            continue  # the greedy tokens are not how the tokenizer spells the word
        other = "Paris" if word != "Paris" else "London"
        cands = [[word], [other]] + ([[tok.decode(greedy[: k - 1]).strip()]] if k > 1 else [])
        scores = score_candidates(model, tok, [prompt] * len(cands), cands, [[True]] * len(cands))
        assert scores.exact_match.tolist() == [True] + [False] * (len(cands) - 1), prompt
        checked += 1
    assert checked >= 5


def _probes() -> list[Probe]:
    return [
        Probe("Mount Fuji is located in", "Tokyo", ProbeKind.REWRITE, "London"),
        Probe("Question: A or B? Answer:", "A", ProbeKind.FORM_MC, "B", {}, ("C", "D")),
        Probe("Marie Curie was born in", "Paris", ProbeKind.NEIGHBOUR),
        Probe("Apple plays the", "piano", ProbeKind.FORM_CLOZE, None, {"role": "forget"}),
        Probe("Ada Lovelace", "", ProbeKind.FLUENCY),
        Probe(
            "Marie Curie was born in",
            "English",
            ProbeKind.MULTI_HOP_STEPWISE,
            "French",
            {
                "hops": json.dumps(["{} was born in", "In the city of {}, people speak"]),
                "subject": "Marie Curie",
            },
        ),
    ]


def test_the_same_probes_score_identically_twice(model_dirs) -> None:
    model, tok = load_model(model_dirs["gpt2"])
    first = [s.to_dict() for s in score_probes(model, tok, _probes())]
    again = [s.to_dict() for s in score_probes(model, tok, _probes())]
    assert first == again
    assert first[4]["entropy"] is not None and first[4]["success"] is None
    assert first[1]["compared"] is not None and first[2]["compared"] is None


def test_success_rules(model_dirs) -> None:
    model, tok = load_model(model_dirs["gpt2"])
    probes = _probes()[:4]
    scores = score_probes(model, tok, probes)
    assert scores[0].success == scores[0].compared
    assert scores[0].compared == (scores[0].logp_expected > scores[0].logp_rival)
    assert scores[2].success == scores[2].exact_match
    assert scores[3].success == (not scores[3].exact_match)  # a forget probe
    bf16 = score_probes(model, tok, probes, ScoringConfig(dtype="bfloat16"))
    assert all(math.isfinite(s.logp_expected) for s in bf16)


def test_left_padded_generation_equals_one_prompt_at_a_time(model_dirs) -> None:
    model, tok = load_model(model_dirs["llama"])
    prompts = ["A", "In the city of Paris, people speak", "Mount Fuji is located in"]
    together = generate(model, tok, prompts, 6)
    alone = [generate(model, tok, [p], 6)[0] for p in prompts]
    assert together == alone
    sampled = generate(model, tok, prompts, 6, sample=True, seed=1)
    assert sampled == generate(model, tok, prompts, 6, sample=True, seed=1)


def test_ngram_entropy_and_answer_extraction() -> None:
    expected = (2 / 3 * math.log2(3) + 4 / 3 * 1.0) / 2  # 3 distinct bigrams, 2 trigrams
    assert ngram_entropy("a b c d") == pytest.approx(expected)
    assert ngram_entropy("x x x x x x x x") == 0.0
    assert ngram_entropy("one two three four five six") > ngram_entropy("one two one two one two")
    assert first_answer(" St. Louis. Marie was born") == "St. Louis"
    assert first_answer(" London. Spike Hughes is") == "London"
    assert first_answer(" E. Phillips Oppenheim\nnext") == "E. Phillips Oppenheim"
    assert ends_answer(" London.") and not ends_answer(" St.")


@pytest.mark.slow
def test_stepwise_feeds_the_models_own_hop_answers(tiny_model_dir) -> None:
    model, tok = load_model(tiny_model_dir)
    hops = ["{} originates from", "{} capital of"]
    probe = Probe(
        "Spike Hughes originates from",
        "Atlantis City",
        ProbeKind.MULTI_HOP_STEPWISE,
        None,
        {
            "hops": json.dumps(hops),
            "subject": "Spike Hughes",
            "graph_answers": json.dumps(["Atlantis", "Atlantis City"]),  # not the model's
        },
    )
    (score,) = score_stepwise(model, tok, [probe])
    own = first_answer(
        generate(model, tok, ["Spike Hughes originates from"], 12, stop=ends_answer)[0]
    )
    assert own and own != "Atlantis"
    assert score.hop_prompts == ("Spike Hughes originates from", f"{own} capital of")
    assert score.hop_answers[0] == own
    assert "Atlantis" not in score.hop_prompts[1]
    final = first_answer(generate(model, tok, [score.hop_prompts[1]], 12, stop=ends_answer)[0])
    assert score.answer == final
