"""One preparation pipeline: (method, model, statistics corpus, overrides) → ready settings.

Every caller that runs a method (the job runner, the demo, the CLI audit, the edit and
unlearning runs, every benchmark) prepares it here, so a benchmark measures exactly what
the service runs. `prepare` reads no settings: callers pass the cache root, under which
second moments live in `stats/`, context templates in `context/` and a method's own cached
resources in `<method name>/`.

Steps, each as the method declares it in its registration (`editor.methods.EditMethod`):
1. hyper-parameters: the method's default row for the model (a knowledge model's rows are
   relative to its traced edit layer; else the row of the model's released shape, else of
   its family: `editor.methods.defaults.choose_row`), then the model's calibration when it
   has one (its edit layer and subject position, its tuned settings; `calibration_fields`),
   then the overrides: a user's explicit settings always win;
2. second moments of the edited layers over the corpus (cached on disk), with progress: an
   imported moment (`editor.stats_import`) when one is stored for the layer, else computed
   over the corpus, which is a list of texts (the graph's verbalised facts by default) or a
   corpus file or directory (`editor.stats_corpus`) sampled to `mom2_n_samples` texts;
3. context templates (cached);
4. the method's further resources (`resources(ResourceContext)`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.types import FactText
from editor.arch import arch_spec
from editor.errors import EditorError
from editor.knowledge.corpus import statement
from editor.methods import EditMethod, ResourceContext, get, method_layers
from editor.methods.defaults import KNOWLEDGE, default_hparams, hparams_and_choice, load_overrides
from editor.shapes import PresetChoice
from editor.stats import SecondMoment, layer_second_moment
from editor.stats_corpus import sample_corpus
from editor.stats_import import load_imported
from editor.tokens import fact_token_position

Progress = Callable[[float, str], None]
# Templates per fact in the statistics corpus (the first few cloze forms of its relation).
CORPUS_TEMPLATES = 4


def corpus_statements(facts: Sequence[FactText]) -> list[str]:
    """Return the graph's verbalised facts, the default corpus of the second moment."""
    texts = []
    for f in facts:
        for template in f.templates[:CORPUS_TEMPLATES]:
            texts.append(statement(template, f.subject, f.object))
    return texts


class LayerStats:
    """Second moments by layer, computed on first use over one corpus and cached on disk.

    `progress(fraction, message)` hears how far a computation is; `cancel()` is called at
    the same points and stops it by raising.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        corpus: Sequence[str],
        model_key: str,
        n_samples: int = 20_000,
        cache_dir: Path | None = None,
        progress: Progress | None = None,
        cancel: Callable[[], None] | None = None,
    ) -> None:
        self.model, self.tokenizer, self.corpus = model, tokenizer, list(corpus)
        self.model_key, self.n_samples, self.cache_dir = model_key, n_samples, cache_dir
        self.progress, self.cancel = progress, cancel
        self._by_layer: dict[int, SecondMoment] = {}

    def __call__(self, layer: int) -> SecondMoment:
        """Return E[k kᵀ] of the down-projection input at `layer` (an imported one first)."""
        if layer not in self._by_layer and self.cache_dir is not None:
            module = arch_spec(self.model).down_proj_name(layer)
            imported = load_imported(self.cache_dir, self.model_key, module)
            if imported is not None:
                self._by_layer[layer] = imported
        if layer not in self._by_layer:

            def on_progress(done: int, total: int) -> None:
                if self.cancel is not None:
                    self.cancel()
                if self.progress is not None:
                    self.progress(done / max(1, total), f"statistics, layer {layer}")

            self._by_layer[layer] = layer_second_moment(
                self.model,
                self.tokenizer,
                layer,
                self.corpus,
                n_samples=self.n_samples,
                cache_dir=self.cache_dir,
                model_key=self.model_key,
                on_progress=on_progress,
            )
        return self._by_layer[layer]


@dataclass
class Prepared:
    """A method ready to run: its entry, hyper-parameters and keyword resources for `apply`."""

    method: EditMethod
    hparams: Any
    resources: dict[str, Any]
    preset: PresetChoice | None = None  # which default row the hyper-parameters started from
    corpus: dict[str, Any] | None = None  # the statistics corpus drawn from a file, if any

    @property
    def second_moment(self) -> LayerStats | None:
        """The second moments by layer (None: the method needs none)."""
        return self.resources.get("second_moment")

    @property
    def context_templates(self) -> list[str] | None:
        """The method's context templates (None: it declares none)."""
        return self.resources.get("context_templates")


def calibration_fields(
    method: str, model: Any, calibration: Mapping[str, Any], family: str | None
) -> dict[str, Any]:
    """Return the fields a calibration sets for `method` on a model that is not a knowledge
    model (whose rows follow the calibrated layer already): the edit layer (a spreading
    method's window is shifted to start there), the subject position where the method
    supports it, and the settings tuned for the method."""
    entry = get(method)
    names = set(getattr(entry.hparams_cls, "__dataclass_fields__", {}))
    out: dict[str, Any] = {}
    n_layers = int(model.config.num_hidden_layers)
    layer = int(calibration["edit_layer"])
    if family != KNOWLEDGE and entry.defaults:
        base = default_hparams(method, model, family=family)
        if "layers" in names:
            start = min(base.layers)
            out["layers"] = tuple(
                sorted({min(n_layers - 1, x - start + layer) for x in base.layers})
            )
        elif "layer" in names:
            out["layer"] = layer
    position = fact_token_position(str(calibration["fact_token"]))
    if "fact_token" in names and position in entry.subject_positions:
        out["fact_token"] = calibration["fact_token"]
    tuned = calibration.get("settings", {}).get(method, {})
    out.update({k: v for k, v in tuned.items() if k in names})
    return out


def hparams_for(method: str, model: Any, **options: Any) -> Any:
    """Return step 1 alone: the method's hyper-parameters for `model` (see `prepare`);
    `options` as `hparams_and_preset`."""
    return hparams_and_preset(method, model, **options)[0]


def hparams_and_preset(
    method: str,
    model: Any,
    *,
    overrides: Mapping[str, Any] | str | Path | None = None,
    trace_layer: int | None = None,
    family: str | None = None,
    calibration: Mapping[str, Any] | None = None,
) -> tuple[Any, PresetChoice]:
    """Return `hparams_for` and the default row it started from."""
    if family is None and trace_layer is not None:
        family = KNOWLEDGE
    if calibration is not None:
        if family == KNOWLEDGE:
            trace_layer = int(calibration["edit_layer"])
        overrides = {
            **calibration_fields(method, model, calibration, family),
            **load_overrides(overrides, method),
        }
    return hparams_and_choice(
        method, model, family=family, trace_layer=trace_layer, overrides=overrides
    )


def prepare(
    method: str,
    model: Any,
    tokenizer: Any,
    corpus: Sequence[str] | str | Path,
    *,
    model_key: str,
    cache_dir: Path,
    overrides: Mapping[str, Any] | str | Path | None = None,
    trace_layer: int | None = None,
    family: str | None = None,
    facts: Sequence[FactText] = (),
    progress: Progress | None = None,
    cancel: Callable[[], None] | None = None,
    calibration: Mapping[str, Any] | None = None,
) -> Prepared:
    """Return the method's hyper-parameters and resources for `model`.

    `trace_layer`: the traced edit layer of a knowledge model (its preset's `edit_layer`);
    given, the method's `knowledge` rows apply, else those of `family` (default: the
    model's `config.model_type`). `model_key` names the weights the caches are keyed by
    (the base weights' sha256). `facts` are the graph's facts, for methods whose resources
    draw on them. `corpus`: texts, or the path of a corpus file or directory
    (`editor.stats_corpus`), sampled to the hyper-parameters' `mom2_n_samples`.
    `calibration`: the model's calibration (`editor.calibrate.Calibration` as a dict),
    applied between the defaults and the overrides.
    """
    entry = get(method)
    hparams, choice = hparams_and_preset(
        method,
        model,
        overrides=overrides,
        trace_layer=trace_layer,
        family=family,
        calibration=calibration,
    )
    cache_dir = Path(cache_dir)
    resources: dict[str, Any] = {"model_key": model_key}
    drawn = None
    if entry.needs_second_moment:
        if isinstance(corpus, str | Path):
            drawn = sample_corpus(corpus, int(getattr(hparams, "mom2_n_samples", 20_000)))
            corpus = drawn.texts
        if not corpus:
            raise EditorError(f"{method} needs a non-empty corpus for its second moments")
        stats = LayerStats(
            model,
            tokenizer,
            corpus,
            model_key,
            n_samples=getattr(hparams, "mom2_n_samples", 20_000),
            cache_dir=cache_dir / "stats",
            progress=progress,
            cancel=cancel,
        )
        if getattr(hparams, "mom2_adjustment", True):
            for layer in method_layers(hparams):
                stats(layer)
        resources["second_moment"] = stats
    if cancel is not None:
        cancel()
    if entry.context is not None:
        resources["context_templates"] = entry.context(
            model, tokenizer, hparams, model_key, cache_dir=cache_dir / "context"
        )
    if entry.resources is not None:
        ctx = ResourceContext(model, tokenizer, hparams, model_key, cache_dir / entry.name, facts)
        resources.update(entry.resources(ctx))
    return Prepared(entry, hparams, resources, choice, drawn.describe() if drawn else None)
