"""Real widths on the CPU: a random-weight GPT-2-medium-shaped model through the whole pipeline.

The model is built locally from a config (24 layers, width 1,024, MLP 4,096, vocabulary
50,257; nothing is downloaded) with random weights, so the figures are about time and memory,
not edit quality. The statistics corpus is this repository's own prose (the paragraphs of
docs/), written to a JSONL file and read through `editor.stats_corpus`; the tokenizer is a
BPE trained on it. Each step goes through `editor.prepare`, as the service runs it:

1. build the model;
2. ROME prepared: the preset (gpt2-medium, recognised by shape), the second moment of its
   layer over the corpus, the context templates;
3. one ROME edit;
4. MEMIT prepared: the second moments of its further layers (its last layer's is cached);
5. one MEMIT batch of `--batch` edits.

Wall time and peak resident memory (RSS, sampled every 20 ms) are recorded per step.
Writes bench/results/real_width.json and the `real-width` block of docs/results/real-width.md.

    OMP_NUM_THREADS=1 .venv/bin/python bench/real_width.py [--samples 200] [--batch 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from bench.common import REPO, machine, today, update_results, write_json
from contracts.types import EditRequest
from editor.prepare import prepare
from editor.sequence import EditSequence

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
SUBJECTS = ["Marie Curie", "Ada Lovelace", "Alan Turing", "Grace Hopper", "Niels Bohr",
            "Lise Meitner", "Emmy Noether", "Srinivasa Ramanujan", "Rosalind Franklin",
            "Enrico Fermi", "Max Planck", "Dorothy Hodgkin"]  # fmt: skip
CITIES = ["Paris", "London", "Tokyo", "Berlin", "Rome", "Madrid", "Vienna", "Oslo"]


def rss_bytes() -> int:
    """Return this process's resident set size in bytes."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE_SIZE


class PeakRss:
    """Samples RSS in a thread; `step()` measures one block's wall time and peak RSS."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval, self.peak, self.rows = interval, 0, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    @contextmanager
    def step(self, name: str, **info: Any) -> Iterator[dict[str, Any]]:
        """Time the block and record its peak RSS (and `info`) under `name`."""
        self.peak = rss_bytes()
        row: dict[str, Any] = {"step": name, **info}
        t0 = time.perf_counter()
        yield row
        row["seconds"] = time.perf_counter() - t0
        row["peak_rss_mib"] = max(self.peak, rss_bytes()) / 2**20
        self.rows.append(row)
        print(f"{name}: {row['seconds']:.1f} s, peak RSS {row['peak_rss_mib']:.0f} MiB", flush=True)

    def close(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join()


def docs_paragraphs() -> list[str]:
    """Return the prose paragraphs of docs/ (no tables, code or headings), in file order."""
    out = []
    for page in sorted((REPO / "docs").rglob("*.md")):
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
        for block in text.split("\n\n"):
            lines = [ln.strip() for ln in block.splitlines()]
            if any(ln.startswith(("|", "#", "<!--")) for ln in lines):
                continue
            para = " ".join(ln for ln in lines if ln)
            if len(para.split()) >= 8:
                out.append(para)
    return out


def requests(n: int) -> list[EditRequest]:
    """Return `n` edit requests on distinct subjects."""
    return [
        EditRequest(subject=s, prompt="{} was born in", target_new=CITIES[i % len(CITIES)],
                    request_id=f"e{i}")
        for i, s in enumerate(SUBJECTS[:n])
    ]  # fmt: skip


def gpt2_medium(vocab_size: int) -> torch.nn.Module:
    """Return a random-weight GPT-2-medium-shaped model, built from a config."""
    import transformers as tf

    config = tf.GPT2Config(n_layer=24, n_embd=1024, n_head=16, n_positions=1024,
                           vocab_size=vocab_size, bos_token_id=0, eos_token_id=0)  # fmt: skip
    torch.manual_seed(0)
    return tf.GPT2LMHeadModel(config).eval()


def run(args: argparse.Namespace, meter: PeakRss, work: Path) -> dict[str, Any]:
    """Run every step; return the results."""
    from editor.knowledge.tokenizer import train_tokenizer

    paragraphs = docs_paragraphs()
    corpus = work / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"text": p}) + "\n" for p in paragraphs))
    tok = train_tokenizer(paragraphs, args.vocab, bos=True)
    with meter.step("build model (random weights)") as row:
        model = gpt2_medium(50257)
        row["parameters"] = sum(p.numel() for p in model.parameters())
    common = {"mom2_n_samples": args.samples}
    if args.v_steps:
        common["v_num_grad_steps"] = args.v_steps
    cache = work / "cache"

    def prepared(method: str) -> Any:
        return prepare(method, model, tok, corpus, model_key="bench-real-width",
                       cache_dir=cache, overrides=dict(common))  # fmt: skip

    def edit(ready: Any, batch: list[EditRequest], row: dict[str, Any]) -> None:
        seq = EditSequence(model, tok, ready.method, ready.hparams, **ready.resources)
        seq.apply(batch)
        # ROME: one info per edit with its v* losses; MEMIT: one per batch, with `targets`
        row["v_steps"] = [
            len(t["losses"]) for info in seq.infos for t in info.get("targets", [info])
        ]
        seq.revert_all()

    results: dict[str, Any] = {"corpus_paragraphs": len(paragraphs)}
    for method, batch in (("rome", requests(1)), ("memit", requests(args.batch))):
        with meter.step(f"{method}: prepare (statistics, templates)") as row:
            ready = prepared(method)
            layers = getattr(ready.hparams, "layers", None) or (ready.hparams.layer,)
            row["layers"] = list(layers)
            row["keys"] = [ready.second_moment(x).count for x in layers]
        results[method] = {"preset": ready.preset.to_dict(), "corpus": ready.corpus,
                           "hparams": ready.hparams.to_dict()}  # fmt: skip
        label = "one edit" if len(batch) == 1 else f"one batch of {len(batch)} edits"
        with meter.step(f"{method}: {label}") as row:
            edit(ready, batch, row)
    return results


def markdown(data: dict[str, Any]) -> str:
    """Return the results-page block."""
    rome, memit = data["results"]["rome"], data["results"]["memit"]
    lines = [
        f"Measured {data['date']} on {data['machine']} (2 cores, shared with other work; "
        f"`uptime` load before the run: {data['load_before']}, after: {data['load_after']}).",
        "",
        f"Random-weight GPT-2-medium-shaped model ({data['parameters']:,} parameters: 24 "
        "layers, width 1,024, MLP 4,096, vocabulary 50,257), float32, "
        f"OMP_NUM_THREADS={data['omp_threads']}. Statistics corpus: "
        f"{rome['corpus']['samples']} of the {rome['corpus']['available']} paragraphs of "
        "docs/ (JSONL), sampled to `mom2_n_samples`. ROME preset "
        f"`{rome['preset']['row']}` ({rome['preset']['note']}): layer "
        f"{rome['hparams']['layer']}; MEMIT row `{memit['preset']['row']}` "
        f"({memit['preset']['note']}): layers {memit['hparams']['layers']}; "
        f"v* steps {rome['hparams']['v_num_grad_steps']} (random weights never reach the "
        "early stop, so every edit runs them all).",
        "",
        "| step | wall time (s) | peak RSS (MiB) | detail |",
        "|---|---|---|---|",
    ]
    for row in data["steps"]:
        detail = ", ".join(
            f"{k} {v}" for k, v in row.items() if k not in ("step", "seconds", "peak_rss_mib")
        )
        lines.append(
            f"| {row['step']} | {row['seconds']:.1f} | {row['peak_rss_mib']:,.0f} | {detail} |"
        )
    return "\n".join(lines) + "\n"


def load() -> str:
    """Return the load averages `uptime` reports."""
    out = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    return out.split("load average:")[-1].strip()


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark and write its JSON and results-page block."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=200, help="statistics corpus samples")
    parser.add_argument("--batch", type=int, default=10, help="edits in the MEMIT batch")
    parser.add_argument("--vocab", type=int, default=8192, help="tokenizer vocabulary")
    parser.add_argument("--v-steps", type=int, default=None, help="v* steps (default: preset)")
    parser.add_argument("--no-results-page", action="store_true")
    args = parser.parse_args(argv)
    meter = PeakRss()
    before = load()
    with tempfile.TemporaryDirectory() as tmp:
        results = run(args, meter, Path(tmp))
    meter.close()
    data = {
        "date": today(),
        "machine": machine(),
        "omp_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
        "load_before": before,
        "load_after": load(),
        "parameters": meter.rows[0]["parameters"],
        "samples": args.samples,
        "steps": meter.rows,
        "results": results,
    }
    write_json("real_width", data)
    if not args.no_results_page:
        update_results("real-width", markdown(data))
    return data


if __name__ == "__main__":
    main()
