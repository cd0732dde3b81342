"""`kgedit.Editor`: edit, unlearn, ask, audit, revert and save one model from Python.

The editor runs what the service runs, in process: methods are prepared by
`editor.prepare` (the job runner's pipeline: default rows for the model's family, second
moments over the graph's verbalised facts, context templates, the method's resources),
requests are checked by the job service's `check_job`, edits are applied and scored by
`workers.edit_run.run_edits`, unlearning is scored by `workers.unlearn_eval`, and audits
are `workers.audit.run.run_audit` reports. Results are plain data: floats, lists and
dicts, with the applied `Delta` objects.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from contracts.types import EditRequest, Probe, UnlearnRequest
from editor.delta import Delta
from editor.generation import generate
from editor.knowledge.presets import get_preset
from editor.loading import load_model, save_model, state_checksum, weights_sha256
from editor.methods import default_method
from editor.prepare import Prepared, corpus_statements, prepare
from editor.sequence import EditSequence
from kg.probes import audit_probes, unlearn_probes
from kg.store import GraphStore, open_store
from kg.unlearn_forms import form_probes
from kgedit.requests import checked, own_probes
from workers.audit.run import AuditConfig, run_audit
from workers.edit_run import probes_for, run_edits
from workers.graph_models import REPORT_FILE, graph_facts, knowledge_preset
from workers.settings import get_settings
from workers.unlearn_eval import answered, form_rates

EDITS_FILE = "kgedit_edits.json"


class Editor:
    """One model, loaded once, edited and unlearned in place; every change is revertible.

    `graph`: a graph store or its URL (e.g. ``sqlite:///kg.sqlite``). With a graph, the
    second moments come from its verbalised facts, requests that name a `relation` are
    scored on probes derived from it, and `audit` works; without one, pass `corpus` (texts,
    or the path of a corpus file or folder: `editor.stats_corpus`) for the methods that need
    second moments, and requests are scored on their own prompts. An EasyEdit hparams YAML
    becomes a method and overrides with `kgedit.easyedit_hparams(path)`.
    A knowledge model (`kgedit train-model`) is recognised by its training report, whose
    preset fixes the layer the methods edit.
    """

    def __init__(
        self,
        model_dir: str | Path,
        graph: GraphStore | str | None = None,
        *,
        corpus: Iterable[str] | str | Path | None = None,
        device: str | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        settings = get_settings()
        self.model_dir = Path(model_dir)
        self.model, self.tokenizer = load_model(self.model_dir, device=device or settings.device)
        self.model_key = weights_sha256(self.model_dir)
        self.base_checksum = state_checksum(self.model)
        self.graph = open_store(graph) if isinstance(graph, str) else graph
        self.facts = graph_facts(self.graph) if self.graph is not None else []
        if corpus is None:  # KGEDIT_STATS_CORPUS, else the graph's verbalised facts
            corpus = settings.stats_corpus or corpus_statements(self.facts)
        self.corpus = corpus if isinstance(corpus, str | Path) else list(corpus)
        preset = knowledge_preset(self.model_dir)
        self.trace_layer = get_preset(preset).edit_layer if preset else None
        self.cache_dir = Path(cache_dir) if cache_dir is not None else settings.cache_dir
        self._prepared: dict[str, Prepared] = {}
        self._sequences: list[EditSequence] = []
        self._requests: list[EditRequest | UnlearnRequest] = []

    # -- state ---------------------------------------------------------------------------

    @property
    def deltas(self) -> list[Delta]:
        """Return every applied delta, oldest first."""
        return [d for seq in self._sequences for d in seq.deltas]

    @property
    def requests(self) -> list[EditRequest | UnlearnRequest]:
        """Return every applied request, in order."""
        return list(self._requests)

    def checksum(self) -> str:
        """Return the sha256 of the current weights (equal to `base_checksum` when unedited)."""
        return state_checksum(self.model)

    @contextmanager
    def _base_weights(self) -> Iterator[None]:
        """Revert every applied delta for the block, then re-apply them in order."""
        deltas = self.deltas
        for delta in reversed(deltas):
            delta.revert(self.model)
        try:
            yield
        finally:
            for delta in deltas:
                delta.apply(self.model)

    def _prepare(self, method: str, hparams: Mapping[str, Any]) -> Prepared:
        """Return `method` prepared on the base weights (cached per method and overrides)."""
        key = json.dumps([method, hparams], sort_keys=True, default=str)
        if key not in self._prepared:
            with self._base_weights():  # caches are keyed by the base weights
                self._prepared[key] = prepare(
                    method,
                    self.model,
                    self.tokenizer,
                    self.corpus,
                    model_key=self.model_key,
                    cache_dir=self.cache_dir,
                    overrides=dict(hparams) or None,
                    trace_layer=self.trace_layer,
                    facts=self.facts,
                )
        return self._prepared[key]

    def _sequence(self, ready: Prepared) -> EditSequence:
        """Return the newest sequence if it runs the same prepared method, else a new one."""
        last = self._sequences[-1] if self._sequences else None
        if last is not None and last.method is ready.method and last.hparams == ready.hparams:
            return last
        seq = EditSequence(
            self.model, self.tokenizer, ready.method, ready.hparams, **ready.resources
        )
        self._sequences.append(seq)
        return seq

    # -- changes -------------------------------------------------------------------------

    def edit(
        self,
        requests: Sequence[Mapping[str, Any] | EditRequest],
        method: str | None = None,
        *,
        hparams: Mapping[str, Any] | None = None,
        batch_size: int | None = None,
    ) -> dict[str, Any]:
        """Apply edit requests (default: one batch) and keep them; return what changed.

        Returns ``{"method", "request_ids", "deltas", "seconds", "metrics", "preset"}``;
        `metrics` maps each probe kind (rewrite, paraphrase, neighbour, ...) to ``{"n",
        "before", "after", "kept"}`` (shares of probes the model gets right); `preset` names
        the default row the hyper-parameters started from and its source.
        """
        method = method or default_method("edit")
        spec = checked("edit", method, requests, hparams, batch_size, len(self._requests))
        ready = self._prepare(method, spec.hparams)
        edits = list(spec.requests)
        probes = [self._edit_probes(r, edits) for r in edits]
        run = run_edits(
            self.model,
            self.tokenizer,
            edits,
            probes,
            ready,
            mode="sequential",
            batch_size=spec.batch_size,
            sequence=self._sequence(ready),
        )
        self._requests += edits
        return {
            "method": method,
            "request_ids": [r.request_id for r in edits],
            "deltas": run.deltas,
            "seconds": float(sum(run.seconds)),
            "metrics": run.rates(),
            "preset": ready.preset.to_dict() if ready.preset else None,
        }

    def _edit_probes(self, request: EditRequest, batch: Sequence[EditRequest]) -> list[Probe]:
        """Return the graph's probes of an edit naming a relation, else its own probes."""
        if self.graph is not None and request.relation is not None:
            return probes_for(self.graph, self.tokenizer, request, batch=batch)
        return own_probes(request)

    def unlearn(
        self,
        requests: Sequence[Mapping[str, Any] | UnlearnRequest],
        method: str | None = None,
        *,
        hparams: Mapping[str, Any] | None = None,
        batch_size: int | None = None,
    ) -> dict[str, Any]:
        """Unlearn concepts (default: one batch) and keep the change; return what changed.

        Returns ``{"method", "request_ids", "deltas", "seconds", "metrics"}``. With a graph,
        `metrics` holds the forget and retain rates per form (cloze, question, ...; see
        `workers.unlearn_eval.form_rates`); without one, ``{"forget": {"n", "before",
        "after"}}``: the share of the requests' own `forms` the model answers.
        """
        method = method or default_method("unlearn")
        spec = checked("unlearn", method, requests, hparams, batch_size, len(self._requests))
        ready = self._prepare(method, spec.hparams)
        concepts = list(spec.requests)
        if self.graph is not None:
            probes = form_probes(self.graph, concepts)
        else:
            probes = [p for r in concepts for p in r.forms]
        before = answered(self.model, self.tokenizer, probes)
        seq = self._sequence(ready)
        start = len(seq)
        t0 = time.perf_counter()
        seq.apply(concepts, batch_size=spec.batch_size)
        seconds = time.perf_counter() - t0
        after = answered(self.model, self.tokenizer, probes)
        self._requests += concepts
        if self.graph is not None:
            metrics = form_rates(probes, before, after)
        else:
            n = len(probes)
            share = (lambda xs: sum(xs) / n) if n else (lambda xs: float("nan"))
            metrics = {"forget": {"n": n, "before": share(before), "after": share(after)}}
        return {
            "method": method,
            "request_ids": [r.request_id for r in concepts],
            "deltas": list(seq.deltas[start:]),
            "seconds": seconds,
            "metrics": metrics,
            "preset": ready.preset.to_dict() if ready.preset else None,
        }

    def revert(self) -> dict[str, Any]:
        """Revert every change, newest first; return how many and whether the weights are
        the base weights again, bit for bit."""
        n = 0
        for seq in reversed(self._sequences):
            n += len(seq.revert_all())
        self._sequences.clear()
        self._requests.clear()
        checksum = self.checksum()
        return {"reverted": n, "checksum": checksum, "matches_base": checksum == self.base_checksum}

    # -- reading -------------------------------------------------------------------------

    def ask(self, prompt: str | Sequence[str], max_new_tokens: int = 16) -> str | list[str]:
        """Return the greedy continuation of a prompt (or of each of a list of prompts)."""
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        out = generate(self.model, self.tokenizer, prompts, max_new_tokens=max_new_tokens)
        return out[0] if isinstance(prompt, str) else out

    def audit(self, config: AuditConfig | None = None, **fields: Any) -> dict[str, Any]:
        """Audit the current version against the graph: every applied request's probes and a
        whole-graph sample, scored on the base weights and now (the audit report, a dict).

        `fields` override `workers.audit.run.AuditConfig` fields (``sample_size=200``).
        """
        if self.graph is None:
            raise ValueError("an audit derives its probes from a graph: Editor(model, graph=URL)")
        config = dataclasses.replace(config or AuditConfig(), **fields)
        edits = [r for r in self._requests if isinstance(r, EditRequest)]
        concepts = [r for r in self._requests if isinstance(r, UnlearnRequest)]
        changes = audit_probes(self.graph, edits, config.probes) if edits else []
        if concepts:
            changes += unlearn_probes(self.graph, concepts, config.probes)
        info = {"path": str(self.model_dir), "weights_sha256": self.model_key}
        return run_audit(
            self.model,
            self.tokenizer,
            self.graph,
            changes,
            self.deltas,
            applied=True,
            config=config,
            model_info=info,
        )

    def save(self, out_dir: str | Path, *, overwrite: bool = False) -> dict[str, Any]:
        """Write the edited model as an HF directory, with its deltas and what they applied.

        The directory holds the merged weights (safetensors), `deltas/NNNN-<method>.safetensors`
        (each revertible on the base weights, `editor.delta.Delta.load`) and `kgedit_edits.json`
        (base, requests, delta files); a knowledge model keeps its training report. Returns
        ``{"path", "weights_sha256", "deltas"}``.
        """
        out = Path(out_dir).expanduser().resolve()
        if out.exists() and not overwrite:
            raise FileExistsError(f"{out} exists; pass overwrite=True to replace it")
        if out.exists():
            shutil.rmtree(out)
        save_model(self.model, self.tokenizer, out)
        (out / "deltas").mkdir()
        files = []
        for i, delta in enumerate(self.deltas):
            name = f"deltas/{i:04d}-{delta.method}.safetensors"
            delta.save(out / name)
            files.append(name)
        if (self.model_dir / REPORT_FILE).is_file():
            shutil.copy2(self.model_dir / REPORT_FILE, out / REPORT_FILE)
        record = {
            "base": {"path": str(self.model_dir), "weights_sha256": self.model_key},
            "requests": [r.request_id for r in self._requests],
            "deltas": files,
        }
        (out / EDITS_FILE).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        return {"path": str(out), "weights_sha256": weights_sha256(out), "deltas": files}
