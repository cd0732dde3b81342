"""The exact savings of the v*/δ optimisation equal the plain one; the batched loop stops on
cancellation at the step it was asked to and reports progress."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from editor_helpers import ARCHS, save_tiny_model

from editor.arch import arch_spec
from editor.cancel import RunCancelledError, cancellable, reporting
from editor.loading import load_model
from editor.vstar import VStarProblem, optimize_v_batch

TEMPLATES = ["{}", "A short story. {}", "Music and art. {}"]
PROBLEMS = [
    VStarProblem("Barack Obama", "The mother of {} is", "Tokyo"),
    VStarProblem("Marie Curie", "{} was born in", "London"),
    VStarProblem("the Eiffel Tower", "{} is located in", "Rome"),
    VStarProblem("Ada Lovelace", "{} plays the", "piano"),
]
PLAIN = {"cache_lower": False, "targets_only": False, "batch_tokens": 0}


@pytest.fixture(scope="module")
def deep_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random models with three layers, so that layer 1 has a layer below and above."""
    root = tmp_path_factory.mktemp("tiny_deep")
    return {arch: save_tiny_model(arch, root / arch, n_layers=3) for arch in ARCHS}


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("insert", ["mlp", "block"])
def test_cached_and_batched_equal_plain(deep_dirs, arch: str, insert: str) -> None:
    model, tok = load_model(deep_dirs[arch])
    spec = arch_spec(model)
    options = {
        "layer": 1,
        "num_steps": 10,
        "insert_template": spec.mlp if insert == "mlp" else spec.layer,
    }
    plain = optimize_v_batch(model, tok, PROBLEMS, TEMPLATES, **options, **PLAIN)
    # a stop threshold between the problems' final losses: they stop at different steps
    finals = sorted(r.losses[-1]["total"] for r in plain)
    options["loss_stop"] = (finals[1] + finals[2]) / 2
    plain = optimize_v_batch(model, tok, PROBLEMS, TEMPLATES, **options, **PLAIN)
    steps = [len(r.losses) for r in plain]
    assert len(set(steps)) > 1 and max(steps) > 2, steps
    levers = {
        "cached": {**PLAIN, "cache_lower": True, "targets_only": True},
        "batched": {**PLAIN, "batch_tokens": 10**6},
        "all": {"cache_lower": True, "targets_only": True, "batch_tokens": 10**6},
    }
    for name, lever in levers.items():
        fast = optimize_v_batch(model, tok, PROBLEMS, TEMPLATES, **options, **lever)
        assert [len(r.losses) for r in fast] == steps, name
        for p, f in zip(plain, fast, strict=True):
            if len(p.losses) == 1:  # stopped before any step: δ = 0 in both
                assert not p.delta.any() and not f.delta.any()
            else:
                assert _cos(p.delta, f.delta) >= 0.999, name
            torch.testing.assert_close(f.m0, p.m0)


def test_chunks_follow_the_token_budget(deep_dirs) -> None:
    model, tok = load_model(deep_dirs["gpt2"])
    sizes: list[int] = []

    def on_step(index: int, step: int, _record: dict) -> None:
        if step == 0:
            sizes.append(index)

    one_row = optimize_v_batch(
        model, tok, PROBLEMS, TEMPLATES, layer=1, num_steps=2, batch_tokens=1, on_step=on_step
    )
    assert (
        sorted(sizes) == [0, 1, 2, 3]
        and len(sizes) == 4
        and all(len(r.losses) == 2 for r in one_row)
    )


def test_batched_loop_cancels_at_the_step_and_reports_progress(deep_dirs) -> None:
    model, tok = load_model(deep_dirs["llama"])
    seen: list[tuple[int, int]] = []
    reports: list[tuple[int, int]] = []
    stop_at = 3

    def on_step(index: int, step: int, _record: dict) -> None:
        seen.append((index, step))

    def check() -> None:
        if seen and seen[-1][1] >= stop_at - 1:
            raise RunCancelledError("cancelled")

    record = reporting(lambda done, total: reports.append((done, total)))
    with cancellable(check), record, pytest.raises(RunCancelledError):
        optimize_v_batch(
            model, tok, PROBLEMS, TEMPLATES, layer=1, num_steps=20, loss_stop=0.0,
            batch_tokens=10**6, on_step=on_step,
        )  # fmt: skip
    # all four problems ran steps 0..stop_at-1 in one batch, and no further step began
    assert max(step for _, step in seen) == stop_at - 1
    assert sorted(seen) == [(i, s) for i in range(len(PROBLEMS)) for s in range(stop_at)]
    assert reports == [(0, len(PROBLEMS))] * stop_at
    with reporting(lambda done, total: reports.append((done, total))):
        optimize_v_batch(model, tok, PROBLEMS, TEMPLATES, layer=1, num_steps=3, batch_tokens=10**6)
    assert reports[-1] == (len(PROBLEMS), len(PROBLEMS))


class _ReadBlocks:
    """An extra loss term that reads the outputs of the blocks below and above layer 1."""

    name = "read"

    def __init__(self, spec) -> None:
        self.captures = (spec.layer_name(0), spec.layer_name(2))

    def __call__(self, ctx) -> torch.Tensor:
        below, above = (ctx.outputs[n] for n in self.captures)  # (B, L, d) each
        rows = torch.arange(below.shape[0])  # (B,)
        return 0.01 * (below[rows, ctx.lookup].norm() + above[rows, ctx.lookup].norm())


def test_extra_terms_that_read_lower_blocks_run_them(deep_dirs) -> None:
    model, tok = load_model(deep_dirs["gpt2"])
    term = _ReadBlocks(arch_spec(model))
    problems = [VStarProblem(p.subject, p.prompt, p.target, extra_losses=(term,)) for p in PROBLEMS]
    options = {"layer": 1, "num_steps": 6}
    plain = optimize_v_batch(model, tok, problems, TEMPLATES, **options, **PLAIN)
    fast = optimize_v_batch(model, tok, problems, TEMPLATES, **options, batch_tokens=10**6)
    for p, f in zip(plain, fast, strict=True):
        assert "read" in f.losses[-1]
        assert _cos(p.delta, f.delta) >= 0.999
