"""Against a real HubSpot portal: only with ``HUBSPOT_TEST_TOKEN`` set (marker ``live``).

Use a developer test portal: the test creates two contacts and a company tagged with a random
suffix, links them, logs a note, creates and completes a task, then archives what it made.
The token needs the scopes listed in docs/hubspot.md (schema write included: ``open()`` creates
the external-id property when missing).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from backends.base import (
    EXTERNAL_ID,
    AssociationPair,
    Entity,
    MatchKey,
    NewActivity,
    NewRecord,
    NewTask,
    RecordUpdate,
    TaskChanges,
)
from backends.hubspot import HubSpotBackend, HubSpotOptions

TOKEN = os.environ.get("HUBSPOT_TEST_TOKEN")

pytestmark = [
    pytest.mark.live,
    pytest.mark.anyio,
    pytest.mark.skipif(not TOKEN, reason="set HUBSPOT_TEST_TOKEN to run against a real portal"),
]


@pytest.fixture
async def live() -> AsyncIterator[HubSpotBackend]:
    driver = HubSpotBackend(
        HubSpotOptions(
            token=TOKEN or "unset",
            base_url=os.environ.get("HUBSPOT_TEST_BASE_URL", "https://api.hubapi.com"),
        )
    )
    await driver.open()
    try:
        yield driver
    finally:
        await driver.close()


async def archive(driver: HubSpotBackend, object_type: str, ids: list[str]) -> None:
    if ids:
        await driver.client.request(
            "POST",
            driver.client.paths.batch(object_type, "archive"),
            json={"inputs": [{"id": i} for i in ids]},
        )


async def test_live_round_trip(live: HubSpotBackend) -> None:
    tag = uuid.uuid4().hex[:8]
    contacts = [
        NewRecord(
            f"live-{tag}-{i}",
            {"email": f"enginy-live-{tag}-{i}@example.com", "firstname": f"Live{i}"},
        )
        for i in range(2)
    ]
    company = NewRecord(f"live-{tag}-co", {"name": f"Enginy live {tag}"})
    made: dict[str, list[str]] = {"contacts": [], "companies": [], "tasks": [], "notes": []}
    try:
        created = await live.create_records(Entity.CONTACT, contacts)
        assert all(r.ok and r.created for r in created), created
        made["contacts"] = [r.crm_id or "" for r in created]
        again = await live.create_records(Entity.CONTACT, contacts)
        assert [r.crm_id for r in again] == made["contacts"]
        (co,) = await live.create_records(Entity.COMPANY, [company])
        made["companies"] = [co.crm_id or ""]
        found = await live.find_records(
            Entity.CONTACT, MatchKey(EXTERNAL_ID), [c.external_id for c in contacts]
        )
        assert {v.crm_id for v in found.values()} == set(made["contacts"])
        by_email = await live.find_records(
            Entity.CONTACT, MatchKey("email", "email"), [f"enginy-live-{tag}-0@example.com"]
        )
        assert by_email[f"enginy-live-{tag}-0@example.com"].crm_id == made["contacts"][0]
        updated = await live.update_records(
            Entity.CONTACT, [RecordUpdate(made["contacts"][0], {"lastname": "Updated"})]
        )
        assert updated[0].ok
        linked = await live.create_associations(
            [AssociationPair(made["contacts"][0], made["companies"][0])]
        )
        assert linked[0].ok
        note = await live.create_activity(
            NewActivity(
                type="CUSTOM_LIVE",
                body="live test",
                contact_id=made["contacts"][0],
                idempotency_key=f"CUSTOM_LIVE||{tag}",
            )
        )
        made["notes"] = [note.id]
        repeat = await live.create_activity(
            NewActivity(
                type="CUSTOM_LIVE",
                body="live test",
                contact_id=made["contacts"][0],
                idempotency_key=f"CUSTOM_LIVE||{tag}",
            )
        )
        assert repeat.id == note.id
        task = await live.create_task(
            NewTask(subject=f"live {tag}", type="call", contact_id=made["contacts"][0])
        )
        made["tasks"] = [task.id]
        done = await live.update_task(task.id, TaskChanges(now=datetime.now(UTC), completed=True))
        assert done.completed and done.completed_at is not None
        assert await live.list_users() is not None
    finally:
        for object_type, ids in made.items():
            await archive(live, object_type, [i for i in ids if i])


async def test_live_token_search_finds_a_hand_typed_linkedin_url(live: HubSpotBackend) -> None:
    """The assumption behind the LinkedIn fallback: HubSpot's CONTAINS_TOKEN takes a URL as one
    token, as its docs show for an e-mail address (``*@hubspot.com``), so a ``*`` on each side
    finds any scheme, sub-domain, query or case of it."""
    tag = uuid.uuid4().hex[:8]
    url = f"http://uk.linkedin.com/in/Enginy-Live-{tag}/?trk=x"
    response = await live.client.request(
        "POST",
        live.client.paths.objects("contacts"),
        json={"properties": {"email": f"enginy-live-{tag}@example.com", "hs_linkedin_url": url}},
    )
    crm_id = str(response.json_dict()["id"])
    wanted = f"linkedin.com/in/enginy-live-{tag}"
    body = {
        "filterGroups": [
            {
                "filters": [
                    {
                        "propertyName": "hs_linkedin_url",
                        "operator": "CONTAINS_TOKEN",
                        "value": f"*{wanted}*",
                    }
                ]
            }
        ],
        "properties": ["hs_linkedin_url"],
        "limit": 10,
    }
    try:
        ids: list[str] = []
        for _ in range(30):  # search lags writes: wait for the index
            await asyncio.sleep(2)
            answer = await live.client.request(
                "POST", live.client.paths.search("contacts"), json=body, search=True
            )
            ids = [str(r["id"]) for r in answer.json_dict().get("results") or []]
            if ids:
                break
        assert ids == [crm_id]
        found = await live.find_records(
            Entity.CONTACT, MatchKey("linkedinUrl", "hs_linkedin_url", "linkedin"), [wanted]
        )
        assert found[wanted].crm_id == crm_id
    finally:
        await archive(live, "contacts", [crm_id])
