"""`kgedit ask`: what a registered model's current (or a given) ledger version says."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from api.cli_output import AsJson, console, fail, print_json

MAX_NEW_TOKENS = 512


def ask(
    prompt: Annotated[str, typer.Argument(help="text the model continues")],
    model: Annotated[str, typer.Option("--model", help="registered model name")],
    version: Annotated[
        int | None, typer.Option("--version", help="ledger version id (default: the head)")
    ] = None,
    max_new_tokens: Annotated[
        int, typer.Option(min=1, max=MAX_NEW_TOKENS, help="tokens to generate")
    ] = 16,
    as_json: AsJson = False,
) -> None:
    """Print the greedy continuation of PROMPT by a model version (weights verified)."""
    from editor.generation import generate
    from workers.errors import WorkersError
    from workers.ledger import get_model, load_version
    from workers.settings import get_settings

    if not prompt.strip():
        fail("the prompt is empty")
    settings = get_settings()
    try:
        version_id = get_model(model).head_version_id if version is None else version
        lm, tokenizer, _ = load_version(model, version_id, device=settings.device)
    except WorkersError as exc:
        fail(str(exc))
    (continuation,) = generate(lm, tokenizer, [prompt], max_new_tokens=max_new_tokens)
    if as_json:
        data = {"model": model, "version_id": version_id, "prompt": prompt}
        print_json({**data, "continuation": continuation})
        return
    console.print(
        f"[dim]{escape(model)} v{version_id}:[/] {escape(prompt)}[bold]{escape(continuation)}[/]"
    )
