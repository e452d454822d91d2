"""The Directus preset (examples/rest/directus.yaml, schema examples/rest/directus-schema.yaml)
against a real Directus 11.3.5 (npm directus, started by tests/rest/servers): the conformance
suite, Enginy's calls where the Data Studio reads them, ``simulate``, exactly-once batch creates
through a proxy that turns a tenth of the answers into 500s and timeouts, and the call count of a
batch."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest

from adapter.app import create_app
from adapter.config import build_backend
from adapter.simulate.runner import simulate
from backends.base import Backend, Entity, MatchKey, NewRecord, User
from backends.testing import DEFAULT_RECORD_FIELDS, ConformanceSuite, RecordFields
from tests.rest.servers.directus import DirectusServer
from tests.rest.servers.faultproxy import Fault, FaultPlan
from tests.rest.servers.fixtures import MakeFaultProxy
from tests.rest.support import API_KEY, preset_driver, preset_settings

pytestmark = pytest.mark.directus


class TestDirectusConformance(ConformanceSuite):
    @pytest.fixture
    async def backend(self, directus: DirectusServer) -> AsyncIterator[Backend]:
        driver = preset_driver("directus", directus.base_url, directus.token)
        await driver.open()
        try:
            yield driver
        finally:
            await driver.close()

    @pytest.fixture
    def record_fields(self) -> RecordFields:
        names = {
            Entity.CONTACT: {
                "email": "email",
                "firstName": "first_name",
                "lastName": "last_name",
                "linkedinUrl": "linkedin_url",
            },
            Entity.COMPANY: {
                **DEFAULT_RECORD_FIELDS[Entity.COMPANY],
                "linkedinUrl": "linkedin_url",
            },
        }
        return lambda entity: names[entity]

    @pytest.fixture
    def expected_users(self, directus: DirectusServer) -> list[User]:
        # Directus' bootstrap names its admin "Admin User"; the fixture's member is Morgan.
        return [
            User(directus.admin_id, "Admin User", directus.admin_email),
            User(directus.member_id, "Morgan Member", directus.member_email),
        ]


def app_client(
    settings: object, driver: Backend, *, key: bool = True
) -> tuple[object, httpx.AsyncClient]:
    app = create_app(settings, driver)  # type: ignore[arg-type]
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app),
        base_url="http://adapter",
        headers={"X-API-Key": API_KEY} if key else {},
    )
    return app, client


@pytest.mark.anyio
async def test_enginy_calls_land_where_the_data_studio_shows_them(directus: DirectusServer) -> None:
    settings = preset_settings("directus", directus.base_url, directus.token)
    app, enginy = app_client(settings, build_backend(settings))
    async with app.router.lifespan_context(app), enginy:  # type: ignore[attr-defined]
        company = await enginy.post(
            "/companies",
            json={
                "companies": [
                    {
                        "externalId": "co-1",
                        "name": "Acme Analytics",
                        "domain": "acme.example",
                        "numberOfEmployees": 40,
                        "ownerId": directus.member_id,
                    }
                ]
            },
        )
        company_id = company.json()["results"][0]["crmId"]
        contact = await enginy.post(
            "/contacts",
            json={
                "contacts": [
                    {
                        "externalId": "ct-1",
                        "email": "Ada@Acme.example",
                        "firstName": "Ada",
                        "company": "Acme Analytics",
                        "campaignOpens": 3,
                    }
                ]
            },
        )
        contact_id = contact.json()["results"][0]["crmId"]
        await enginy.post(
            "/associations",
            json={"associations": [{"contactCRMId": contact_id, "companyCRMId": company_id}]},
        )
        activity = await enginy.post(
            "/activities",
            json={
                "type": "LINKEDIN",
                "direction": "INBOUND",
                "subject": "Re: intro",
                "body": "Sure",
                "contactId": contact_id,
                "metadata": {"messageId": "m-1"},
            },
        )
        task = await enginy.post("/tasks", json={"subject": "Call Ada", "contactId": contact_id})
        assert activity.status_code == task.status_code == 200
        update = await enginy.put(
            "/contacts", json={"contacts": [{"crmId": contact_id, "campaignClicks": 1}]}
        )
        assert update.json()["results"][0]["success"] is True

    with directus.client(timeout=30) as crm:
        fields = "id,name,employees,owner,enginy_id,contacts.id,contacts.email"
        company_row = crm.get(f"/items/companies/{company_id}", params={"fields": fields}).json()
        assert company_row["data"]["contacts"] == [
            {"id": int(contact_id), "email": "Ada@Acme.example"}
        ]
        assert (company_row["data"]["employees"], company_row["data"]["owner"]) == (
            40,
            directus.member_id,
        )
        fields = "enginy_id,extra,activities.type,activities.message_id,tasks.title,tasks.status"
        row = crm.get(f"/items/contacts/{contact_id}", params={"fields": fields}).json()["data"]
        assert row["enginy_id"] == "ct-1"
        # "extra" is replaced whole by a PATCH: the driver sent the merged object.
        assert row["extra"] == {
            "company_name": "Acme Analytics",
            "campaignOpens": 3,
            "campaignClicks": 1,
        }
        assert row["activities"] == [{"type": "linkedin", "message_id": "LINKEDIN|INBOUND|m-1"}]
        assert row["tasks"] == [{"title": "Call Ada", "status": "open"}]


@pytest.mark.anyio
async def test_simulate_passes_every_must_and_should(directus: DirectusServer) -> None:
    settings = preset_settings("directus", directus.base_url, directus.token)
    app, client = app_client(settings, build_backend(settings), key=False)
    async with app.router.lifespan_context(app), client:  # type: ignore[attr-defined]
        report = await simulate(client, api_key=API_KEY, timeout=60)
    failed = [c for c in report.checks if c.status.value == "FAIL"]
    assert not failed, [(c.name, c.detail) for c in failed]
    skipped = {c.name for c in report.checks if c.status.value == "SKIP"}
    # Directus stores any string as an email: nothing to list as rejected.
    assert skipped <= {"connect.users.off_status", "errors.invalid_value_listed"}


def leads(n: int) -> list[NewRecord]:
    return [
        NewRecord(
            f"ext-{i}",
            {"email": f"lead{i}@example.com", "first_name": f"Lead{i}"},
            {"email": f"lead{i}@example.com"},
        )
        for i in range(n)
    ]


@pytest.mark.anyio
async def test_a_batch_of_100_is_one_lookup_and_one_create_and_a_sync_one_call_per_key(
    directus: DirectusServer,
) -> None:
    driver = preset_driver("directus", directus.base_url, directus.token)
    try:
        records = leads(100)
        results = await driver.create_records(Entity.CONTACT, records)
        assert all(r.created for r in results)
        assert driver.client.attempts == 2
        before = driver.client.attempts
        wanted = [r.external_id for r in records[:50]] + [f"new-{i}" for i in range(50)]
        found = await driver.find_records(Entity.CONTACT, MatchKey("externalId"), wanted)
        assert len(found) == 50 and driver.client.attempts == before + 1
    finally:
        await driver.close()


@pytest.mark.anyio
async def test_no_duplicates_when_a_tenth_of_answers_are_lost(
    directus: DirectusServer, fault_proxy: MakeFaultProxy
) -> None:
    plan = FaultPlan(
        {Fault.ERROR_AFTER: 0.05, Fault.TIMEOUT_AFTER: 0.05},
        seed=5,
        methods={"POST", "PATCH", "SEARCH"},
        hang_seconds=3,
    )
    proxy = fault_proxy(directus.base_url, plan)
    records = leads(60)
    # Six of Enginy's batches, each sent twice: by one process, then by another one.
    drivers = [
        preset_driver("directus", proxy.url, directus.token, timeouts={"read": 1.0}, max_attempts=6)
        for _ in range(2)
    ]
    try:
        for start in range(0, 60, 10):
            chunk = records[start : start + 10]
            first = await drivers[0].create_records(Entity.CONTACT, chunk)
            again = await drivers[1].create_records(Entity.CONTACT, chunk)
            assert all(r.ok for r in first)
            assert [r.crm_id for r in again] == [r.crm_id for r in first]
    finally:
        for driver in drivers:
            await driver.close()
    assert sum(proxy.counts()[f] for f in (Fault.ERROR_AFTER, Fault.TIMEOUT_AFTER)) >= 2
    with directus.client(timeout=30) as crm:
        rows = crm.get("/items/contacts", params={"limit": -1, "fields": "email,enginy_id"}).json()
    emails = Counter(r["email"] for r in rows["data"])
    assert len(rows["data"]) == 60 and max(emails.values()) == 1
