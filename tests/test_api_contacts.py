"""Contacts through the API: create (A.4, A.5), sync (A.7), update (A.6), mapping (A.8)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from backends.base import (
    EXTERNAL_ID,
    Entity,
    InvalidRecord,
    ItemResult,
    MatchKey,
    NewRecord,
    RateLimited,
    StoredRecord,
    Unavailable,
)
from backends.memory import MemoryBackend
from tests.conftest import error_body

pytestmark = pytest.mark.anyio


class RejectingBackend(MemoryBackend):
    """Rejects (permanently) every record that carries a ``bad`` field."""

    async def create_record(self, entity: Entity, record: NewRecord) -> ItemResult:
        if "bad" in record.fields:
            return ItemResult(error=InvalidRecord("field 'bad' is not allowed"))
        return await super().create_record(entity, record)


class DownBackend(MemoryBackend):
    """Every record call fails as a transient outage."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def create_records(
        self, entity: Entity, records: Sequence[NewRecord]
    ) -> list[ItemResult]:
        raise self.error

    async def find_records(
        self, entity: Entity, key: MatchKey, values: Sequence[str]
    ) -> dict[str, StoredRecord]:
        raise self.error


class CountingBackend(MemoryBackend):
    """Records every ``find_records`` call as ``(key name, key field, values)``."""

    def __init__(self) -> None:
        super().__init__()
        self.finds: list[tuple[str, str | None, list[str]]] = []
        self.created: list[NewRecord] = []

    async def find_records(
        self, entity: Entity, key: MatchKey, values: Sequence[str]
    ) -> dict[str, StoredRecord]:
        self.finds.append((key.name, key.field, list(values)))
        return await super().find_records(entity, key, values)

    async def create_record(self, entity: Entity, record: NewRecord) -> ItemResult:
        self.created.append(record)
        return await super().create_record(entity, record)


async def create(client: httpx.AsyncClient, *contacts: dict[str, Any]) -> httpx.Response:
    return await client.post("/contacts", json={"contacts": list(contacts)})


async def crm_ids(client: httpx.AsyncClient, *contacts: dict[str, Any]) -> dict[str, str]:
    response = await create(client, *contacts)
    assert response.status_code == 200, response.text
    return {r["externalId"]: r["crmId"] for r in response.json()["results"]}


# -- create -------------------------------------------------------------------------------------


async def test_create_contacts_returns_one_result_per_contact(
    client: httpx.AsyncClient, backend: MemoryBackend
) -> None:
    response = await create(
        client,
        {"externalId": "lead-1", "email": "john@acme.com", "firstName": "John"},
        {"externalId": "lead-2", "email": "jane@acme.com"},
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"results"}  # no "errors" key when nothing failed
    assert [r["externalId"] for r in body["results"]] == ["lead-1", "lead-2"]
    stored = await backend.get_records(Entity.CONTACT, [r["crmId"] for r in body["results"]])
    assert stored[body["results"][0]["crmId"]].fields["firstName"] == "John"
    assert (await backend.counts())["contacts"] == 2


async def test_a4_create_is_idempotent_on_external_id(
    client: httpx.AsyncClient, backend: MemoryBackend
) -> None:
    first = await crm_ids(client, {"externalId": "lead-1", "email": "a@acme.com"})
    again = await crm_ids(client, {"externalId": "lead-1", "email": "a@acme.com"})
    assert first == again
    assert (await backend.counts())["contacts"] == 1


async def test_a4_resent_batch_creates_no_duplicates(
    client: httpx.AsyncClient, backend: MemoryBackend
) -> None:
    batch = [{"externalId": f"lead-{i}", "email": f"p{i}@acme.com"} for i in range(5)]
    first = await crm_ids(client, *batch)
    second = await crm_ids(client, *batch)
    assert first == second
    assert (await backend.counts())["contacts"] == 5


async def test_a4_same_external_id_twice_in_one_batch_gets_one_record(
    client: httpx.AsyncClient, backend: MemoryBackend
) -> None:
    response = await create(client, {"externalId": "dup"}, {"externalId": "dup"})
    results = response.json()["results"]
    assert len(results) == 2
    assert results[0]["crmId"] == results[1]["crmId"]
    assert (await backend.counts())["contacts"] == 1


async def test_a5_batch_of_100_contacts(client: httpx.AsyncClient, backend: MemoryBackend) -> None:
    batch = [
        {"externalId": f"lead-{i}", "email": f"person{i}@acme.com", "firstName": f"P{i}"}
        for i in range(100)
    ]
    response = await create(client, *batch)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["externalId"] for r in results] == [c["externalId"] for c in batch]
    assert len({r["crmId"] for r in results}) == 100
    synced = await client.post("/contacts/sync", json={"contacts": batch})
    assert len(synced.json()["results"]) == 100


async def test_a5_permanent_failures_are_listed_in_errors_with_200(serve: Any) -> None:
    async with serve(backend=RejectingBackend()) as client:
        response = await create(client, {"externalId": "ok-1"}, {"externalId": "bad-1", "bad": 1})
    assert response.status_code == 200
    body = response.json()
    assert [r["externalId"] for r in body["results"]] == ["ok-1"]
    assert body["errors"] == [
        {"externalId": "bad-1", "error": "invalid_record", "message": "field 'bad' is not allowed"}
    ]


async def test_a5_all_records_failed_is_400_with_errors(serve: Any) -> None:
    async with serve(backend=RejectingBackend()) as client:
        response = await create(
            client, {"externalId": "b1", "bad": 1}, {"externalId": "b2", "bad": 2}
        )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] and body["message"]
    assert [e["externalId"] for e in body["errors"]] == ["b1", "b2"]
    assert {e["error"] for e in body["errors"]} == {"invalid_record"}


async def test_a5_unavailable_backend_is_503_with_retry_after(serve: Any) -> None:
    async with serve(backend=DownBackend(Unavailable("database down", retry_after=7.2))) as client:
        response = await create(client, {"externalId": "lead-1"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "8"
    # The driver's words stay in the log: a 5xx body never names the database behind it.
    assert error_body(response) == {
        "error": "backend_unavailable",
        "message": "The CRM backend is unavailable; retry later.",
    }


async def test_a5_rate_limited_backend_is_503_with_retry_after(serve: Any) -> None:
    async with serve(
        backend=DownBackend(RateLimited("429 from upstream", retry_after=30))
    ) as client:
        response = await client.post("/contacts/sync", json={"contacts": [{"externalId": "x"}]})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "30"
    assert response.json()["error"] == "backend_rate_limited"


async def test_a5_unavailable_without_retry_after_has_no_header(serve: Any) -> None:
    async with serve(backend=DownBackend(Unavailable("timeout"))) as client:
        response = await create(client, {"externalId": "lead-1"})
    assert response.status_code == 503
    assert "retry-after" not in response.headers


async def test_a8_unknown_and_engagement_fields_are_stored(
    client: httpx.AsyncClient, backend: MemoryBackend
) -> None:
    ids = await crm_ids(
        client,
        {
            "externalId": "lead-1",
            "campaignEngagementStatus": "Message Replied (2/3) - LINKEDIN",
            "genesy_engagement_status": "Replied",
            "nested": {"a": [1, 2]},
        },
    )
    fields = (await backend.get_records(Entity.CONTACT, [ids["lead-1"]]))[ids["lead-1"]].fields
    assert fields["campaignEngagementStatus"] == "Message Replied (2/3) - LINKEDIN"
    assert fields["genesy_engagement_status"] == "Replied"
    assert fields["nested"] == {"a": [1, 2]}
    assert "externalId" not in fields  # the envelope is not a field


async def test_a8_mapping_renames_field_both_ways(serve: Any, settings_for: Any) -> None:
    backend = MemoryBackend()
    settings = settings_for(mapping={"contacts": {"fields": {"email": "email_address"}}})
    async with serve(settings, backend) as client:
        ids = await crm_ids(client, {"externalId": "lead-1", "email": "John@Acme.com"})
        stored = (await backend.get_records(Entity.CONTACT, [ids["lead-1"]]))[ids["lead-1"]]
        assert stored.fields == {"email_address": "John@Acme.com"}
        # Found by email (a different lead id) and returned under the Enginy name.
        synced = await client.post(
            "/contacts/sync", json={"contacts": [{"externalId": "other", "email": "john@acme.com"}]}
        )
    assert synced.json()["results"] == [
        {"externalId": "other", "crmId": ids["lead-1"], "properties": {"email": "John@Acme.com"}}
    ]


async def test_a8_reject_policy_gives_a_per_record_unmapped_field_error(
    serve: Any, settings_for: Any
) -> None:
    settings = settings_for(
        mapping={"contacts": {"fields": {"email": "email_address"}, "unmapped": "reject"}}
    )
    async with serve(settings) as client:
        response = await create(
            client,
            {"externalId": "good", "email": "a@acme.com"},
            {"externalId": "bad", "email": "b@acme.com", "favouriteColour": "blue"},
        )
    assert response.status_code == 200
    body = response.json()
    assert [r["externalId"] for r in body["results"]] == ["good"]
    assert len(body["errors"]) == 1
    error = body["errors"][0]
    assert error["externalId"] == "bad"
    assert error["error"] == "unmapped_field"
    assert "favouriteColour" in error["message"]


async def test_a8_drop_policy_drops_unmapped_fields(serve: Any, settings_for: Any) -> None:
    backend = MemoryBackend()
    settings = settings_for(mapping={"contacts": {"fields": {"email": "mail"}, "unmapped": "drop"}})
    async with serve(settings, backend) as client:
        ids = await crm_ids(client, {"externalId": "l", "email": "a@b.com", "colour": "blue"})
    stored = (await backend.get_records(Entity.CONTACT, [ids["l"]]))[ids["l"]]
    assert stored.fields == {"mail": "a@b.com"}


async def test_a8_sync_back_limits_properties(serve: Any, settings_for: Any) -> None:
    settings = settings_for(mapping={"contacts": {"sync_back": ["leadScore"]}})
    async with serve(settings) as client:
        await crm_ids(client, {"externalId": "l", "email": "a@b.com", "leadScore": 85})
        synced = await client.post("/contacts/sync", json={"contacts": [{"externalId": "l"}]})
    assert synced.json()["results"][0]["properties"] == {"leadScore": 85}


async def test_create_computes_normalised_match_keys(serve: Any) -> None:
    backend = CountingBackend()
    async with serve(backend=backend) as client:
        await crm_ids(
            client,
            {
                "externalId": "l",
                "email": "  John@ACME.com ",
                "linkedinUrl": "https://www.linkedin.com/in/John/?x=1",
            },
        )
    assert backend.created[0].match_keys == {
        "email": "john@acme.com",
        "linkedinUrl": "linkedin.com/in/john",
    }


# -- sync ---------------------------------------------------------------------------------------


async def test_a7_sync_returns_only_matches(client: httpx.AsyncClient) -> None:
    ids = await crm_ids(client, {"externalId": "lead-1", "email": "a@acme.com"})
    response = await client.post(
        "/contacts/sync",
        json={"contacts": [{"externalId": "lead-1"}, {"externalId": "nobody", "email": "x@y.z"}]},
    )
    assert response.status_code == 200
    assert response.json() == {
        "results": [
            {"externalId": "lead-1", "crmId": ids["lead-1"], "properties": {"email": "a@acme.com"}}
        ]
    }


async def test_a7_sync_matches_by_normalised_email(client: httpx.AsyncClient) -> None:
    ids = await crm_ids(client, {"externalId": "lead-1", "email": "Sarah@TechStartup.com"})
    response = await client.post(
        "/contacts/sync",
        json={"contacts": [{"externalId": "lead-9", "email": "  sarah@techstartup.COM "}]},
    )
    assert [r["crmId"] for r in response.json()["results"]] == [ids["lead-1"]]


async def test_a7_sync_falls_back_to_normalised_linkedin_url(client: httpx.AsyncClient) -> None:
    ids = await crm_ids(
        client, {"externalId": "lead-1", "linkedinUrl": "https://linkedin.com/in/sarahchen"}
    )
    response = await client.post(
        "/contacts/sync",
        json={
            "contacts": [
                {
                    "externalId": "lead-9",
                    "email": "unknown@x.com",
                    "linkedinUrl": "http://www.LinkedIn.com/in/SarahChen/",
                }
            ]
        },
    )
    assert [r["crmId"] for r in response.json()["results"]] == [ids["lead-1"]]


async def test_a7_external_id_wins_over_email(client: httpx.AsyncClient) -> None:
    ids = await crm_ids(
        client,
        {"externalId": "lead-1", "email": "one@acme.com"},
        {"externalId": "lead-2", "email": "two@acme.com"},
    )
    # lead-1 now claims lead-2's email: the record created for lead-1 is still its match.
    response = await client.post(
        "/contacts/sync", json={"contacts": [{"externalId": "lead-1", "email": "two@acme.com"}]}
    )
    assert response.json()["results"][0]["crmId"] == ids["lead-1"]


async def test_a7_email_wins_over_linkedin(client: httpx.AsyncClient) -> None:
    ids = await crm_ids(
        client,
        {"externalId": "a", "email": "a@acme.com"},
        {"externalId": "b", "linkedinUrl": "linkedin.com/in/b"},
    )
    response = await client.post(
        "/contacts/sync",
        json={
            "contacts": [
                {"externalId": "z", "email": "a@acme.com", "linkedinUrl": "linkedin.com/in/b"}
            ]
        },
    )
    assert response.json()["results"][0]["crmId"] == ids["a"]


async def test_a7_sync_makes_one_find_call_per_key_per_batch(serve: Any) -> None:
    backend = CountingBackend()
    async with serve(backend=backend) as client:
        await crm_ids(
            client,
            *[{"externalId": f"old-{i}", "email": f"p{i}@acme.com"} for i in range(50)],
        )
        backend.finds.clear()
        batch = (
            [{"externalId": f"old-{i}"} for i in range(10)]  # by external id
            # Found by email; their LinkedIn URLs must then not be looked up.
            + [
                {"externalId": f"new-{i}", "email": f"P{i}@acme.com", "linkedinUrl": f"in/n{i}"}
                for i in range(10, 50)
            ]
            + [{"externalId": f"li-{i}", "linkedinUrl": f"linkedin.com/in/{i}"} for i in range(50)]
        )
        response = await client.post("/contacts/sync", json={"contacts": batch})
    assert len(response.json()["results"]) == 50
    assert [name for name, _, _ in backend.finds] == [EXTERNAL_ID, "email", "linkedinUrl"]
    # Keys are asked only for the items still unmatched, normalised.
    _, _, email_values = backend.finds[1]
    assert len(email_values) == 40 and "p10@acme.com" in email_values
    _, _, linkedin_values = backend.finds[2]
    assert len(linkedin_values) == 50  # the 40 email matches are not asked again


async def test_a7_find_gets_backend_field_name_of_mapped_key(serve: Any, settings_for: Any) -> None:
    backend = CountingBackend()
    settings = settings_for(mapping={"contacts": {"fields": {"email": "email_address"}}})
    async with serve(settings, backend) as client:
        await client.post(
            "/contacts/sync", json={"contacts": [{"externalId": "x", "email": "a@b.c"}]}
        )
    assert ("email", "email_address", ["a@b.c"]) in backend.finds


async def test_a7_configured_phone_key(serve: Any, settings_for: Any) -> None:
    settings = settings_for(
        matching={"contacts": ["email", {"field": "mobilePhone", "normaliser": "phone"}]}
    )
    async with serve(settings) as client:
        ids = await crm_ids(client, {"externalId": "a", "mobilePhone": "+1 (555) 010-0123"})
        response = await client.post(
            "/contacts/sync",
            json={"contacts": [{"externalId": "z", "mobilePhone": "+1-555-010-0123"}]},
        )
    assert response.json()["results"][0]["crmId"] == ids["a"]


# -- update -------------------------------------------------------------------------------------


async def test_a6_partial_update_does_not_blank_other_fields(
    client: httpx.AsyncClient, backend: MemoryBackend
) -> None:
    ids = await crm_ids(
        client, {"externalId": "l", "firstName": "John", "lastName": "Doe", "title": "CEO"}
    )
    response = await client.put(
        "/contacts", json={"contacts": [{"crmId": ids["l"], "lastName": "Updated"}]}
    )
    assert response.status_code == 200
    assert response.json() == {"results": [{"crmId": ids["l"], "success": True}]}
    fields = (await backend.get_records(Entity.CONTACT, [ids["l"]]))[ids["l"]].fields
    assert fields == {"firstName": "John", "lastName": "Updated", "title": "CEO"}


async def test_a6_engagement_fields_update(
    client: httpx.AsyncClient, backend: MemoryBackend
) -> None:
    ids = await crm_ids(client, {"externalId": "l", "firstName": "John"})
    await client.put(
        "/contacts",
        json={
            "contacts": [
                {"crmId": ids["l"], "genesy_sequence_status": "Replied", "campaignOpens": 5}
            ]
        },
    )
    fields = (await backend.get_records(Entity.CONTACT, [ids["l"]]))[ids["l"]].fields
    assert fields == {"firstName": "John", "genesy_sequence_status": "Replied", "campaignOpens": 5}


async def test_a6_null_is_ignored_by_default(
    client: httpx.AsyncClient, backend: MemoryBackend
) -> None:
    ids = await crm_ids(client, {"externalId": "l", "firstName": "John", "title": "CEO"})
    await client.put("/contacts", json={"contacts": [{"crmId": ids["l"], "title": None}]})
    fields = (await backend.get_records(Entity.CONTACT, [ids["l"]]))[ids["l"]].fields
    assert fields["title"] == "CEO"


async def test_a6_null_clears_when_configured(serve: Any, settings_for: Any) -> None:
    backend = MemoryBackend()
    settings = settings_for(
        mapping={"contacts": {"nulls": "clear", "fields": {"title": "job_title"}}}
    )
    async with serve(settings, backend) as client:
        ids = await crm_ids(client, {"externalId": "l", "firstName": "John", "title": "CEO"})
        await client.put("/contacts", json={"contacts": [{"crmId": ids["l"], "title": None}]})
    fields = (await backend.get_records(Entity.CONTACT, [ids["l"]]))[ids["l"]].fields
    assert fields == {"firstName": "John"}


async def test_a6_unknown_crm_id_is_not_found_per_item(client: httpx.AsyncClient) -> None:
    ids = await crm_ids(client, {"externalId": "l"})
    response = await client.put(
        "/contacts",
        json={
            "contacts": [{"crmId": "ct_missing", "title": "X"}, {"crmId": ids["l"], "title": "Y"}]
        },
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[0]["crmId"] == "ct_missing"
    assert results[0]["success"] is False
    assert results[0]["error"] == "not_found"
    assert results[0]["message"]
    assert results[1] == {"crmId": ids["l"], "success": True}


async def test_a6_missing_crm_id_is_400(client: httpx.AsyncClient) -> None:
    response = await client.put("/contacts", json={"contacts": [{"crmId": "a"}, {"title": "X"}]})
    assert response.status_code == 400
    assert response.json()["message"] == "contacts[1].crmId: field required"


async def test_a6_update_refreshes_match_keys(client: httpx.AsyncClient) -> None:
    ids = await crm_ids(client, {"externalId": "l", "email": "old@acme.com"})
    await client.put("/contacts", json={"contacts": [{"crmId": ids["l"], "email": "New@Acme.com"}]})
    new = await client.post(
        "/contacts/sync", json={"contacts": [{"externalId": "z", "email": "new@acme.com"}]}
    )
    old = await client.post(
        "/contacts/sync", json={"contacts": [{"externalId": "z", "email": "old@acme.com"}]}
    )
    assert [r["crmId"] for r in new.json()["results"]] == [ids["l"]]
    assert old.json()["results"] == []


async def test_a6_update_under_reject_policy_is_a_per_item_error(
    serve: Any, settings_for: Any
) -> None:
    settings = settings_for(
        mapping={"contacts": {"fields": {"title": "title"}, "unmapped": "reject"}}
    )
    async with serve(settings) as client:
        ids = await crm_ids(client, {"externalId": "l", "title": "CEO"})
        response = await client.put(
            "/contacts",
            json={
                "contacts": [
                    {"crmId": ids["l"], "colour": "red"},
                    {"crmId": ids["l"], "title": "CTO"},
                ]
            },
        )
    results = response.json()["results"]
    assert results[0]["success"] is False and results[0]["error"] == "unmapped_field"
    assert results[1] == {"crmId": ids["l"], "success": True}


async def test_a1_create_and_sync_shapes_are_exact(client: httpx.AsyncClient) -> None:
    created = await create(client, {"externalId": "lead-1", "email": "a@b.com"})
    assert created.json() == {
        "results": [{"externalId": "lead-1", "crmId": created.json()["results"][0]["crmId"]}]
    }
    synced = await client.post("/contacts/sync", json={"contacts": [{"externalId": "lead-1"}]})
    assert set(synced.json()) == {"results"}
    assert set(synced.json()["results"][0]) == {"externalId", "crmId", "properties"}
    updated = await client.put(
        "/contacts", json={"contacts": [{"crmId": created.json()["results"][0]["crmId"]}]}
    )
    assert set(updated.json()["results"][0]) == {"crmId", "success"}
