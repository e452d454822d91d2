"""Enginy's calls against a preset from ``examples/crms/``, judged by the CRM's own screens.

:func:`serving` serves the adapter configured by the preset file exactly as ``serve`` would
(the YAML loaded with ``DATABASE_URL`` and ``ENGINY_ADAPTER_API_KEY`` from the environment)
on a CRM fixture's database (``tests/sql/crms/``); :func:`contract_scenario` plays one
export as Enginy does (companies, contacts, a link, an activity, a task, syncs, an update) and
checks each step on the fixture's "screen" queries, which read the tables the way the CRM's
list and detail views do. Each preset's test module adds what is particular to its CRM.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from adapter.app import create_app
from adapter.config import Settings, build_backend, load_settings
from adapter.mapping import build_mappers
from adapter.simulate import Report, Status, simulate
from backends.base import Entity, SetupReport
from backends.sql import SQLBackend

from ..crms._shared import CrmDatabase

KEY = "preset-test-key-0123456789"
PRESETS = Path(__file__).resolve().parents[3] / "examples" / "crms"


def preset_settings(name: str, crm: CrmDatabase, **env: str) -> Settings:
    """The preset's settings with the fixture's database as ``DATABASE_URL``."""
    environ = {"DATABASE_URL": crm.url, "ENGINY_ADAPTER_API_KEY": KEY, **env}
    return load_settings(PRESETS / f"{name}.yaml", environ=environ)


async def check_report(settings: Settings) -> SetupReport:
    """What ``enginy-adapter check`` reports on the preset (read-only: nothing is created)."""
    backend = build_backend(settings)
    assert isinstance(backend, SQLBackend)
    backend.read_only = True
    field_maps = {e: m.fields for e, m in build_mappers(settings.mapping, {}).items()}
    await backend.open()
    try:
        return await backend.check_setup(field_maps)
    finally:
        await backend.close()


async def table_names(crm: CrmDatabase, schema: str | None = None) -> set[str]:
    async with crm.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names(schema=schema)))


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app),
            base_url="http://adapter",
            headers={"X-API-Key": KEY},
            timeout=60,
        ) as client,
    ):
        yield client


@dataclass
class Written:
    """Ids of what :func:`contract_scenario` wrote."""

    company_id: str
    contact_id: str
    activity_id: str
    task_id: str


async def _ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), (response.status_code, response.text)
    return response.json()


async def contract_scenario(client: httpx.AsyncClient, crm: CrmDatabase) -> Written:
    """One export as Enginy makes it, checked on the CRM's screens after each step."""
    seed = crm.seed
    # -- the seeded records are found, as the CRM wrote them ---------------------------------
    synced = await _ok(
        await client.post(
            "/contacts/sync",
            json={
                "contacts": [
                    {"externalId": "seed-c", "email": f"  {seed.contact_email.upper()} "},
                    {"externalId": "gone-c", "email": seed.deleted_contact_email},
                ]
            },
        )
    )
    found = {r["externalId"]: r["crmId"] for r in synced["results"]}
    assert found == {"seed-c": seed.contact_id}, synced
    synced = await _ok(
        await client.post(
            "/companies/sync",
            json={"companies": [{"externalId": "seed-co", "domain": seed.company_domain}]},
        )
    )
    assert [(r["externalId"], r["crmId"]) for r in synced["results"]] == [
        ("seed-co", seed.company_id)
    ], synced

    # -- a company, a contact with an e-mail, the link between them -------------------------
    made = await _ok(
        await client.post(
            "/companies",
            json={
                "companies": [
                    {
                        "externalId": "co-initech",
                        "name": "Initech",
                        "domain": "initech.example",
                        "industry": "Software",
                        "numberOfEmployees": 120,
                    }
                ]
            },
        )
    )
    company_id = made["results"][0]["crmId"]
    listed = {c.id: c for c in await crm.companies()}
    assert listed[company_id].name == "Initech", listed
    assert "initech.example" in (listed[company_id].website or "")

    made = await _ok(
        await client.post(
            "/contacts",
            json={
                "contacts": [
                    {
                        "externalId": "lead-ada",
                        "firstName": "Ada",
                        "lastName": "Lovelace",
                        "email": "Ada.Lovelace@Initech.example",
                        "title": "CTO",
                        "linkedinUrl": "https://www.linkedin.com/in/ada-lovelace",
                        "campaignEngagementStatus": "OPENED",
                    }
                ]
            },
        )
    )
    assert "errors" not in made, made
    contact_id = made["results"][0]["crmId"]
    people = {c.id: c for c in await crm.contacts()}
    assert contact_id in people, people
    assert "Ada" in people[contact_id].name and "Lovelace" in people[contact_id].name
    assert people[contact_id].email == "Ada.Lovelace@Initech.example"
    linked = await _ok(
        await client.post(
            "/associations",
            json={"associations": [{"contactCRMId": contact_id, "companyCRMId": company_id}]},
        )
    )
    assert linked["success"] is True and linked["created"] == 1, linked
    detail = await crm.contact(contact_id)
    assert detail is not None
    assert detail.primary_email == "Ada.Lovelace@Initech.example"
    assert (detail.company_id, detail.company) == (company_id, "Initech")
    assert detail.title == "CTO"
    company = await crm.company(company_id)
    assert company is not None and contact_id in company.contact_ids
    people = {c.id: c for c in await crm.contacts()}
    assert people[contact_id].company == "Initech"

    # -- found again by e-mail and by external id; an update lands ---------------------------
    synced = await _ok(
        await client.post(
            "/contacts/sync",
            json={
                "contacts": [
                    {"externalId": "lead-ada"},
                    {"externalId": "other-ada", "email": "ada.lovelace@initech.example"},
                ]
            },
        )
    )
    found = {r["externalId"]: r for r in synced["results"]}
    assert {k: v["crmId"] for k, v in found.items()} == {
        "lead-ada": contact_id,
        "other-ada": contact_id,
    }
    assert found["lead-ada"]["properties"]["campaignEngagementStatus"] == "OPENED"
    updated = await _ok(
        await client.put("/contacts", json={"contacts": [{"crmId": contact_id, "title": "CEO"}]})
    )
    assert updated["results"] == [{"crmId": contact_id, "success": True}], updated
    detail = await crm.contact(contact_id)
    assert detail is not None and detail.title == "CEO"
    assert detail.primary_email == "Ada.Lovelace@Initech.example"  # untouched

    # -- an activity on the contact's timeline -----------------------------------------------
    activity = await _ok(
        await client.post(
            "/activities",
            json={
                "type": "EMAIL",
                "direction": "OUTBOUND",
                "subject": "Quick question",
                "body": "Hi Ada, are you free on Tuesday?",
                "contactId": contact_id,
                "companyId": company_id,
                "metadata": {"messageId": "msg-ada-1"},
            },
        )
    )
    timeline = await crm.timeline(contact_id)
    assert any(
        "Quick question" in f"{e.subject} {e.body}" or "free on Tuesday" in (e.body or "")
        for e in timeline
    ), timeline
    again = await _ok(
        await client.post(
            "/activities",
            json={
                "type": "EMAIL",
                "direction": "OUTBOUND",
                "subject": "Quick question",
                "contactId": contact_id,
                "metadata": {"messageId": "msg-ada-1"},
            },
        )
    )
    assert again["id"] == activity["id"]
    assert len(await crm.timeline(contact_id)) == len(timeline)

    # -- a task in the contact's open tasks; completed, it leaves them ----------------------
    task = await _ok(
        await client.post(
            "/tasks",
            json={
                "subject": "Send Ada the pricing sheet",
                "description": "Enterprise tier",
                "dueDate": "2031-05-04T10:00:00Z",
                "contactId": contact_id,
                "companyId": company_id,
            },
        )
    )
    open_tasks = {t.id: t for t in await crm.open_tasks(contact_id)}
    assert task["id"] in open_tasks, open_tasks
    assert open_tasks[task["id"]].title == "Send Ada the pricing sheet"
    assert open_tasks[task["id"]].due is not None
    done = await _ok(await client.patch(f"/tasks/{task['id']}", json={"completed": True}))
    assert done["completed"] is True and done["completedAt"]
    assert task["id"] not in {t.id for t in await crm.open_tasks(contact_id)}
    return Written(company_id, contact_id, activity["id"], task["id"])


async def users_match(client: httpx.AsyncClient, crm: CrmDatabase) -> None:
    """``GET /users`` offers the users the CRM's owner picker offers."""
    users = await _ok(await client.get("/users"))
    offered = {u.id: u.name for u in await crm.users()}
    assert {u["id"]: u["name"] for u in users} == offered


async def simulate_preset(settings: Settings) -> Report:
    """``enginy-adapter simulate`` against the preset (a client without the key: simulate
    sends it itself, and checks that requests without it are refused)."""
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://adapter", timeout=60
        ) as client,
    ):
        return await simulate(client, api_key=KEY, read_only=False)


def failures(report: Report) -> Mapping[str, str]:
    """Every MUST or SHOULD that failed (``{check: level}``)."""
    return {c.name: c.level.value for c in report.checks if c.status is Status.FAIL}


ENTITIES = tuple(Entity)
