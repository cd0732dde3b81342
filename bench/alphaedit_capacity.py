"""AlphaEdit capacity on the `small` model: how many sequential edits a layer's null space holds.

For each layer and null-space choice (absolute τ or `nullspace_energy`) it reports the null
dimension r, the share of an edit key's energy inside the null space (‖Pk‖²/‖k‖²) and the
effective rank of the projected edit keys, then replays AlphaEdit's solve on the real keys of
the first N graph edits in a linear model of one layer: edit t asks for Δ_t k_t = r_t (random
residuals of norm 1) given C_p = Σ_{s<t} k_s k_sᵀ, and we measure, for the first 100 edits,
the share of their own update that is still there after all N (1 − ‖Σ_{t>i} Δ_t k_i‖ / ‖r_i‖,
"kept") and how much of each residual the solve realised when it was made ("landed").
The linear model ignores the nonlinearity and cross-layer effects; it ranks settings before
the real (slow) proxy runs of `bench/sequential_stress.py`.

    nice -n 10 .venv/bin/python bench/alphaedit_capacity.py --edits 1000 --layers 0,1,2,3,4,5
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from bench.common import open_bench
from editor.arch import arch_spec
from editor.methods.alphaedit import eigen, energy_threshold
from editor.methods.common import request_keys
from workers.edit_run import select_known_edits
from workers.graph_edits import graph_edits
from workers.settings import get_settings


def simulate(Y: torch.Tensor, l2: float, first: int) -> dict:
    """Replay the sequential projected ridge solve on projected keys Y = Ûᵀ K (r, n).

    With P = Û Ûᵀ the solve (P(kkᵀ + C_p) + αI) v = P k has v = Û a, a = (A + y yᵀ)⁻¹ y,
    A = Σ_{s<t} y_s y_sᵀ + αI (kept inverted by Sherman–Morrison). Edit t moves key i by
    r_t (a_tᵀ y_i); residuals are taken as orthonormal, so the drift of edit i is the root
    sum of squares of a_tᵀ y_i over the later edits.
    """
    r, n = Y.shape
    inv = torch.eye(r, dtype=torch.float64) / l2  # (r, r) A⁻¹
    cols = []
    for t in range(n):
        y = Y[:, t]  # (r,)
        Ay = inv @ y  # (r,)
        denom = 1.0 + float(y @ Ay)
        cols.append(Ay / denom)  # a_t = (A + y yᵀ)⁻¹ y
        inv = inv - torch.outer(Ay, Ay) / denom  # (A + y yᵀ)⁻¹
    A = torch.stack(cols, 1)  # (r, n)
    G = A.T @ Y  # (n, n): G[t, i] = a_tᵀ y_i
    landed = torch.diagonal(G)  # (n,)
    later = torch.tril(G, diagonal=-1)[:, :first]  # (n, first): rows t > i
    drift = later.pow(2).sum(0).sqrt()  # (first,)
    kept = 1 - drift
    return {
        "landed_first": float(landed[:first].mean()),
        "landed_last100": float(landed[-100:].mean()),
        "kept_first": float(kept.mean()),
        "kept_first_min10": float(kept.quantile(0.1)),
    }


def main() -> None:
    """Print the null-space figures and the linear replay for each layer and setting."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--edits", type=int, default=1000)
    parser.add_argument("--layers", default="0,1,2,3,4,5")
    parser.add_argument("--energies", default="0.001,0.01,0.05,0.1,0.2")
    parser.add_argument("--taus", default="0.05,0.5")
    parser.add_argument("--l2", default="0.5,2,10")
    parser.add_argument("--first", type=int, default=100)
    torch.set_num_threads(get_settings().threads or 1)
    args, console, setup = open_bench(parser)
    model, tok = setup.model, setup.tokenizer
    edits = select_known_edits(
        model, tok, graph_edits(setup.facts, seed=0, distinct_subjects=True), args.edits
    )
    layers = [int(x) for x in args.layers.split(",")]
    ready = setup.prepare("alphaedit", {"layers": layers})  # statistics of every layer asked
    stats, ctx = ready.second_moment, ready.context_templates
    spec = arch_spec(model)
    console.print(f"{len(edits)} edits")
    for layer in layers:
        sm = stats(layer)
        vals, vecs = eigen(sm)
        K = request_keys(model, tok, spec, layer, edits, ctx).T.double()  # (m, n)
        knorm2 = float((K * K).sum(0).mean())
        console.print(
            f"layer {layer}: m={K.shape[0]} eig min {float(vals[0]):.3g} median "
            f"{float(vals.median()):.3g} max {float(vals[-1]):.3g}; mean ‖k‖² {knorm2:.3g}; "
            f"rank(K) {int(torch.linalg.matrix_rank(K))}"
        )
        energies = args.energies.split(",")
        choices = [(f"energy {e}", energy_threshold(sm, float(e))) for e in energies]
        choices += [(f"τ {t}", float(t)) for t in args.taus.split(",") if t]
        for label, tau in choices:
            basis = vecs[:, vals < tau]  # (m, r)
            Y = basis.T @ K  # (r, n): the projected keys, ‖Pk‖ = ‖Ûᵀk‖
            share = float(((Y * Y).sum(0) / (K * K).sum(0)).mean())
            s = torch.linalg.svdvals(Y) if Y.shape[0] else torch.zeros(1)
            eff = int((s > 0.1 * s[0]).sum())
            line = (
                f"  {label:<14} τ {tau:.3g} r {basis.shape[1]:>3} "
                f"‖Pk‖²/‖k‖² {share:.3f} ‖Pk‖² {share * knorm2:.3g} eff.rank {eff}"
            )
            for l2 in [float(x) for x in args.l2.split(",")]:
                sim = simulate(Y, l2, args.first)
                line += (
                    f" | l2 {l2}: landed {sim['landed_first']:.2f}/{sim['landed_last100']:.2f}"
                    f" kept {sim['kept_first']:.2f} (p10 {sim['kept_first_min10']:.2f})"
                )
            console.print(line)


if __name__ == "__main__":
    main()
