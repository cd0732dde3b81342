"""Why does ROCR forget little on the knowledge models? Measure where the redirect holds.

    python bench/rocr_diagnose.py [--preset tiny-forms] [--limit 40] [--concepts 8]

Per concept and variant (default hyper-parameters, all layers, no null-space projector, ...):

* `key_err`: relative error ‖z_edit(concept) − z(anchor)‖ / ‖z(anchor)‖ at the output of the
  last edited block, the concept's last token, meaned over ROCR's six task contexts (what the
  closed form targets);
* `probe_err`: the same per forget probe, in the probe's own prompt (the name replaced by the
  anchor's for z(anchor)), before and after the edit: how much of the redirect carries over to
  the prompts the forms ask;
* `null_share`: ‖P k‖² / ‖k‖², the share of the concept's key in the projector's null space;
* forget rate per form (probes answered before, not after).

`oracle@L`: no weight edit; the concept's last-token state at the output of each block in L
is *replaced* by the anchor's state in the same prompt (exact activation patching, probe by
probe). It bounds what any redirect at the last name token can do: if the oracle does not
forget, the model reads the concept from elsewhere (its other name tokens).

Writes bench/results/rocr_diagnose.json (no results-page block).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from bench.common import machine, today, write_json
from editor.arch import arch_spec, get_module
from editor.loading import state_checksum
from editor.methods.alphaedit import null_space_projector
from editor.methods.rocr import mean_state_at_name, task_contexts
from editor.sequence import EditSequence
from editor.tokens import encode_prompt_targets, subject_last_token_index
from kg.concepts import unlearn_request
from kg.unlearn_forms import FORGET, FORMS, form_probes
from kg.view import GraphView
from workers.unlearn_eval import answered, form_rates
from workers.unlearn_run import concept_bench


def probe_template(prompt: str, name: str) -> str | None:
    """Return the prompt with the name's first occurrence as `{}` (None if absent or braces)."""
    at = prompt.find(name)
    if at < 0 or "{" in prompt or "}" in prompt:
        return None
    return prompt[:at] + "{}" + prompt[at + len(name) :]


def rel_err(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    """Return ‖a − b‖ / ‖b‖ per row; a, b (n, d)."""
    return ((a - b).norm(dim=1) / b.norm(dim=1).clamp(min=1e-12)).tolist()


def _replace_at(pos: int, vec: torch.Tensor):
    """Return a forward hook that replaces a block's output at `pos` (all rows) with `vec`."""

    def hook(_module, _inputs, output):
        hidden = output[0] if isinstance(output, tuple) else output  # (B, L, d)
        hidden = hidden.clone()
        hidden[:, pos] = vec.to(hidden.dtype)
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    return hook


@torch.no_grad()
def mean_logprobs(model, tok, prompt: str, candidates: list[str]) -> torch.Tensor:
    """Return each candidate's mean token log-probability after `prompt`; shape (n,)."""
    batch = encode_prompt_targets(tok, [prompt] * len(candidates), candidates)
    logits = model(**batch.model_inputs(), use_cache=False).logits  # (n, L, V)
    logp = logits.float().log_softmax(-1)
    rows = torch.arange(len(candidates))[:, None]  # (n, 1)
    picked = logp[rows, batch.pred_positions, batch.target_ids]  # (n, T)
    mask = batch.target_mask.float()  # (n, T)
    return (picked * mask).sum(1) / mask.sum(1).clamp(min=1)


def oracle_answered(model, tok, probe, name: str, anchor: str, layers) -> tuple[bool, bool]:
    """Return (answered unpatched, answered with the anchor's state patched in at `layers`)."""
    cands = [probe.expected, *[r for r in (probe.unexpected, *probe.rivals) if r]]
    plain = mean_logprobs(model, tok, probe.prompt, cands)
    before = bool(plain[0] > plain[1:].max())
    template = probe_template(probe.prompt, name)
    if template is None:
        return before, before
    spec = arch_spec(model)
    pos = subject_last_token_index(tok, template, name)
    handles = []
    for layer in layers:
        block = spec.layer_name(layer)
        vec = mean_state_at_name(model, tok, block, [template], [anchor], False)[0]  # (d,)
        handles.append(get_module(model, block).register_forward_hook(_replace_at(pos, vec)))
    try:
        patched = mean_logprobs(model, tok, probe.prompt, cands)
    finally:
        for h in handles:
            h.remove()
    return before, bool(patched[0] > patched[1:].max())


def swap_answered(model, tok, probe, name: str, anchor: str) -> tuple[bool, bool]:
    """Return (answered, answered with the anchor's whole name written in place of the name)."""
    cands = [probe.expected, *[r for r in (probe.unexpected, *probe.rivals) if r]]
    plain = mean_logprobs(model, tok, probe.prompt, cands)
    swapped = mean_logprobs(model, tok, probe.prompt.replace(name, anchor), cands)
    return bool(plain[0] > plain[1:].max()), bool(swapped[0] > swapped[1:].max())


def run_oracle(model, tok, view, concepts, layers) -> dict:
    """Return per-form forget rates of exact last-token patching at `layers` (None: name swap)."""
    probes, before, after = [], [], []
    for concept in concepts:
        request = unlearn_request(view, concept)
        for p in form_probes(view, [request]):
            if p.meta.get("role") != FORGET:
                continue
            if layers is None:
                b, a = swap_answered(model, tok, p, request.concept, request.anchor)
            else:
                b, a = oracle_answered(model, tok, p, request.concept, request.anchor, layers)
            probes.append(p)
            before.append(b)
            after.append(a)
    rates = form_rates(probes, before, after, 1)
    return {
        "layers": None if layers is None else list(layers),
        "forget_rate": rates["forget_rate"],
        "forget_by_form": {f: rates["forms"].get(f, {}).get("forget_rate") for f in FORMS},
        "known": {f: rates["forms"].get(f, {}).get("forget_known") for f in FORMS},
    }


FORM_STARTERS = (
    "",
    "True or false:",
    "Question: What is",
    "Question: Where was",
    "What is the nationality of",
    "Who is",
)


def variants(n_layers: int) -> dict[str, dict]:
    """Return the hyper-parameter overrides each variant applies to the knowledge defaults."""
    every = tuple(range(n_layers))
    return {
        "default": {},
        "l2=1": {"l2": 1.0},
        "all-layers": {"layers": every},
        "no-projector": {"nullspace_threshold": 1e12},
        "all-layers+no-projector": {"layers": every, "nullspace_threshold": 1e12},
        # prefixes the knowledge model was trained on (`contracts.forms`), not chat starters
        "form-starters": {"starters": FORM_STARTERS},
    }


def main() -> None:
    """Run every variant on the same concepts and write the diagnostics."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--preset", default="tiny-forms")
    ap.add_argument("--concepts", type=int, default=8)
    ap.add_argument("--only", nargs="*", help="variants to run (default: all)")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("KGEDIT_THREADS", "1")))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    bench = concept_bench(args.limit, args.preset, args.concepts)
    model, tok, base_sha, concepts = bench.model, bench.tokenizer, bench.base_sha, bench.concepts
    view = GraphView(bench.store)
    base = bench.prepare("rocr")  # as the service prepares it; further layers on demand
    stats, base_hp = base.second_moment, base.hparams
    spec = arch_spec(model)
    n_layers = model.config.n_layer
    out: dict[str, dict] = {}
    oracle = {}
    for layers in ((base_hp.layers[-1],), tuple(range(n_layers)), None):
        key = "name-swap" if layers is None else "oracle@" + ",".join(map(str, layers))
        oracle[key] = run_oracle(model, tok, view, concepts, layers)
        print(key, oracle[key], flush=True)
    for vname, override in variants(n_layers).items():
        if args.only and vname not in args.only:
            continue
        hp = replace(base_hp, **override)
        z_name = spec.layer_name(hp.layers[-1])
        contexts = task_contexts(hp)
        all_probes, before, after, rows = [], [], [], []
        t_start = time.perf_counter()
        for concept in concepts:
            request = unlearn_request(view, concept)
            probes = [p for p in form_probes(view, [request]) if p.meta.get("role") == FORGET]
            templates = [probe_template(p.prompt, request.concept) for p in probes]
            used = [(p, t) for p, t in zip(probes, templates, strict=True) if t is not None]
            anchor_z = [
                mean_state_at_name(model, tok, z_name, [t], [request.anchor], False)[0]
                for _, t in used
            ]
            cur_z = [
                mean_state_at_name(model, tok, z_name, [t], [request.concept], False)[0]
                for _, t in used
            ]
            key_k = {
                layer: mean_state_at_name(
                    model, tok, spec.down_proj_name(layer), contexts, [request.concept],
                    True,
                )[0]
                for layer in hp.layers
            }  # fmt: skip
            null_share = {}
            for layer, k in key_k.items():
                P = null_space_projector(stats(layer), hp.nullspace_threshold).float()  # (m, m)
                null_share[str(layer)] = float((P @ k).norm() ** 2 / k.norm() ** 2)
            b = answered(model, tok, probes)
            seq = EditSequence(model, tok, "rocr", hp, second_moment=stats)
            deltas = seq.apply([request])
            a = answered(model, tok, probes)
            edit_z = [
                mean_state_at_name(model, tok, z_name, [t], [request.concept], False)[0]
                for _, t in used
            ]
            seq.revert_all()
            before_err = rel_err(torch.stack(cur_z), torch.stack(anchor_z)) if used else []
            after_err = rel_err(torch.stack(edit_z), torch.stack(anchor_z)) if used else []
            by_form: dict[str, list[tuple[float, float]]] = {}
            for (p, _), e0, e1 in zip(used, before_err, after_err, strict=True):
                by_form.setdefault(p.meta["form"], []).append((e0, e1))
            rows.append(
                {
                    "concept": request.concept,
                    "anchor": request.anchor,
                    "key_err": deltas[0].meta["final_relative_error"],
                    "null_space_dims": deltas[0].meta["null_space_dims"],
                    "null_share": null_share,
                    "probe_err": {
                        f: {
                            "before": sum(x for x, _ in v) / len(v),
                            "after": sum(y for _, y in v) / len(v),
                        }
                        for f, v in by_form.items()
                    },
                }
            )
            all_probes += probes
            before += b
            after += a
        assert state_checksum(model) == base_sha, "ROCR did not revert"
        rates = form_rates(all_probes, before, after, 1)
        out[vname] = {
            "hparams": {"layers": list(hp.layers), "l2": hp.l2, "tau": hp.nullspace_threshold},
            "forget_rate": rates["forget_rate"],
            "forget_by_form": {f: rates["forms"].get(f, {}).get("forget_rate") for f in FORMS},
            "mean_key_err": sum(r["key_err"] for r in rows) / len(rows),
            "mean_probe_err": _mean_probe(rows),
            "mean_null_share": {
                layer: sum(r["null_share"][layer] for r in rows) / len(rows)
                for layer in rows[0]["null_share"]
            },
            "seconds": time.perf_counter() - t_start,
            "concepts": rows,
        }
        print(vname, {k: v for k, v in out[vname].items() if k != "concepts"}, flush=True)
    write_json(
        "rocr_diagnose",
        {
            "date": today(),
            "machine": machine(),
            "load_average": os.getloadavg(),
            "preset": args.preset,
            "graph_cases": args.limit,
            "oracle": oracle,
            "variants": out,
        },
    )


def _mean_probe(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Return the before/after probe-context error per form, meaned over concepts."""
    acc: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        for f, v in r["probe_err"].items():
            acc.setdefault(f, []).append((v["before"], v["after"]))
    return {
        f: {"before": sum(x for x, _ in v) / len(v), "after": sum(y for _, y in v) / len(v)}
        for f, v in acc.items()
    }


if __name__ == "__main__":
    main()
