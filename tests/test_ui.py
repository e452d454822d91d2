"""The dashboard at /ui: auth, connection settings, recent calls, record pages, escaping."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from backends.base import Backend, Entity, NewRecord, Unavailable
from backends.memory import MemoryBackend
from tests.conftest import API_KEY, ROTATED_KEY, UI_PASSWORD, Serve, make_settings

pytestmark = pytest.mark.anyio

AUTH = ("anyone", UI_PASSWORD)
XSS = "<script>alert('pwned')</script>"


async def seed(c: httpx.AsyncClient) -> dict[str, str]:
    """Through the API, like Enginy: a company, a contact linked to it, activities, a task."""
    r = await c.post("/companies", json={"companies": [
        {"externalId": "co-1", "name": "Acme <b>Corp</b>", "domain": "acme.example"}]})
    company = r.json()["results"][0]["crmId"]
    r = await c.post("/contacts", json={"contacts": [
        {"externalId": "ct-1", "email": "jane@acme.example", "firstName": XSS,
         "lastName": "Doe", "jobTitle": '"><img src=x onerror=alert(1)>'}]})
    contact = r.json()["results"][0]["crmId"]
    r = await c.post("/associations", json={"associations": [
        {"contactCRMId": contact, "companyCRMId": company}]})
    assert r.status_code == 200
    for when, direction, subject in [
        ("2026-01-01T09:00:00Z", "OUTBOUND", "First touch"),
        ("2026-01-03T09:00:00Z", "INBOUND", "Re: First touch " + XSS),
        ("2026-01-02T09:00:00Z", "OUTBOUND", "Follow-up"),
    ]:
        r = await c.post("/activities", json={
            "type": "EMAIL", "direction": direction, "subject": subject,
            "body": "Hello", "occurredAt": when, "contactId": contact})
        assert r.status_code == 200, r.text
    r = await c.post("/tasks", json={"subject": "Call Jane", "contactId": contact,
                                     "dueDate": "2026-02-01T10:00:00Z"})
    task = r.json()["id"]
    return {"contact": contact, "company": company, "task": task}


@pytest.fixture
async def ui(serve: Serve) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    async with serve() as c:
        ids = await seed(c)
        yield c, ids


async def test_ui_requires_basic_auth(ui: tuple[httpx.AsyncClient, dict[str, str]]) -> None:
    c, ids = ui
    for path in ("/ui", "/ui/", f"/ui/contacts/{ids['contact']}", "/ui/tasks", "/ui/nope"):
        # The API-key header alone (the client sends it) does not open the dashboard.
        r = await c.get(path)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"].startswith("Basic ")
        assert "Jane" not in r.text
    assert (await c.get("/ui", auth=("x", "wrong"))).status_code == 401
    assert (await c.get("/ui", headers={"Authorization": "Basic !!!"})).status_code == 401
    assert (await c.get("/ui", auth=AUTH)).status_code == 200
    assert (await c.get("/ui", auth=("other-user", UI_PASSWORD))).status_code == 200
    # The API keys are not dashboard passwords.
    assert (await c.get("/ui", auth=("anyone", API_KEY))).status_code == 401
    assert (await c.get("/ui", auth=("anyone", ROTATED_KEY))).status_code == 401
    # The stylesheet is public (nothing secret in it), so the login prompt is styled.
    css = await c.get("/ui/static/style.css")
    assert css.status_code == 200 and "timeline" in css.text


async def test_separate_ui_password(serve: Serve) -> None:
    settings = make_settings(ui={"password": "dash-pass-1"})
    async with serve(settings) as c:
        assert (await c.get("/ui", auth=AUTH)).status_code == 401
        assert (await c.get("/ui", auth=("me", API_KEY))).status_code == 401
        assert (await c.get("/ui", auth=("me", "dash-pass-1"))).status_code == 200
        # ... and the dashboard password is not an API key.
        r = await c.get("/health", headers={"X-API-Key": "dash-pass-1"})
        assert r.status_code == 401


async def test_overview_shows_settings_counts_and_recent_calls_never_the_key(
    ui: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    c, _ = ui
    await c.post("/contacts", content=b"{not json", headers={"content-type": "application/json"})
    r = await c.get("/ui", auth=AUTH)
    html = r.text
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "http://adapter" in html
    assert "X-API-Key" in html
    assert "http://adapter/ui/contacts/{{crmId}}" in html
    assert "http://adapter/ui/companies/{{crmId}}" in html
    assert API_KEY not in html and ROTATED_KEY not in html
    counts = {name: int(n) for n, name in re.findall(
        r'<span class="n">(\d+)</span>\s*(?:<a [^>]*>)?(\w+)', html)}
    assert counts == {"contacts": 1, "companies": 1, "associations": 1, "activities": 3,
                      "tasks": 1}
    recent = html.split('id="recent-calls"')[1]
    assert "POST /activities" in recent and "POST /contacts" in recent
    # The rejected call is listed with its status and error code.
    assert ">400<" in recent and "invalid_json" in recent
    # Dashboard traffic itself is not listed among the calls.
    assert "/ui" not in recent


async def test_stored_markup_renders_inert(ui: tuple[httpx.AsyncClient, dict[str, str]]) -> None:
    c, ids = ui
    for path in (f"/ui/contacts/{ids['contact']}", "/ui/contacts",
                 f"/ui/companies/{ids['company']}"):
        r = await c.get(path, auth=AUTH)
        assert r.status_code == 200, path
        assert "<script" not in r.text.lower(), path
        assert "<img" not in r.text.lower(), path
        assert "<b>Corp</b>" not in r.text
    page = (await c.get(f"/ui/contacts/{ids['contact']}", auth=AUTH)).text
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in page
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    # Defence in depth: the pages forbid scripts even if a value slipped through.
    r = await c.get("/ui", auth=AUTH)
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert "script-src" not in r.headers["content-security-policy"]


async def test_contact_page_fields_associations_timeline_tasks(
    ui: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    c, ids = ui
    html = (await c.get(f"/ui/contacts/{ids['contact']}", auth=AUTH)).text
    fields = html.split('id="fields"')[1].split("</table>")[0]
    assert "jane@acme.example" in fields and "Doe" in fields and "ct-1" in fields
    assoc = html.split('id="associations"')[1].split("</ul>")[0]
    assert f'/ui/companies/{ids["company"]}' in assoc and "Acme &lt;b&gt;Corp" in assoc
    timeline = html.split('id="timeline"')[1].split("</ol>")[0]
    subjects = re.findall(r'<div class="subject">([^<]*)</div>', timeline)
    assert [s.split(" &lt;")[0] for s in subjects] == [
        "Re: First touch", "Follow-up", "First touch"]  # newest first
    directions = re.findall(r'class="activity dir-(\w+)"', timeline)
    assert directions == ["inbound", "outbound", "outbound"]
    tasks = html.split('id="tasks"')[1].split("</table>")[0]
    assert "Call Jane" in tasks and f"/ui/tasks/{ids['task']}" in tasks


async def test_company_page_lists_its_contacts(
    ui: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    c, ids = ui
    html = (await c.get(f"/ui/companies/{ids['company']}", auth=AUTH)).text
    assoc = html.split('id="associations"')[1].split("</ul>")[0]
    assert f'/ui/contacts/{ids["contact"]}' in assoc and "jane@acme.example" in assoc
    assert "acme.example" in html.split('id="fields"')[1]


async def test_lists_task_page_and_not_found(
    ui: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    c, ids = ui
    contacts = (await c.get("/ui/contacts", auth=AUTH)).text
    assert f'/ui/contacts/{ids["contact"]}' in contacts
    companies = (await c.get("/ui/companies", auth=AUTH)).text
    assert f'/ui/companies/{ids["company"]}' in companies
    tasks = (await c.get("/ui/tasks", auth=AUTH)).text
    assert "Call Jane" in tasks
    task = await c.get(f"/ui/tasks/{ids['task']}", auth=AUTH)
    assert task.status_code == 200 and "Call Jane" in task.text
    assert f'/ui/contacts/{ids["contact"]}' in task.text
    missing = await c.get("/ui/contacts/ct_nope", auth=AUTH)
    assert missing.status_code == 404 and "ct_nope" in missing.text
    assert (await c.get("/ui/tasks/nope", auth=AUTH)).status_code == 404
    # Ids are escaped in URLs too.
    odd = await c.get("/ui/contacts/%3Cscript%3E", auth=AUTH)
    assert odd.status_code == 404 and "<script>" not in odd.text


async def test_paging(serve: Serve) -> None:
    backend = MemoryBackend()
    async with serve(make_settings(ui={"page_size": 2}), backend) as c:
        await backend.create_records(Entity.CONTACT, [
            NewRecord(f"e{i}", {"email": f"p{i}@x.example"}) for i in range(5)])
        first = (await c.get("/ui/contacts", auth=AUTH)).text
        assert first.count("/ui/contacts/ct_") == 2 and "?page=1" in first
        last = (await c.get("/ui/contacts?page=2", auth=AUTH)).text
        assert last.count("/ui/contacts/ct_") == 1 and "?page=3" not in last


class NoBrowse(MemoryBackend):
    """A driver without the BROWSE capability (like HubSpot)."""

    name = "nobrowse"
    capabilities = MemoryBackend.capabilities - {
        __import__("backends.base", fromlist=["Capability"]).Capability.BROWSE}


async def test_driver_without_browse_says_so(serve: Serve) -> None:
    async with serve(backend=NoBrowse()) as c:
        r = await c.post("/contacts", json={"contacts": [{"externalId": "a", "email": "a@b.co"}]})
        crm_id = r.json()["results"][0]["crmId"]
        overview = (await c.get("/ui", auth=AUTH)).text
        assert "does not support browsing" in overview
        assert "no record pages" in overview and "{{crmId}}" not in overview
        listing = await c.get("/ui/contacts", auth=AUTH)
        assert listing.status_code == 200 and "does not support browsing" in listing.text
        # A record page by id still shows the fields.
        page = await c.get(f"/ui/contacts/{crm_id}", auth=AUTH)
        assert page.status_code == 200 and "a@b.co" in page.text
        assert 'id="timeline"' not in page.text


class Down(MemoryBackend):
    async def counts(self) -> dict[str, int]:
        raise Unavailable("database is down")

    async def list_records(self, entity: Entity, *, limit: int = 50,
                           offset: int = 0, search: str | None = None) -> Any:
        raise Unavailable("database is down")


async def test_backend_errors_render_a_page_not_a_crash(serve: Serve) -> None:
    async with serve(backend=Down()) as c:
        overview = await c.get("/ui", auth=AUTH)
        assert overview.status_code == 200 and "database is down" in overview.text
        listing = await c.get("/ui/contacts", auth=AUTH)
        assert listing.status_code == 503 and "backend_unavailable" in listing.text


async def test_root_path_and_public_base_url(serve: Serve) -> None:
    async with serve(make_settings(server={"root_path": "/enginy"})) as c:
        assert (await c.get("/ui", auth=AUTH)).status_code == 404
        r = await c.get("/enginy/ui", auth=AUTH)
        assert r.status_code == 200
        assert "http://adapter/enginy/ui/contacts/{{crmId}}" in r.text
        assert 'href="/enginy/ui/static/style.css"' in r.text
        assert (await c.get("/enginy/ui/static/style.css")).status_code == 200
        assert (await c.get("/enginy/ui")).status_code == 401
    public = make_settings(ui={"public_base_url": "https://crm.example.com/enginy/"})
    async with serve(public) as c:
        html = (await c.get("/ui", auth=AUTH)).text
        assert "https://crm.example.com/enginy/ui/companies/{{crmId}}" in html


async def test_ui_can_be_disabled(serve: Serve) -> None:
    async with serve(make_settings(ui={"enabled": False})) as c:
        r = await c.get("/ui", auth=AUTH)
        assert r.status_code == 404


def test_nobrowse_fixture_really_lacks_browse() -> None:
    backend: Backend = NoBrowse()
    assert "browse" not in {c.value for c in backend.capabilities}


async def test_recent_calls_skip_dashboard_traffic_under_a_root_path(serve: Serve) -> None:
    async with serve(make_settings(server={"root_path": "/enginy"})) as c:
        await c.get("/enginy/health")
        await c.get("/enginy/ui/contacts/nope", auth=AUTH)
        await c.get("/enginy/ui/nowhere", auth=AUTH)
        await c.get("/enginy/openapi.json")
        await c.get("/enginy/metrics")
        telemetry = c.app.state.telemetry  # type: ignore[attr-defined]
        assert [call.route for call in telemetry.recent()] == ["/health"]


async def test_record_pages_on_the_sql_driver(serve: Serve, tmp_path: Any) -> None:
    """The same pages over the SQL driver (SQLite file): it has BROWSE too."""
    from adapter.config import build_backend

    settings = make_settings(backend={"driver": "sql", "options": {
        "url": f"sqlite+aiosqlite:///{tmp_path}/ui.db"}})
    async with serve(settings, build_backend(settings)) as c:
        ids = await seed(c)
        overview = (await c.get("/ui", auth=AUTH)).text
        assert 'id="counts"' in overview and "/ui/contacts/{{crmId}}" in overview
        page = (await c.get(f"/ui/contacts/{ids['contact']}", auth=AUTH)).text
        timeline = page.split('id="timeline"')[1].split("</ol>")[0]
        assert re.findall(r'class="activity dir-(\w+)"', timeline) == [
            "inbound", "outbound", "outbound"]
        assert "<script" not in page.lower() and "&lt;script&gt;" in page
        assert f'/ui/companies/{ids["company"]}' in page
        assert "Call Jane" in page
