"""`kgedit serve` and `kgedit keys …`: run the HTTP API and manage its API keys."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from api.cli_output import AsJson, console, fail, print_json, result
from api.keys import KeyStore, LastAdminError, Role, UnknownKeyError

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


def _keys() -> KeyStore:
    """Open the key store of the configured metadata database."""
    from workers.settings import get_settings

    return KeyStore(get_settings().metadata_db_url)


def serve(
    host: Annotated[str | None, typer.Option(help="address (default: loopback)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: 8000)")] = None,
    workers_: Annotated[int, typer.Option("--workers", help="uvicorn processes")] = 1,
) -> None:
    """Serve the HTTP API with uvicorn (binds 127.0.0.1 unless told otherwise)."""
    import uvicorn

    from workers.settings import get_settings

    settings = get_settings()
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers_,
        log_level="info",
    )


@keys_app.command("create")
def create_key(
    role: Annotated[Role, typer.Option(help="what the key may do")],
    name: Annotated[str, typer.Option(help="who or what holds the key")],
    as_json: AsJson = False,
) -> None:
    """Create an API key and print it (shown only this once)."""
    try:
        key, info = _keys().create(name, role, created_by="cli")
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        print_json({"key": key, "key_id": info.key_id, "role": info.role.value})
        return
    console.print(f"key {info.key_id} ({info.role.value}) for {info.name}:")
    console.print(key, markup=False, highlight=False)
    console.print("[dim]store it now: only its hash is kept[/]")


@keys_app.command("list")
def list_keys(as_json: AsJson = False) -> None:
    """List API keys (never their secrets)."""
    infos = _keys().list()
    if as_json:
        rows = [
            {
                "key_id": k.key_id,
                "name": k.name,
                "role": k.role.value,
                "created_at": k.created_at.isoformat(),
                "revoked": k.revoked_at is not None,
            }
            for k in infos
        ]
        print_json(rows)
        return
    table = Table("key id", "name", "role", "created", "revoked")
    for k in infos:
        revoked = k.revoked_at.isoformat() if k.revoked_at else ""
        table.add_row(k.key_id, k.name, k.role.value, k.created_at.isoformat(), revoked)
    console.print(table)


@keys_app.command("revoke")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="the 8-hex-digit key id")], as_json: AsJson = False
) -> None:
    """Revoke an API key."""
    try:
        info = _keys().revoke(key_id)
    except (UnknownKeyError, LastAdminError) as exc:
        fail(str(exc))
    data = {"key_id": info.key_id, "name": info.name, "revoked": True}
    result(data, as_json, f"revoked {info.key_id} ({info.name})")
