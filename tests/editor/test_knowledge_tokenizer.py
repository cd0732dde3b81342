"""The knowledge model's tokenizer: BOS prepended, prefix space, HF round trip."""

from __future__ import annotations

from transformers import AutoTokenizer

from editor.knowledge.tokenizer import BOS, train_tokenizer

CORPUS = ["Spike Hughes originates from London.", "Max Mosley was born in Paris."] * 40


def test_bos_is_prepended_and_names_tokenise_alike_everywhere(tmp_path):
    tok = train_tokenizer(CORPUS, 320)
    ids = tok("Spike Hughes originates from")["input_ids"]
    assert ids[0] == tok.convert_tokens_to_ids(BOS)
    alone = tok("Spike Hughes", add_special_tokens=False)["input_ids"]
    inside = tok("He met Spike Hughes", add_special_tokens=False)["input_ids"]
    assert inside[-len(alone) :] == alone
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    assert again("Spike Hughes originates from")["input_ids"] == ids
    assert again.pad_token == BOS and again.padding_side == "right"
