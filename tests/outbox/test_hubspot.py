"""The outbox in front of the HubSpot driver: a portal answering 503s (an upstream outage)
and 429s (the daily limit), then recovering; what the portal holds afterwards.

The portal is the in-repo fake (:mod:`backends.testing.hubspot`), served through an httpx
transport that answers for it while it is "down". The driver's own retries run on a virtual
clock, so they take no time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapter.outbox import Outbox
from backends.hubspot import HubSpotBackend, HubSpotOptions
from backends.testing.hubspot import FakeHubSpot
from tests.conftest import serve_app
from tests.hubspot.conftest import TOKEN, VirtualClock

from .support import outbox_settings

pytestmark = pytest.mark.anyio


class Switch:
    """Answers for the portal while ``failure`` is set: an outage as HubSpot shows one."""

    def __init__(self, portal: FakeHubSpot) -> None:
        self.portal = portal
        self.failure: httpx.Response | None = None

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if self.failure is not None:
            return httpx.Response(
                self.failure.status_code,
                headers=self.failure.headers,
                content=self.failure.content,
            )
        return await self.portal.handle(request)


UPSTREAM_503 = httpx.Response(503, json={"status": "error", "message": "Service Unavailable"})
DAILY_LIMIT = httpx.Response(
    429,
    json={
        "status": "error",
        "message": "You have reached your daily limit.",
        "errorType": "RATE_LIMIT",
        "policyName": "DAILY",
    },
)


@pytest.fixture
def portal() -> FakeHubSpot:
    return FakeHubSpot(token=TOKEN)


@pytest.fixture
def switch(portal: FakeHubSpot) -> Switch:
    return Switch(portal)


@pytest.fixture
async def client(switch: Switch, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    clock = VirtualClock()
    backend = HubSpotBackend(
        HubSpotOptions(token=TOKEN, unknown_properties="create"),
        transport=httpx.MockTransport(switch.handle),
        sleep=clock.sleep,
        clock=clock,
    )
    async with serve_app(outbox_settings(tmp_path), backend) as c:
        yield c


async def drained(client: httpx.AsyncClient) -> Outbox:
    outbox: Outbox = client.app.state.outbox  # type: ignore[attr-defined]
    for _ in range(400):
        if not (await outbox.store.stats()).pending:
            return outbox
        await asyncio.sleep(0.025)
    pytest.fail(f"not drained: {await outbox.store.list_items()}")


def engagements(portal: FakeHubSpot, object_type: str) -> list[dict[str, Any]]:
    return list(portal.store.objects[object_type].values())


@pytest.mark.parametrize("failure", [UPSTREAM_503, DAILY_LIMIT], ids=["503", "daily-429"])
async def test_writes_during_a_hubspot_outage_reach_the_portal_once(
    client: httpx.AsyncClient, switch: Switch, portal: FakeHubSpot, failure: httpx.Response
) -> None:
    created = await client.post(
        "/contacts", json={"contacts": [{"externalId": "lead-1", "email": "ann@acme.io"}]}
    )
    contact = created.json()["results"][0]["crmId"]
    switch.failure = failure
    update = await client.put(
        "/contacts", json={"contacts": [{"crmId": contact, "title": "CTO", "tier": "gold"}]}
    )
    assert update.json() == {"results": [{"crmId": contact, "success": True, "queued": True}]}
    email = {
        "type": "EMAIL",
        "direction": "OUTBOUND",
        "subject": "[1/3] Hello",
        "body": "Hi Ann",
        "contactId": contact,
        "metadata": {"messageId": "msg-1"},
    }
    note = {"type": "CALL_LOGGED", "contactId": contact, "body": "no messageId"}
    for activity in (email, note):
        answer = await client.post("/activities", json=activity)
        assert answer.status_code == 200 and answer.json()["queued"] is True
    switch.failure = None
    outbox = await drained(client)
    assert (await outbox.store.stats()).dead == 0
    stored = portal.store.objects["contacts"][contact]["properties"]
    assert stored["jobtitle"] == "CTO" and stored["tier"] == "gold"
    assert [e["properties"]["hs_email_subject"] for e in engagements(portal, "emails")] == [
        "[1/3] Hello"
    ]
    assert len(engagements(portal, "notes")) == 1
    # Enginy sends the e-mail activity again: the portal still holds one.
    again = await client.post("/activities", json=email)
    assert "queued" not in again.json()
    assert len(engagements(portal, "emails")) == 1
