"""`kgedit ask`: what a registered model's current (or a given) ledger version says."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

MAX_NEW_TOKENS = 512
console = Console()
errors = Console(stderr=True)


def ask(
    prompt: Annotated[str, typer.Argument(help="text the model continues")],
    model: Annotated[str, typer.Option("--model", help="registered model name")],
    version: Annotated[
        int | None, typer.Option("--version", help="ledger version id (default: the head)")
    ] = None,
    max_new_tokens: Annotated[
        int, typer.Option(min=1, max=MAX_NEW_TOKENS, help="tokens to generate")
    ] = 16,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON only")] = False,
) -> None:
    """Print the greedy continuation of PROMPT by a model version (weights verified)."""
    from editor.generation import generate
    from workers.errors import WorkersError
    from workers.ledger import get_model, load_version
    from workers.settings import get_settings

    if not prompt.strip():
        errors.print("[bold red]error:[/] the prompt is empty")
        raise typer.Exit(2)
    settings = get_settings()
    try:
        version_id = get_model(model).head_version_id if version is None else version
        lm, tokenizer, _ = load_version(model, version_id, device=settings.device)
    except WorkersError as exc:
        errors.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    (continuation,) = generate(lm, tokenizer, [prompt], max_new_tokens=max_new_tokens)
    if as_json:
        data = {"model": model, "version_id": version_id, "prompt": prompt}
        print(json.dumps({**data, "continuation": continuation}, ensure_ascii=False))
        return
    console.print(
        f"[dim]{escape(model)} v{version_id}:[/] {escape(prompt)}[bold]{escape(continuation)}[/]"
    )
