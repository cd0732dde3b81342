"""Second-moment statistics: correctness against a direct computation, cache, early stop."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from editor.arch import arch_spec, get_module
from editor.errors import EditorError
from editor.hooks import capture_input
from editor.loading import load_model
from editor.stats import SecondMoment, corpus_texts, layer_second_moment


def _direct(model, tok, module, texts):
    total, count = 0.0, 0
    for text in texts:
        enc = tok(text, return_tensors="pt")
        with capture_input(module) as cap:
            model(**enc)
        keys = cap.value[0].double()  # (L, m)
        total = total + keys.T @ keys
        count += keys.shape[0]
    return total / count, count


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_matches_direct_computation(arch, model_dirs, corpus, tmp_path: Path) -> None:
    model, tok = load_model(model_dirs[arch])
    spec = arch_spec(model)
    texts = corpus[:20]
    sm = layer_second_moment(model, tok, 1, texts, batch_tokens=64, cache_dir=tmp_path)
    expected, count = _direct(model, tok, get_module(model, spec.down_proj_name(1)), texts)
    assert sm.count == count
    assert sm.mom2.dtype == torch.float32 and sm.mom2.shape == (spec.inner_size(model.config),) * 2
    torch.testing.assert_close(sm.mom2.double(), expected, rtol=1e-5, atol=1e-6)


def test_cache_hit_on_second_call(model_dirs, corpus, tmp_path: Path) -> None:
    model, tok = load_model(model_dirs["gpt2"])
    first = layer_second_moment(model, tok, 0, corpus, n_samples=30, cache_dir=tmp_path)
    assert not first.from_cache and len(list(tmp_path.glob("*.safetensors"))) == 1
    calls = []
    handle = model.register_forward_pre_hook(lambda *a: calls.append(1))
    second = layer_second_moment(model, tok, 0, corpus, n_samples=30, cache_dir=tmp_path)
    handle.remove()
    assert second.from_cache and not calls
    assert torch.equal(first.mom2, second.mom2) and first.count == second.count
    other = layer_second_moment(model, tok, 0, corpus, n_samples=31, cache_dir=tmp_path)
    assert not other.from_cache  # n_samples is part of the key
    other_layer = layer_second_moment(model, tok, 1, corpus, n_samples=30, cache_dir=tmp_path)
    assert not other_layer.from_cache


def test_forward_stops_after_the_hooked_layer(model_dirs, corpus) -> None:
    model, tok = load_model(model_dirs["gpt2"])
    spec = arch_spec(model)
    calls = []
    handle = get_module(model, spec.layer_name(1)).register_forward_pre_hook(
        lambda *a: calls.append(1)
    )
    layer_second_moment(model, tok, 0, corpus[:5], cache_dir=None)
    handle.remove()
    assert not calls


def test_text_file_corpus(model_dirs, corpus, tmp_path: Path) -> None:
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(corpus[:10]) + "\n\n", encoding="utf-8")
    assert corpus_texts(path, 100) == corpus[:10]
    model, tok = load_model(model_dirs["gpt2"])
    seen: list[tuple[int, int]] = []
    a = layer_second_moment(
        model, tok, 0, path, cache_dir=None, batch_tokens=40, on_progress=lambda *x: seen.append(x)
    )
    assert len(seen) > 1 and seen[-1] == (10, 10)
    b = layer_second_moment(model, tok, 0, corpus[:10], cache_dir=None)
    torch.testing.assert_close(a.mom2, b.mom2)


def test_inverse_and_singular_guard() -> None:
    g = torch.Generator().manual_seed(0)
    keys = torch.randn(50, 4, generator=g, dtype=torch.float64)
    sm = SecondMoment(mom2=(keys.T @ keys / 50).float(), count=50)
    k = torch.randn(4)
    torch.testing.assert_close(sm.mom2 @ sm.solve(k), k, rtol=1e-4, atol=1e-5)
    assert sm.inverse() is sm.inverse()  # cached
    with pytest.raises(EditorError, match="singular"):
        SecondMoment(mom2=torch.eye(8), count=3).inverse()


def test_empty_corpus_raises(model_dirs) -> None:
    model, tok = load_model(model_dirs["gpt2"])
    with pytest.raises(EditorError, match="empty"):
        layer_second_moment(model, tok, 0, ["", "  "], cache_dir=None)
