"""Subject-token and target-token arithmetic with a ByteLevel BPE, with and without BOS."""

from __future__ import annotations

import pytest
import torch

from editor.errors import EditorError
from editor.loading import load_model
from editor.tokens import (
    compose,
    encode_prompt_targets,
    fact_token_position,
    fill,
    subject_last_token_index,
    subject_token_indices,
    target_ids,
)


@pytest.fixture(scope="module", params=["bos", "no_bos", "qwen2_loaded"])
def tok(request, tokenizer_factory, model_dirs):
    if request.param == "qwen2_loaded":  # transformers swaps in Qwen2's own pre-tokenizer
        return load_model(model_dirs["qwen2"])[1]
    return tokenizer_factory(bos=request.param == "bos")


def _decoded_upto(tok, text: str, index: int) -> str:
    ids = tok(text)["input_ids"]
    return tok.decode(ids[: index + 1], skip_special_tokens=True)


@pytest.mark.parametrize(
    ("template", "subject", "prefix"),
    [
        ("The mother of {} is", "Barack Obama", ""),
        ("{} is located in", "the Eiffel Tower", ""),
        ("{} plays the", "Toko Yasuda", "A short story. "),
        ("The native language of {} is", "Danielle Darrieux", "  Leading spaces.  "),
        ("In the city of {}, people speak", "Paris", ""),
        ("The mother of {} is", "Ada", ""),  # subject shorter than its merged word
    ],
)
def test_subject_last_token_index(tok, template: str, subject: str, prefix: str) -> None:
    text = prefix + template.format(subject)
    idx = subject_last_token_index(tok, template, subject, prefix)
    ids = tok(text)["input_ids"]
    assert 0 <= idx < len(ids)
    upto = _decoded_upto(tok, text, idx).strip()
    before = _decoded_upto(tok, text, idx - 1).strip() if idx > 0 else ""
    through_subject = text[: len(prefix) + template.index("{}") + len(subject)].strip()
    # tokens up to idx cover the whole subject; tokens before idx do not
    assert upto.startswith(through_subject)
    assert not before.startswith(through_subject)
    if tok.bos_token_id is not None and ids[0] == tok.bos_token_id:
        assert idx >= 1


def test_index_accounts_for_bos(tokenizer_factory) -> None:
    with_bos, without = tokenizer_factory(bos=True), tokenizer_factory(bos=False)
    args = ("The mother of {} is", "Barack Obama")
    assert with_bos("x")["input_ids"][0] == with_bos.bos_token_id
    assert subject_last_token_index(with_bos, *args) == subject_last_token_index(without, *args) + 1


def test_slow_path_agrees_with_offsets(tok) -> None:
    class Slow:
        is_fast = False

        def __call__(self, text, **kw):
            return tok(text)

    for template, subject in [("The mother of {} is", "Barack Obama"), ("{} is a", "Apple")]:
        assert subject_last_token_index(Slow(), template, subject) == subject_last_token_index(
            tok, template, subject
        )


def test_target_ids_leading_space_and_no_bos(tok) -> None:
    ids = target_ids(tok, "Paris")
    assert ids == target_ids(tok, " Paris")
    assert tok.bos_token_id not in ids
    assert tok.decode(ids) == " Paris"


def test_fill_and_compose() -> None:
    assert fill("The mother of {} is", "Ann") == ("The mother of Ann is", 14, 17)
    assert compose("Once upon a time. {}", "{} is a") == "Once upon a time. {} is a"
    with pytest.raises(EditorError):
        fill("no placeholder", "x")


def test_encode_prompt_targets_positions(tok) -> None:
    prompts = ["The mother of Barack Obama is", "Mount Fuji is located in"]
    targets = ["Tokyo Paris", None]
    batch = encode_prompt_targets(tok, prompts, targets)
    p0 = tok(prompts[0])["input_ids"]
    t0 = target_ids(tok, "Tokyo Paris")
    assert len(t0) >= 2
    row0 = batch.input_ids[0, : batch.attention_mask[0].sum()].tolist()
    assert row0 == p0 + t0[:-1]  # all but the last target token are fed
    k = len(t0)
    assert batch.pred_positions[0, :k].tolist() == list(range(len(p0) - 1, len(p0) - 1 + k))
    assert batch.target_ids[0, :k].tolist() == t0
    assert not batch.target_mask[1].any()
    assert batch.attention_mask[1].sum() == len(tok(prompts[1])["input_ids"])
    # right padding: ones then zeros
    for row in batch.attention_mask:
        n = int(row.sum())
        assert row[:n].all() and not row[n:].any()
    assert batch.prompt_lengths.tolist() == [len(p0), len(tok(prompts[1])["input_ids"])]
    assert batch.input_ids.dtype == torch.long


@pytest.mark.parametrize(
    ("template", "subject", "prefix"),
    [
        ("The mother of {} is", "Barack Obama", ""),
        ("{} is located in", "the Eiffel Tower", "A short story. "),
        ("In the city of {}, people speak", "Paris", ""),
    ],
)
def test_subject_first_and_all_tokens_cover_exactly_the_subject(
    tok, template: str, subject: str, prefix: str
) -> None:
    text = prefix + template.format(subject)
    before_subject = text[: len(prefix) + template.index("{}")].strip()
    (first,) = subject_token_indices(tok, template, subject, "first", prefix)
    every = subject_token_indices(tok, template, subject, "all", prefix)
    last = subject_last_token_index(tok, template, subject, prefix)
    assert every == list(range(first, last + 1))
    assert subject_token_indices(tok, template, subject, "last", prefix) == [last]
    # the tokens before `first` hold no subject character; through `first` they start it
    assert _decoded_upto(tok, text, first - 1).strip() == before_subject
    assert len(_decoded_upto(tok, text, first).strip()) > len(before_subject)
    if (
        len(subject.split()) > 1
        or len(tok(" " + subject, add_special_tokens=False)["input_ids"]) > 1
    ):
        assert first < last


def test_slow_path_finds_the_first_subject_token(tok) -> None:
    class Slow:
        is_fast = False

        def __call__(self, text, **kw):
            return tok(text)

    args = ("The mother of {} is", "Barack Obama")
    assert subject_token_indices(Slow(), *args, "first") == subject_token_indices(
        tok, *args, "first"
    )


def test_unknown_positions_are_refused(tok) -> None:
    with pytest.raises(EditorError, match="not one of"):
        subject_token_indices(tok, "{} is", "Ada", "middle")
    assert fact_token_position("subject_first") == "first"
    with pytest.raises(EditorError, match="subject_all"):
        fact_token_position("last")
