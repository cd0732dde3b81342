"""The library warnings kgedit understands are silenced where they arise: loading, generating
with a cache, a loss from labels, sampled context, saving (no tqdm bars)."""

from __future__ import annotations

import pytest
from fresh_python import run_python

# a fresh interpreter, because transformers warns only once per process
SCRIPT = """
import sys, tempfile
from editor.context import sample_prefixes
from editor.generation import generate
from editor.loading import load_model, save_model
lm, tok = load_model(sys.argv[1])
generate(lm, tok, ["The capital of"], max_new_tokens=3)
ids = tok(["The capital of France"], return_tensors="pt")
lm(**ids, labels=ids["input_ids"])
sample_prefixes(lm, tok, 4, 2)
save_model(lm, tok, tempfile.mkdtemp())
print("done")
"""
NOISE = (
    "past_key_values",
    "loss_type",
    "attention_mask",
    "Writing model shards",
    "Loading weights",
)


@pytest.mark.slow  # the tiny knowledge model, in a fresh interpreter
def test_loading_generating_and_saving_print_no_library_noise(tiny_model_dir):
    out = run_python(SCRIPT, str(tiny_model_dir))
    assert out.stdout.strip() == "done"
    assert [n for n in NOISE if n in out.stderr] == [], out.stderr
