"""The console's pages under `/ui`: sign-in, search, entities, change sets, review, jobs,
models and audits. Every page reads and writes through the API's route functions
(`api.console.calls.call`), under the same roles; every POST carries the session's CSRF token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from api.console import session as sessions
from api.console.calls import call, may
from api.console.drawing import layout
from api.errors import ApiError, error_of
from api.routes import audits, changesets, graph, jobs, models
from api.schemas.changesets import (
    PAYLOAD_FIELD_TYPES,
    ChangeSetCreate,
    OperationsUpdate,
    ReplanBody,
    ReviewBody,
)
from api.schemas.common import MAX_DB_ID
from api.schemas.jobs import RollbackBody
from kg.curation import PAYLOAD_FIELDS
from kg.planner import intents
from kg.types import OperationKind
from workers.jobs.states import TERMINAL

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
REPORT_CSP = audits.REPORT_CSP + "; frame-ancestors 'self'"
KIND_LABELS = {
    OperationKind.ADD_FACT: "Add a fact",
    OperationKind.RETRACT_FACT: "Retract a fact",
    OperationKind.REPLACE_OBJECT: "Replace a fact's object",
    OperationKind.ADD_ALIAS: "Add an alias",
    OperationKind.MARK_FORGET: "Mark a concept to forget",
    OperationKind.ADD_CONCEPT: "Add a concept",
}
NAV = [
    ("Search", "/ui/search", graph.list_entities),
    ("Change sets", "/ui/changesets", changesets.list_change_sets),
    ("Jobs", "/ui/jobs", jobs.list_jobs),
    ("Models", "/ui/models", models.list_models),
    ("Audits", "/ui/audits", audits.list_audits),
]


class SignInRequiredError(Exception):
    """The page needs a session and the request has none."""


class ConsoleRoute(APIRoute):
    """A console route: no session goes to sign-in; an API error becomes an HTML page with
    the API's status and message."""

    def get_route_handler(self) -> Any:
        """Return the route's handler wrapped in the console's error pages."""
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequiredError:
                return redirect("/ui/login")
            except RequestValidationError as exc:
                return error_page(request, ApiError(422, "the request is not valid", exc.errors()))
            except Exception as exc:
                mapped = error_of(exc)
                if mapped is None:
                    raise
                return error_page(request, mapped)

        return console_handler


router = APIRouter(prefix="/ui", include_in_schema=False, route_class=ConsoleRoute)


def _session(request: Request) -> sessions.Session:
    """Return the request's session; SignInRequiredError (a redirect to sign-in) without one."""
    found = sessions.current_session(request)
    if found is None:
        raise SignInRequiredError
    return found


async def _form(request: Request, session: sessions.Session) -> dict[str, str]:
    """Return a POST's form fields after checking its CSRF token (403 when it does not match)."""
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    if not sessions.csrf_valid(session, fields.pop("csrf", None)):
        raise ApiError(403, "the form's CSRF token is missing or not valid; reload the page")
    return fields


def page(
    request: Request,
    template: str,
    session: sessions.Session | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render a console page with the navigation the caller's role may use."""
    nav = []
    if session is not None:
        nav = [(t, url) for t, url, fn in NAV if may(request, session.principal, fn)]
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {"session": session, "nav": nav, "kind_labels": KIND_LABELS, **context},
        status_code=status_code,
    )
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def error_page(request: Request, exc: ApiError) -> HTMLResponse:
    """Render an API error (status, message, details) as a console page."""
    return page(
        request, "error.html", sessions.current_session(request), status_code=exc.status, error=exc
    )


def redirect(url: str) -> RedirectResponse:
    """Return a 303 redirect (after a POST)."""
    return RedirectResponse(url, status_code=303)


# -- sign-in ------------------------------------------------------------------------------------


@router.get("/login")
def login_form(request: Request, error: str = "") -> HTMLResponse:
    """Show the sign-in form."""
    holder = Response()
    token = sessions.login_token(request, holder)
    response = page(request, "login.html", None, csrf=token, error=error)
    for value in holder.headers.getlist("set-cookie"):
        response.headers.append("set-cookie", value)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    """Exchange an API key (a form field, never a URL) for a session cookie."""
    form = await request.form()
    if not sessions.login_token_valid(request, str(form.get("csrf", ""))):
        raise ApiError(403, "the sign-in form expired or its CSRF token is not valid; reload it")
    principal = request.app.state.keys.authenticate(str(form.get("api_key", "")))
    if principal is None:
        holder = Response()
        token = sessions.login_token(request, holder)
        msg = "That key is not valid or has been revoked."
        return page(request, "login.html", None, status_code=401, csrf=token, error=msg)
    response = redirect("/ui/")
    sessions.start_session(request, response, principal)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session."""
    await _form(request, _session(request))
    response = redirect("/ui/login")
    sessions.end_session(response)
    return response


@router.get("/")
def home(request: Request) -> Response:
    """Go to the caller's first page."""
    session = _session(request)
    nav = [url for _, url, fn in NAV if may(request, session.principal, fn)]
    return redirect(nav[0] if nav else "/ui/changesets")


# -- search and entities ------------------------------------------------------------------------


@router.get("/search")
def search(request: Request, q: str = "") -> HTMLResponse:
    """Find entities by a partial name or alias."""
    session = _session(request)
    found = None
    if q.strip():
        found = call(request, session.principal, graph.list_entities, q=q, limit=50, offset=0)
    return page(request, "search.html", session, q=q, found=found)


def _relation_labels(request: Request, session: sessions.Session) -> dict[str, str]:
    """Return {relation id: label} through the relations route."""
    listed = call(request, session.principal, graph.list_relations, limit=500, offset=0)
    return {r.id: r.label for r in listed.items}


def _model_choice(
    request: Request, session: sessions.Session, asked: str
) -> tuple[list[str] | None, str, str]:
    """Return (the registered models' names, or None when the role may not list them; the model
    chosen: the one asked for, else the first that follows the graph, else the first; a note
    when there is none)."""
    who = session.principal
    if not may(request, who, models.list_models):
        note = "" if asked else "Name a model to see what its current version answers."
        return None, asked, note
    listed = call(request, who, models.list_models)
    names = [m.name for m in listed]
    if not names:
        return names, "", "No model is registered, so no model's answers can be shown."
    following = [m.name for m in listed if m.follows_graph]
    return names, asked or (following or names)[0], ""


def _agreement(
    request: Request, session: sessions.Session, model: str, **scope: Any
) -> tuple[dict[str, Any] | None, str]:
    """Return the agreement route's result for `model` on a scope, or (None, why not)."""
    try:
        found = call(request, session.principal, models.agreement, name=model, **scope)
    except ApiError as exc:
        return None, f"{model}: {exc.message}"
    return found, ""


@router.get("/entities/{entity_id:path}")
def entity(request: Request, entity_id: str, model: str = "") -> HTMLResponse:
    """Show an entity: its names, its facts with what a model's current version answers for
    each (the agreement route), and its neighbourhood."""
    session = _session(request)
    who = session.principal
    found = call(request, who, graph.get_entity, entity_id=entity_id)
    facts = call(request, who, graph.entity_facts, entity_id=entity_id)
    near = call(request, who, graph.neighbourhood, entity_id=entity_id, hops=1)
    labels = _relation_labels(request, session)
    names = {n.id: n.name for n in near.nodes}
    choices, chosen, note = _model_choice(request, session, model.strip())
    verdicts: dict[int, dict[str, Any]] = {}
    checked = None
    if chosen and facts:
        checked, note = _agreement(request, session, chosen, entity=[found.id], facts=True)
        verdicts = {v["fact_id"]: v for v in (checked or {}).get("verdicts", [])}
    rows = []
    for f in facts:
        edit = {
            "kind": "replace_object",
            "subject": found.name,
            "relation": labels.get(f.relation, f.relation),
            "object": names.get(f.object, f.object),
        }
        rows.append(
            (
                f,
                labels.get(f.relation, f.relation),
                names.get(f.object, f.object),
                edit,
                verdicts.get(f.id),
            )
        )
    return page(
        request,
        "entity.html",
        session,
        entity=found,
        rows=rows,
        drawing=layout(near, labels),
        can_edit=may(request, who, changesets.create_change_set),
        model_names=choices,
        model=chosen,
        checked=checked,
        model_note=note,
        urlencode=urlencode,
        quote=quote,
    )


# -- change sets --------------------------------------------------------------------------------


SUGGESTED = {  # operation field -> the <datalist> that offers its values
    "subject": "entity-names",
    "object": "entity-names",
    "new_object": "entity-names",
    "entity": "entity-names",
    "redirect_to": "entity-names",
    "relation": "relation-labels",
}
SUGGESTED_ENTITIES = 200  # in the page, for browsers without scripts
SUGGESTED_MATCHES = 20  # per request of the script's autocomplete


def _entity_options(entities: list, shared: set[str]) -> list[tuple[str, str]]:
    """Return autocomplete options, (value, label): an entity's name, or its id (the name in
    the label) when its name is in `shared` (several entities hold it)."""
    return [
        (e.id, f"{e.name} ({e.id})") if e.name in shared else (e.name, e.name) for e in entities
    ]


def _suggestions(request: Request, session: sessions.Session) -> dict[str, list[tuple[str, str]]]:
    """Return the editor's autocomplete lists, as (value, label) pairs: the first
    `SUGGESTED_ENTITIES` entities by name (by id where several of them share the name) and
    every relation by label, through the entity and relation routes. The page's script
    replaces the entity list by the server's matches as the curator types."""
    who = session.principal
    listed = call(
        request, who, graph.list_entities, limit=SUGGESTED_ENTITIES, offset=0, q=None
    ).items
    counts: dict[str, int] = {}
    for e in listed:
        counts[e.name] = counts.get(e.name, 0) + 1
    shared = {name for name, n in counts.items() if n > 1}
    entities = sorted(_entity_options(listed, shared))
    relations = sorted(
        (r.label, r.id) for r in call(request, who, graph.list_relations, limit=500, offset=0).items
    )
    return {"entity-names": entities, "relation-labels": relations}


@router.get("/suggest/entities")
def suggest_entities(
    request: Request, q: Annotated[str, Query(max_length=200)] = ""
) -> JSONResponse:
    """Return the entities a partial name finds, best first, as autocomplete options
    `[{"value", "label"}]` (the search route; a name several entities hold is offered by id)."""
    session = _session(request)
    who = session.principal
    if not q.strip():
        return JSONResponse([])
    found = call(
        request, who, graph.list_entities, q=q, limit=SUGGESTED_MATCHES, offset=0, match="prefix"
    ).items
    shared = set()
    for name in {e.name for e in found}:
        same = call(request, who, graph.list_entities, q=name, limit=2, offset=0, match="exact")
        if same.total > 1:
            shared.add(name)
    options = [{"value": v, "label": label} for v, label in _entity_options(found, shared)]
    return JSONResponse(options, headers={"Cache-Control": "no-store"})


def _op_fields(kind: OperationKind) -> list[dict[str, Any]]:
    """Return the form fields of an operation kind: name, description, required, is a list."""
    required, optional = PAYLOAD_FIELDS[kind]
    return [
        {
            "name": name,
            "description": PAYLOAD_FIELD_TYPES[name][1],
            "required": name in required,
            "is_list": name == "aliases",
            "suggest": SUGGESTED.get(name),
        }
        for name in (*required, *optional)
    ]


def _operation_of(fields: dict[str, str]) -> dict[str, Any]:
    """Return an operation body from a typed form (empty optional fields left out)."""
    try:
        kind = OperationKind(fields.get("kind", ""))
    except ValueError:
        raise ApiError(422, f"unknown operation kind {fields.get('kind')!r}") from None
    payload: dict[str, Any] = {}
    for f in _op_fields(kind):
        value = fields.get(f"op_{f['name']}", "").strip()
        if not value and not f["required"]:
            continue
        if f["is_list"]:
            payload[f["name"]] = [v.strip() for v in value.split(",") if v.strip()]
        else:
            payload[f["name"]] = value
    return {"kind": kind.value, "payload": payload}


def _editor_context(
    request: Request,
    session: sessions.Session,
    kind: str,
    prefill: dict[str, str],
    suggest: bool = True,
) -> dict[str, Any]:
    """Return what the typed operation form needs (with its autocomplete lists if `suggest`)."""
    try:
        chosen = OperationKind(kind)
    except ValueError:
        chosen = OperationKind.REPLACE_OBJECT
    return {
        "kinds": list(OperationKind),
        "kind": chosen,
        "fields": _op_fields(chosen),
        "prefill": prefill,
        "suggestions": _suggestions(request, session) if suggest else {},
    }


@router.get("/changesets")
def change_sets(request: Request) -> HTMLResponse:
    """List change sets by state: drafts, the review queue, and the closed ones."""
    session = _session(request)
    listed = call(request, session.principal, changesets.list_change_sets, limit=500, offset=0)
    by_state: dict[str, list] = {}
    for cs in reversed(listed.items):
        by_state.setdefault(cs.state, []).append(cs)
    return page(
        request,
        "changesets.html",
        session,
        by_state=by_state,
        can_create=may(request, session.principal, changesets.create_change_set),
    )


@router.get("/changesets/new")
def new_change_set(request: Request, kind: str = "replace_object") -> HTMLResponse:
    """Show the typed form of a new change set's first operation (fields may be prefilled)."""
    session = _session(request)
    if not may(request, session.principal, changesets.create_change_set):
        raise ApiError(403, f"role {session.principal.role.value!r} may not create change sets")
    prefill = {k: v for k, v in request.query_params.items() if k != "kind"}
    context = _editor_context(request, session, kind, prefill)
    return page(request, "new_changeset.html", session, **context)


@router.post("/changesets/new")
async def create_change_set(request: Request) -> Response:
    """Create a draft with one operation given by names."""
    session = _session(request)
    fields = await _form(request, session)
    body = ChangeSetCreate.model_validate(
        {"reason": fields.get("reason", ""), "operations": [_operation_of(fields)]}
    )
    created = call(request, session.principal, changesets.create_change_set, body=body)
    return redirect(f"/ui/changesets/{quote(created.id)}")


def _names(request: Request, session: sessions.Session, ops: list[dict]) -> dict[str, str]:
    """Return display names of the entities the operations name (through the entity route)."""
    out: dict[str, str] = {}
    for op in ops:
        for key in ("subject", "object", "new_object", "entity", "redirect_to"):
            value = op["payload"].get(key)
            if isinstance(value, str) and value not in out:
                try:
                    out[value] = call(
                        request, session.principal, graph.get_entity, entity_id=value
                    ).name
                except ApiError:
                    out[value] = value
    return out


@router.get("/changesets/{change_set_id}")
def change_set(request: Request, change_set_id: str, kind: str = "add_fact") -> HTMLResponse:
    """Show a change set: its operations as a diff, what it will ask of the model, and the
    actions the caller may take (edit and propose a draft; review a proposed one)."""
    session = _session(request)
    who = session.principal
    cs = call(request, who, changesets.get_change_set, change_set_id=change_set_id)
    stored = request.app.state.store.get_change_set(cs.id)
    planned, skipped = intents([stored])
    is_author = cs.author == who.actor
    can_edit = cs.state == "draft" and may(request, who, changesets.update_operations)
    editing = can_edit and is_author
    return page(
        request,
        "changeset.html",
        session,
        cs=cs,
        names=_names(request, session, cs.operations),
        labels=_relation_labels(request, session),
        planned=planned,
        skipped=skipped,
        is_author=is_author,
        can_edit=can_edit,
        can_review=cs.state == "proposed" and may(request, who, changesets.review),
        can_replan=cs.state == "approved" and may(request, who, changesets.replan),
        can_read_jobs=may(request, who, jobs.list_jobs),
        **_editor_context(request, session, kind, {}, suggest=editing),
    )


@router.post("/changesets/{change_set_id}/operations")
async def add_operation(request: Request, change_set_id: str) -> Response:
    """Add one operation (given by names) to a draft, or remove one (`remove` = its index)."""
    session = _session(request)
    fields = await _form(request, session)
    who = session.principal
    cs = call(request, who, changesets.get_change_set, change_set_id=change_set_id)
    ops = [dict(op) for op in cs.operations]
    if "remove" in fields:
        index = int(fields["remove"]) if fields["remove"].isdigit() else -1
        if not 0 <= index < len(ops):
            raise ApiError(422, "no such operation")
        ops.pop(index)
    else:
        ops.append(_operation_of(fields))
    body = OperationsUpdate.model_validate({"operations": ops})
    call(request, who, changesets.update_operations, change_set_id=change_set_id, body=body)
    return redirect(f"/ui/changesets/{quote(change_set_id)}")


@router.post("/changesets/{change_set_id}/propose")
async def propose(request: Request, change_set_id: str) -> Response:
    """Send a draft to review."""
    session = _session(request)
    await _form(request, session)
    call(request, session.principal, changesets.propose, change_set_id=change_set_id)
    return redirect(f"/ui/changesets/{quote(change_set_id)}")


@router.post("/changesets/{change_set_id}/review")
async def review(request: Request, change_set_id: str) -> Response:
    """Approve or reject a proposed change set with a reason (the API's review route)."""
    session = _session(request)
    fields = await _form(request, session)
    body: dict[str, Any] = {
        "decision": fields.get("decision", ""),
        "comment": fields.get("comment", ""),
    }
    body.update(_named_model(fields))
    if fields.get("graph_only") == "1":
        body["graph_only"] = True
    result = call(
        request,
        session.principal,
        changesets.review,
        change_set_id=change_set_id,
        body=ReviewBody.model_validate(body),
    )
    return _reviewed(request, session, result, "reviewed")


@router.post("/changesets/{change_set_id}/replan")
async def replan(request: Request, change_set_id: str) -> Response:
    """Plan an approved change set again and start its method chain over (the API's replan
    route: reviewers and operators), on one named model or every following one."""
    session = _session(request)
    fields = await _form(request, session)
    result = call(
        request,
        session.principal,
        changesets.replan,
        change_set_id=change_set_id,
        body=ReplanBody.model_validate(_named_model(fields)),
    )
    return _reviewed(request, session, result, "replanned")


def _named_model(fields: dict[str, str]) -> dict[str, str]:
    """Return `{"model": name}` when the form names one, else {} (every following model)."""
    name = fields.get("model", "").strip()
    return {"model": name} if name else {}


def _reviewed(request: Request, session: Any, result: Any, action: str) -> HTMLResponse:
    """Show a review's or a re-plan's outcome: the change set, its plan and its jobs."""
    return page(
        request,
        "reviewed.html",
        session,
        result=result,
        action=action,
        can_read_jobs=may(request, session.principal, jobs.list_jobs),
    )


# -- jobs, models, audits -----------------------------------------------------------------------


def _jobs(request: Request, session: sessions.Session) -> tuple[list, bool]:
    """Return the latest jobs (the jobs route) and whether any of them is still active."""
    listed = call(request, session.principal, jobs.list_jobs, limit=100, offset=0)
    return listed, any(j.state not in TERMINAL for j in listed)


@router.get("/jobs")
def job_list(request: Request) -> HTMLResponse:
    """List jobs with their progress (the page's script follows them while any is active;
    without scripts the page reloads itself)."""
    session = _session(request)
    listed, active = _jobs(request, session)
    return page(request, "jobs.html", session, jobs=listed, active=active)


@router.get("/jobs/progress")
def job_progress(request: Request) -> JSONResponse:
    """Return the latest jobs' state and progress for the jobs page's script:
    `{"active", "jobs": [{"id", "state", "progress", "version", "message"}]}`."""
    session = _session(request)
    listed, active = _jobs(request, session)
    rows = [
        {
            "id": j.id,
            "state": j.state,
            "progress": j.progress,
            "version": j.result_version_id,
            "message": j.error or j.message,
        }
        for j in listed
    ]
    return JSONResponse({"active": active, "jobs": rows}, headers={"Cache-Control": "no-store"})


@router.get("/models")
def model_list(request: Request) -> HTMLResponse:
    """List registered models and their versions; operators get the version diff form and a
    rollback button on each earlier version of the head's chain."""
    session = _session(request)
    who = session.principal
    listed = call(request, who, models.list_models)
    versions = {m.name: call(request, who, models.list_versions, name=m.name) for m in listed}
    return page(
        request,
        "models.html",
        session,
        models=listed,
        versions=versions,
        can_diff=may(request, who, models.diff),
        can_rollback=may(request, who, models.rollback),
    )


@router.get("/models/{name}/agreement")
def model_agreement(request: Request, name: str) -> HTMLResponse:
    """Show how far a model's current version agrees with the graph: the count per verdict and
    the facts it contradicts or does not know (the agreement route, on the whole graph)."""
    session = _session(request)
    checked = call(request, session.principal, models.agreement, name=name)
    labels = _relation_labels(request, session)
    return page(request, "agreement.html", session, name=name, checked=checked, labels=labels)


def _version_id(text: str, field: str) -> int:
    """Return a version id typed in a form (422 when it is not a positive whole number)."""
    text = text.strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_DB_ID:
        raise ApiError(422, f"{field} must be a version id (a positive whole number)")
    return int(text)


@router.get("/models/{name}/diff")
def model_diff(request: Request, name: str) -> HTMLResponse:
    """Show the deltas between two versions (`from`, `to`): what to revert, then apply."""
    session = _session(request)
    params = request.query_params
    a = _version_id(params.get("from", ""), "from")
    b = _version_id(params.get("to", ""), "to")
    found = call(request, session.principal, models.diff, name=name, from_=a, to=b, per_layer=True)
    return page(request, "model_diff.html", session, name=name, diff=found)


@router.post("/models/{name}/rollback")
async def model_rollback(request: Request, name: str) -> Response:
    """Make an earlier version the head again (the API's rollback route: operators), after the
    confirmation box of the form is ticked."""
    session = _session(request)
    fields = await _form(request, session)
    version_id = _version_id(fields.get("version_id", ""), "version_id")
    if fields.get("confirm") != "1":
        raise ApiError(422, f"tick the box to confirm the rollback of {name} to {version_id}")
    body = RollbackBody.model_validate({"version_id": version_id})
    call(request, session.principal, models.rollback, name=name, body=body)
    return redirect("/ui/models")


@router.get("/audits")
def audit_list(request: Request) -> HTMLResponse:
    """List audits, with the form that asks for a new one."""
    session = _session(request)
    who = session.principal
    listed = call(request, who, audits.list_audits, model=None, limit=100, offset=0)
    names, chosen, _ = _model_choice(request, session, "")
    can_run = may(request, who, audits.run_audit)
    context = {"audits": listed, "model_names": names, "model": chosen, "can_run": can_run}
    return page(request, "audits.html", session, **context)


@router.post("/audits")
async def run_audit(request: Request) -> Response:
    """Queue an audit of a model's head on its worker (the API's audit route)."""
    session = _session(request)
    fields = await _form(request, session)
    size = fields.get("sample_size", "").strip()
    if not size.isdigit():
        raise ApiError(422, "the sample size must be a whole number")
    body = audits.AuditCreate.model_validate(
        {"model": fields.get("model", ""), "sample_size": int(size)}
    )
    info = call(request, session.principal, audits.run_audit, body=body)
    return redirect(f"/ui/audits/{quote(info.id)}")


@router.get("/audits/{audit_id}")
def audit(request: Request, audit_id: str) -> HTMLResponse:
    """Show one audit with its report embedded."""
    session = _session(request)
    info = call(request, session.principal, audits.get_audit, audit_id=audit_id)
    return page(request, "audit.html", session, audit=info)


@router.get("/audits/{audit_id}/report.html")
def audit_report(request: Request, audit_id: str) -> HTMLResponse:
    """Return the audit's HTML report (the API's route) for the console's frame."""
    session = _session(request)
    report = call(request, session.principal, audits.report_html, audit_id=audit_id)
    report.headers["Content-Security-Policy"] = REPORT_CSP
    return report
