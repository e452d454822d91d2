"""A.9: POST /activities — shape, idempotency on (type, direction, messageId), unknown types."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import httpx
import pytest

from backends.base import Activity, Capability, NewActivity
from backends.memory import MemoryBackend

pytestmark = pytest.mark.anyio


class SpyBackend(MemoryBackend):
    def __init__(self) -> None:
        super().__init__()
        self.received: list[NewActivity] = []

    async def create_activity(self, activity: NewActivity) -> Activity:
        self.received.append(activity)
        return await super().create_activity(activity)


class NoActivitiesBackend(MemoryBackend):
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability) - {Capability.ACTIVITIES}


async def records(client: httpx.AsyncClient) -> tuple[str, str]:
    contact = await client.post("/contacts", json={"contacts": [{"externalId": "l1"}]})
    company = await client.post("/companies", json={"companies": [{"externalId": "c1"}]})
    return contact.json()["results"][0]["crmId"], company.json()["results"][0]["crmId"]


def linkedin_message(contact: str, company: str, **over: Any) -> dict[str, Any]:
    activity = {
        "type": "LINKEDIN",
        "subject": "[1/3] [FROM Acme Corp] John Smith",
        "body": "Hi Jane, I noticed your company is expanding...",
        "direction": "OUTBOUND",
        "ownerId": "user-123",
        "occurredAt": "2024-12-31T10:00:00Z",
        "contactId": contact,
        "companyId": company,
        "metadata": {
            "messageId": "linkedin-msg-123",
            "sequenceIndex": 1,
            "sequenceMessageCount": 3,
        },
    }
    activity.update(over)
    return activity


async def test_activity_create_returns_the_stored_activity(client: httpx.AsyncClient) -> None:
    contact, company = await records(client)
    response = await client.post("/activities", json=linkedin_message(contact, company))
    assert response.status_code == 200
    body = response.json()
    assert body["id"]
    expected = {
        "type": "LINKEDIN",
        "subject": "[1/3] [FROM Acme Corp] John Smith",
        "body": "Hi Jane, I noticed your company is expanding...",
        "direction": "OUTBOUND",
        "ownerId": "user-123",
        "occurredAt": "2024-12-31T10:00:00Z",
        "contactId": contact,
        "companyId": company,
        "metadata": {
            "messageId": "linkedin-msg-123",
            "sequenceIndex": 1,
            "sequenceMessageCount": 3,
        },
    }
    assert {k: body[k] for k in expected} == expected


async def test_a9_activity_is_idempotent_on_message_id(
    client: httpx.AsyncClient, backend: MemoryBackend
) -> None:
    contact, company = await records(client)
    first = await client.post("/activities", json=linkedin_message(contact, company))
    again = await client.post("/activities", json=linkedin_message(contact, company))
    assert first.status_code == again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    assert (await backend.counts())["activities"] == 1


async def test_a9_idempotency_key_is_type_direction_message_id(serve: Any) -> None:
    backend = SpyBackend()
    async with serve(backend=backend) as client:
        contact, company = await records(client)
        out = await client.post("/activities", json=linkedin_message(contact, company))
        inbound = await client.post(
            "/activities", json=linkedin_message(contact, company, direction="INBOUND")
        )
        email = await client.post(
            "/activities", json=linkedin_message(contact, company, type="EMAIL")
        )
    assert len({out.json()["id"], inbound.json()["id"], email.json()["id"]}) == 3
    assert [a.idempotency_key for a in backend.received] == [
        "LINKEDIN|OUTBOUND|linkedin-msg-123",
        "LINKEDIN|INBOUND|linkedin-msg-123",
        "EMAIL|OUTBOUND|linkedin-msg-123",
    ]
    assert (await backend.counts())["activities"] == 3


async def test_a9_activities_without_message_id_are_not_deduplicated(
    client: httpx.AsyncClient, backend: MemoryBackend
) -> None:
    body = {"type": "EMAIL", "subject": "hello"}
    first = await client.post("/activities", json=body)
    second = await client.post("/activities", json=body)
    assert first.json()["id"] != second.json()["id"]
    assert (await backend.counts())["activities"] == 2


@pytest.mark.parametrize("body", [{}, {"type": ""}, {"type": "   "}, {"type": None}, {"type": 3}])
async def test_a9_type_is_required(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await client.post("/activities", json={"subject": "x", **body})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.json()["message"].startswith("type: ")


async def test_a9_unknown_type_is_stored_with_one_warning(
    client: httpx.AsyncClient, backend: MemoryBackend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="adapter.service")
    for _ in range(3):
        response = await client.post("/activities", json={"type": "WHATSAPP_VOICE_NOTE"})
        assert response.status_code == 200
        assert response.json()["type"] == "WHATSAPP_VOICE_NOTE"
    await client.post("/activities", json={"type": "EMAIL"})
    warnings = [r for r in caplog.records if "WHATSAPP_VOICE_NOTE" in r.getMessage()]
    assert len(warnings) == 1
    assert not any("'EMAIL'" in r.getMessage() for r in caplog.records)
    assert (await backend.counts())["activities"] == 4


async def test_a9_unknown_keys_travel_in_extra(serve: Any) -> None:
    backend = SpyBackend()
    async with serve(backend=backend) as client:
        await client.post(
            "/activities", json={"type": "EMAIL", "threadId": "t-9", "labels": ["a", "b"]}
        )
    assert backend.received[0].extra == {"threadId": "t-9", "labels": ["a", "b"]}


async def test_activity_times_are_utc_z(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/activities", json={"type": "EMAIL", "occurredAt": "2024-12-31T12:00:00+02:00"}
    )
    assert response.json()["occurredAt"] == "2024-12-31T10:00:00Z"


async def test_activity_for_unknown_contact_is_400_naming_the_field(
    client: httpx.AsyncClient, backend: MemoryBackend
) -> None:
    response = await client.post("/activities", json={"type": "EMAIL", "contactId": "ct_nope"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_reference"
    assert response.json()["message"] == "contactId: no contact exists with ID: ct_nope"
    assert (await backend.counts())["activities"] == 0


async def test_activity_unsupported_backend_is_501(serve: Any) -> None:
    async with serve(backend=NoActivitiesBackend()) as client:
        response = await client.post("/activities", json={"type": "EMAIL"})
    assert response.status_code == 501
    assert response.json()["error"] == "not_implemented"


async def test_a9_non_scalar_message_id_is_not_an_idempotency_key(serve: Any) -> None:
    backend = SpyBackend()
    async with serve(backend=backend) as client:
        response = await client.post(
            "/activities", json={"type": "EMAIL", "metadata": {"messageId": {"x": 1}}}
        )
    assert response.status_code == 200
    assert backend.received[0].idempotency_key is None
    assert response.json()["metadata"] == {"messageId": {"x": 1}}


async def test_a1_activity_response_is_a_single_object(client: httpx.AsyncClient) -> None:
    response = await client.post("/activities", json={"type": "EMAIL"})
    body = response.json()
    assert isinstance(body, dict)
    assert {
        "id",
        "type",
        "subject",
        "body",
        "direction",
        "ownerId",
        "occurredAt",
        "contactId",
        "companyId",
        "metadata",
    } <= set(body)


async def test_a9_idempotency_ignores_case_and_spaces_of_type_and_direction(
    client: httpx.AsyncClient,
) -> None:
    first = await client.post("/activities", json={
        "type": "email", "direction": "outbound", "metadata": {"messageId": "m-1"}})
    assert first.status_code == 200, first.text
    variants = [("EMAIL", "OUTBOUND"), (" Email ", "Outbound "), ("eMaIl", "OUTbound")]
    for type_, direction in variants:
        again = await client.post("/activities", json={
            "type": type_, "direction": direction, "metadata": {"messageId": "m-1"}})
        assert again.status_code == 200, again.text
        assert again.json()["id"] == first.json()["id"]
    # Stored as sent (A.9).
    assert (first.json()["type"], first.json()["direction"]) == ("email", "outbound")
    # Another direction is another activity.
    inbound = await client.post("/activities", json={
        "type": "EMAIL", "direction": "inbound", "metadata": {"messageId": "m-1"}})
    assert inbound.json()["id"] != first.json()["id"]
