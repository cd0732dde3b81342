"""A byte-level BPE tokenizer for the knowledge model, trained offline with `tokenizers`.

Every encoded text starts with the BOS token `<|endoftext|>` (a post-processor adds it), and the
pre-tokenizer adds a prefix space, so a name has the same tokens at the start of a text as inside
it. The tokenizer is saved as an ordinary fast tokenizer that `AutoTokenizer` loads.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

BOS = "<|endoftext|>"


def train_tokenizer(
    texts: Iterable[str], vocab_size: int, bos: bool = True
) -> PreTrainedTokenizerFast:
    """Train a ByteLevel BPE on `texts` as a HF fast tokenizer; `bos` prepends the BOS token."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[BOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    if bos:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, tok.token_to_id(BOS))]
        )
    else:  # GPT-2's own behaviour: no special tokens added
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=BOS,
        pad_token=BOS,
        unk_token=None,
        model_max_length=1024,
        padding_side="right",
    )
    return wrapped
