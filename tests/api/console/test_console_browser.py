"""The console in a real Chromium (Debian's `chromium`, driven by Playwright; nothing is
downloaded), on the trained tiny model with a real worker process: a curator finds an entity by
a partial name, replaces a fact's object by names and proposes; a reviewer sees the plan and
approves; the job's progress changes live on the jobs page until it ends; the entity page
shows the new fact; an auditor asks for an audit and reads its report. `/docs` renders
offline. Every page is screenshotted (`shot`: kept under var/test-artefacts/console/, copied
to docs/console/ when KGEDIT_UPDATE_SCREENSHOTS=1) and checked for content."""

from __future__ import annotations

import re

import pytest
from conftest import browser_sign_in, browser_sign_out, open_page, shot
from live_server import serve

from api.keys import Role

pytestmark = pytest.mark.slow
TERMINAL = ("succeeded", "unverified", "failed", "rolled_back", "cancelled")
# records every (state, progress) the job's row shows, in the page itself: a reload would lose it
RECORD_ROW = """id => {
  const row = document.getElementById("job-" + id);
  const seen = [];
  const note = () => {
    const now = [row.querySelector('[data-field="state"]').textContent,
                 row.querySelector("progress").value];
    const last = seen[seen.length - 1];
    if (!last || last[0] !== now[0] || last[1] !== now[1]) seen.push(now);
  };
  note();
  new MutationObserver(note).observe(row, {subtree: true, childList: true,
                                           characterData: true, attributes: true});
  window.jobRowSeen = seen;
}"""
ROW_STATE = 'id => document.querySelector("#job-" + id + \' [data-field="state"]\').textContent'


def _typed(store, entity_id: str) -> str:
    """Return what a curator types for an entity: its name, or its id where other entities
    hold that name (the console refuses a shared name and offers the ids)."""
    name = store.get_entity(entity_id).name
    return name if [e.id for e in store.find_entities(name)] == [entity_id] else entity_id


def _open_entity(page, entity_id: str) -> None:
    """Open an entity from a search result: the row whose id cell is exactly `entity_id`."""
    exact = page.locator("code", has_text=re.compile(f"^{re.escape(entity_id)}$"))
    page.locator("tr").filter(has=exact).get_by_role("link").first.click()
    page.wait_for_url("**/ui/entities/**")


def _row(page, *texts: str):
    """Return the table rows that show every one of `texts`."""
    rows = page.locator("tr")
    for text in texts:
        rows = rows.filter(has_text=text)
    return rows


def test_the_whole_flow_with_a_worker(
    tiny_console, browser_page, tiny_model_dir, evoke_paths, tiny_cases
):
    from e2e_flow import known_edit

    console, page = tiny_console, browser_page
    store, keys = console.app.state.store, console.keys
    subject, relation, old, new = known_edit(store, tiny_model_dir, evoke_paths, tiny_cases)
    names = store.entity_names([subject, old, new])
    assert _typed(store, subject) == names[subject] and _typed(store, old) == names[old]
    label = store.get_relation(relation).label
    partial = names[subject].split()[-1][:4]
    with serve(console.app) as base:
        # the curator: partial name, entity page, the typed editor by names, propose
        page.goto(f"{base}/ui/login")
        shot(page, "01-sign-in", "Sign in", "API key")
        browser_sign_in(page, base, keys[Role.CURATOR])
        assert keys[Role.CURATOR] not in page.url
        assert page.evaluate("document.cookie") == ""  # HttpOnly: not readable by scripts
        assert page.evaluate("localStorage.length + sessionStorage.length") == 0
        page.get_by_label("Name or alias").fill(partial)
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r".*/ui/search\?q="))
        shot(page, "02-search", names[subject], "found")
        _open_entity(page, subject)
        shot(page, "03-entity", names[subject], label, names[old], "Neighbourhood")

        _row(page, label, names[old]).get_by_role("link", name="Replace object").first.click()
        assert page.get_by_label("subject (required)").input_value() == names[subject]
        assert page.get_by_label("object (required)", exact=True).input_value() == names[old]
        # autocomplete by the start of the name; a shared name is offered by id
        field = page.get_by_label("new object (required)")
        field.press_sequentially(names[new][:4])
        page.locator(f'#entity-names option[value="{_typed(store, new)}"]').wait_for(
            state="attached"
        )
        field.fill(_typed(store, new))
        page.get_by_label("Reason").fill("the register was corrected")
        shot(page, "04-editor", "Replace a fact's object", "new object")
        page.get_by_role("button", name="Save draft").click()
        page.wait_for_url("**/ui/changesets/cs-*")
        page.get_by_role("button", name="Propose").click()
        shot(page, "05-proposed", "proposed", names[old], names[new])
        cs_id = page.url.rsplit("/", 1)[1]
        browser_sign_out(page, base)

        # the reviewer: the queue, the plan, approve on every model that follows the graph
        browser_sign_in(page, base, keys[Role.REVIEWER])
        page.get_by_role("link", name="Change sets", exact=True).click()
        shot(page, "06-review-queue", "Review queue", "the register was corrected")
        page.get_by_role("link", name=cs_id).click()
        assert _row(page, "edit", names[old], names[new]).count() == 1  # the planned request
        page.get_by_label("Approve").check()
        page.get_by_label("Reason").fill("matches the register")
        shot(page, "07-review", "Review", "What the model will be asked to do")
        page.get_by_role("button", name="Submit review").click()
        shot(page, "08-approved", "approved", "Plan", "Jobs queued", console.model)
        job_id = page.locator("h2:has-text('Jobs queued') + ul code").first.inner_text()

        # the job, live: queued before the worker starts, then followed without a reload
        page.get_by_role("link", name="Jobs", exact=True).click()
        assert page.evaluate(ROW_STATE, job_id) == "queued"
        shot(page, "09-jobs-queued", job_id, "queued", "progress updates on this page")
        page.evaluate(RECORD_ROW, job_id)
        console.worker.start()
        try:
            page.wait_for_function(
                f"id => ({ROW_STATE})(id) !== 'queued'", arg=job_id, timeout=600_000
            )
            shot(page, "10-jobs-live", job_id)
            page.wait_for_function(
                f"([id, ends]) => ends.includes(({ROW_STATE})(id))",
                arg=[job_id, list(TERMINAL)],
                timeout=600_000,
            )
            seen = page.evaluate("window.jobRowSeen")  # still there: the page never reloaded
            final = seen[-1][0]
            assert seen[0] == ["queued", 0] and final in TERMINAL and len(seen) >= 2, seen
            assert final in ("succeeded", "rolled_back"), seen  # the gate decided
            shot(page, "11-jobs-done", final)
            browser_sign_out(page, base)

            # the auditor: the entity's new fact, then an audit of the model and its report
            browser_sign_in(page, base, keys[Role.AUDITOR])
            page.goto(f"{base}/ui/search?q={partial}")
            _open_entity(page, subject)
            assert _row(page, label, names[new]).count() >= 1
            assert _row(page, label, names[old]).count() == 0
            if final == "succeeded":  # the gate passed: the model now answers the new object
                assert _row(page, label, names[new], "agrees").count() >= 1
            shot(page, "12-entity-after", names[new], f"{console.model} says")
            page.get_by_role("link", name="Audits", exact=True).click()
            page.get_by_label("Facts sampled from the graph").fill("20")
            shot(page, "13-audits", "Run an audit", console.model)
            page.get_by_role("button", name="Run audit").click()
            # the page reloads itself until the report is in (or the audit failed)
            page.locator("iframe.report, p.error").first.wait_for(timeout=600_000)
            report = page.frame_locator("iframe.report").locator("h1")
            assert report.inner_text() == "kgedit audit report"
            shot(page, "14-audit-report", "succeeded", console.model)
        finally:
            console.worker.stop()


def test_docs_render_offline(live_console, chromium):
    """Swagger UI and Redoc from local assets only (Redoc's bundle names a logo on its CDN:
    the CSP blocks it, so this page's console errors are not checked)."""
    base, _, _ = live_console
    page, _ = open_page(chromium)
    outside: list[str] = []

    def only_local(route):
        if route.request.url.startswith(base):
            return route.continue_()
        outside.append(route.request.url)
        return route.abort()

    page.context.route("**/*", only_local)
    page.goto(f"{base}/docs")
    page.wait_for_selector(".opblock-summary", timeout=30_000)
    assert page.locator(".opblock").count() > 20
    shot(page, "15-docs", "/v1/changesets")
    page.goto(f"{base}/redoc")
    page.wait_for_selector("text=change sets", timeout=30_000)
    assert not outside, outside
    page.context.close()


def test_an_operator_sees_what_the_model_answers_and_the_change_in_it(tiny_console, browser_page):
    """On the trained tiny model: the entity page's answers, a replan queued on the model and
    the change set's attempts, the models page and the agreement view."""
    from kg import curation

    console, page = tiny_console, browser_page
    store = console.app.state.store
    facts = store.list_facts()
    fact = facts[0]
    other = next(f.object for f in facts if f.relation == fact.relation and f.object != fact.object)
    op = {
        "kind": "replace_object",
        "payload": {
            "subject": fact.subject,
            "relation": fact.relation,
            "object": fact.object,
            "new_object": other,
        },
    }
    cs = curation.create_change_set(store, "key:curator", "corrected", [op])
    curation.propose(store, cs.id, "key:curator")
    curation.approve(store, cs.id, "key:reviewer", "graph first")
    with serve(console.app) as base:
        browser_sign_in(page, base, console.keys[Role.OPERATOR])
        page.goto(f"{base}/ui/entities/{fact.subject}")
        shot(page, "16-entity-answers", f"{console.model} says", "Verdict")
        page.goto(f"{base}/ui/changesets/{cs.id}")
        assert "Not planned on any model" in page.inner_text("body")
        page.get_by_label("Model (optional").fill(console.model)
        page.get_by_role("button", name="Replan").click()
        shot(page, "17-replanned", "replanned", "Jobs queued")
        page.goto(f"{base}/ui/changesets/{cs.id}")
        shot(page, "18-changeset-in-the-models", "In the models", "queued", "1 of")
        page.goto(f"{base}/ui/models")
        shot(page, "19-models", "Models", console.model)
        page.get_by_role("link", name="Agreement with the graph").click()
        shot(page, "20-agreement", "Facts per verdict", "Conflicts")
