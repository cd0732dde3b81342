"""`kgedit stats`: check a statistics corpus, import released second-moment files; and
`kgedit translate-hparams`: an EasyEdit hparams YAML as kgedit overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli_output import AsJson, console, fail, print_fields, print_json

stats_app = typer.Typer(
    help="Second-moment statistics: the corpus they are taken over, released files.",
    no_args_is_help=True,
)


@stats_app.command("corpus")
def check_corpus(
    path: Annotated[
        Path | None,
        typer.Argument(help="text file, JSONL file or folder of .txt files [default: the setting]"),
    ] = None,
    samples: Annotated[int, typer.Option(min=1, help="target sample count")] = 100_000,
    seed: Annotated[int, typer.Option(help="seed of the sample")] = 0,
    as_json: AsJson = False,
) -> None:
    """Read a statistics corpus (default: KGEDIT_STATS_CORPUS) and say what it yields."""
    from editor.errors import EditorError
    from editor.stats_corpus import sample_corpus
    from workers.settings import get_settings

    path = path or get_settings().stats_corpus
    if path is None:
        fail("no corpus given and KGEDIT_STATS_CORPUS is not set (the graph's facts are used)")
    try:
        drawn = sample_corpus(path, samples, seed)
    except EditorError as exc:
        fail(str(exc))
    if as_json:
        print_json(drawn.describe())
    else:
        print_fields(drawn.describe())


@stats_app.command("import")
def import_stats(
    npz: Annotated[Path, typer.Argument(help="released second-moment file (.npz)")],
    model: Annotated[Path, typer.Option(help="model directory the statistics belong to")],
    layer: Annotated[int, typer.Option(help="the layer whose down-projection they describe")],
    as_json: AsJson = False,
) -> None:
    """Import a released ROME/MEMIT second-moment file for one layer of a model.

    The width is checked against the model's MLP; the moment is stored in the statistics
    cache under the model's weights checksum, and every method run on that model uses it.
    """
    from transformers import AutoConfig

    from editor.errors import EditorError
    from editor.loading import weights_sha256
    from editor.stats_import import import_released_stats
    from workers.settings import get_settings

    try:
        key = weights_sha256(model)
        config = AutoConfig.from_pretrained(model, local_files_only=True)
        summary = import_released_stats(npz, config, layer, key, get_settings().cache_dir / "stats")
    except (EditorError, OSError, ValueError) as exc:
        fail(str(exc).splitlines()[0])
    if as_json:
        print_json(summary)
    else:
        print_fields(summary)


def translate_hparams(
    path: Annotated[Path, typer.Argument(help="EasyEdit hparams YAML (ROME, MEMIT, AlphaEdit)")],
    model: Annotated[
        Path | None, typer.Option(help="model directory to check the module names against")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Translate an EasyEdit hparams YAML: the method, the overrides, the dropped fields."""
    from editor.errors import EditorError
    from editor.methods.easyedit import translate_easyedit

    config = None
    try:
        if model is not None:
            from transformers import AutoConfig

            config = AutoConfig.from_pretrained(model, local_files_only=True)
        out = translate_easyedit(path, model=config)
    except (EditorError, OSError, ValueError) as exc:
        fail(str(exc).splitlines()[0])
    if as_json:
        print_json(out.to_dict())
        return
    print_fields({"method": out.method, "overrides": out.overrides})
    for field, why in out.dropped.items():
        console.print(f"dropped {field}: {why}", markup=False, soft_wrap=True)
