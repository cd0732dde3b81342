"""`kgedit concept-anchor`: a curator's override of a concept's suggested redirect anchor."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli_output import AsJson, fail, result


def concept_anchor(
    concept_id: Annotated[str, typer.Argument(help="the concept's id")],
    anchor_id: Annotated[
        str | None, typer.Argument(help="entity id of the new anchor (omit with --clear)")
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="remove the anchor")] = False,
    reason: Annotated[str, typer.Option(help="why (kept in the change log)")] = "curation",
    who: Annotated[str, typer.Option(help="the curator, for the change log")] = "cli",
    graph: Annotated[str | None, typer.Option(help="graph store URL (SQL or Bolt)")] = None,
    as_json: AsJson = False,
) -> None:
    """Set (or --clear) the redirect anchor of a concept, overriding the suggestion."""
    from kg.errors import KGError
    from kg.store import open_store
    from workers.settings import get_settings

    if (anchor_id is None) == (not clear):
        fail("give exactly one of an anchor id or --clear")
    try:
        store = open_store(graph or get_settings().graph_store_url)
        concept = store.set_concept_redirect(concept_id, anchor_id, who=who, why=reason)
    except KGError as exc:
        fail(str(exc))
    data = {"id": concept.id, "name": concept.name, "redirect_to": concept.redirect_to}
    result(data, as_json, f"{concept.id} ({concept.name}) -> {concept.redirect_to or 'no anchor'}")
