"""Exact HubSpot requests per operation, pinned with respx (paths, bodies, type ids)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx

from backends.base import (
    EXTERNAL_ID,
    AssociationPair,
    Entity,
    MatchKey,
    NewActivity,
    NewRecord,
    NewTask,
    RecordUpdate,
)
from backends.hubspot import HubSpotBackend, HubSpotOptions

from .conftest import TOKEN, VirtualClock

pytestmark = pytest.mark.anyio

API = "https://api.hubapi.com"


def prop(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "string",
        "fieldType": "text",
        "hubspotDefined": True,
        "modificationMetadata": {"readOnlyValue": False},
        **extra,
    }


PROPS = {
    "contacts": [
        prop("email"),
        prop("firstname"),
        prop("lastname"),
        prop("hs_linkedin_url"),
        prop("enginy_external_id", hubspotDefined=False, hasUniqueValue=True),
        prop("enginy_linkedin_key", hubspotDefined=False, hasUniqueValue=True),
    ],
    "companies": [
        prop("name"),
        prop("domain"),
        prop("linkedin_company_page"),
        prop("enginy_external_id", hubspotDefined=False, hasUniqueValue=True),
        prop("enginy_linkedin_key", hubspotDefined=False, hasUniqueValue=True),
        prop("enginy_domain_key", hubspotDefined=False, hasUniqueValue=True),
    ],
    "emails": [
        prop("hs_email_text"),
        prop("enginy_activity_key", hasUniqueValue=True),
        prop("enginy_activity_data"),
    ],
    "communications": [
        prop("hs_communication_body"),
        prop("enginy_activity_key", hasUniqueValue=True),
        prop("enginy_activity_data"),
    ],
    "notes": [
        prop("hs_note_body"),
        prop("enginy_activity_key", hasUniqueValue=True),
        prop("enginy_activity_data"),
    ],
    "tasks": [
        prop(n)
        for n in (
            "hs_task_subject",
            "hs_task_body",
            "hs_task_status",
            "hs_timestamp",
            "hubspot_owner_id",
            "enginy_activity_key",
            "enginy_activity_data",
        )
    ]
    + [prop("hs_task_type", options=[{"value": v} for v in ("TODO", "CALL", "LINKED_IN_CONNECT")])],
}


def body(call: Any) -> Any:
    return json.loads(call.request.content)


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=API, assert_all_called=False) as router:
        router.get("/account-info/v3/details").respond(
            200, json={"portalId": 77, "uiDomain": "app-eu1.hubspot.com"}
        )
        for object_type, props in PROPS.items():
            router.get(f"/crm/v3/properties/{object_type}").respond(200, json={"results": props})
            router.get(f"/crm/properties/2026-03/{object_type}").respond(
                200, json={"results": props}
            )
        yield router


async def opened(**options: Any) -> HubSpotBackend:
    clock = VirtualClock()
    driver = HubSpotBackend(HubSpotOptions(token=TOKEN, **options), sleep=clock.sleep, clock=clock)
    await driver.open()
    return driver


@pytest.fixture
async def driver(api: respx.MockRouter) -> AsyncIterator[HubSpotBackend]:
    driver = await opened()
    yield driver
    await driver.close()


def ok(results: list[dict[str, Any]], status: int = 200) -> httpx.Response:
    return httpx.Response(status, json={"status": "COMPLETE", "results": results})


def obj(id: str, **props: Any) -> dict[str, Any]:
    return {
        "id": id,
        "properties": {"hs_object_id": id, **props},
        "createdAt": "2026-01-01T00:00:00.000Z",
        "updatedAt": "2026-01-01T00:00:00.000Z",
    }


async def test_bearer_token_is_sent(api: respx.MockRouter, driver: HubSpotBackend) -> None:
    route = api.get("/crm/v3/objects/contacts").respond(200, json={"results": []})
    await driver.ping()
    assert route.calls.last.request.headers["authorization"] == f"Bearer {TOKEN}"
    assert route.calls.last.request.url.params["limit"] == "1"


async def test_create_reads_by_external_id_then_batch_creates_with_trace_ids(
    api: respx.MockRouter, driver: HubSpotBackend
) -> None:
    read = api.post("/crm/v3/objects/contacts/batch/read").respond(
        207,
        json={
            "status": "COMPLETE",
            "results": [],
            "errors": [{"status": "error", "category": "OBJECT_NOT_FOUND", "message": "missing"}],
        },
    )
    create = api.post("/crm/v3/objects/contacts/batch/create").mock(
        side_effect=lambda r: ok(
            [
                {
                    **obj(str(500 + i), enginy_external_id=x["properties"]["enginy_external_id"]),
                    "objectWriteTraceId": x["objectWriteTraceId"],
                }
                for i, x in enumerate(json.loads(r.content)["inputs"])
            ],
            201,
        )
    )
    records = [NewRecord(f"e{i}", {"email": f"a{i}@x.io", "firstname": "Ana"}) for i in range(2)]
    results = await driver.create_records(Entity.CONTACT, records)
    assert [(r.crm_id, r.created) for r in results] == [("500", True), ("501", True)]
    sent = body(read.calls.last)
    assert sent["idProperty"] == "enginy_external_id"  # top level for batch/read
    assert sent["inputs"] == [{"id": "e0"}, {"id": "e1"}]
    assert "idProperty" not in sent["inputs"][0]
    created = body(create.calls.last)["inputs"]
    assert created[0] == {
        "properties": {"email": "a0@x.io", "firstname": "Ana", "enginy_external_id": "e0"},
        "associations": [],
        "objectWriteTraceId": "enginy-0",
    }
    assert len({i["objectWriteTraceId"] for i in created}) == 2


async def test_create_splits_at_100_inputs(api: respx.MockRouter, driver: HubSpotBackend) -> None:
    read = api.post("/crm/v3/objects/companies/batch/read").respond(200, json={"results": []})
    create = api.post("/crm/v3/objects/companies/batch/create").mock(
        side_effect=lambda r: ok(
            [
                {
                    **obj(
                        str(1000 + int(x["objectWriteTraceId"].split("-")[1])),
                        enginy_external_id=x["properties"]["enginy_external_id"],
                    ),
                    "objectWriteTraceId": x["objectWriteTraceId"],
                }
                for x in json.loads(r.content)["inputs"]
            ],
            201,
        )
    )
    records = [NewRecord(f"c{i}", {"name": f"Acme {i}"}) for i in range(250)]
    results = await driver.create_records(Entity.COMPANY, records)
    assert all(r.ok for r in results)
    assert [len(body(c)["inputs"]) for c in create.calls] == [100, 100, 50]
    assert [len(body(c)["inputs"]) for c in read.calls] == [100, 100, 50]


async def test_find_by_email_uses_batch_read_with_id_property_email(
    api: respx.MockRouter, driver: HubSpotBackend
) -> None:
    read = api.post("/crm/v3/objects/contacts/batch/read").respond(
        200, json={"results": [obj("7", email="ana@x.io", enginy_external_id="e7")]}
    )
    found = await driver.find_records(
        Entity.CONTACT, MatchKey("email", "email"), ["ana@x.io", "bo@x.io"]
    )
    assert found["ana@x.io"].crm_id == "7"
    assert found["ana@x.io"].external_id == "e7"
    assert "bo@x.io" not in found
    sent = body(read.calls.last)
    assert sent["idProperty"] == "email"
    assert sent["inputs"] == [{"id": "ana@x.io"}, {"id": "bo@x.io"}]
    assert read.calls.last.request.url.params["archived"] == "false"


async def test_find_by_external_id_uses_the_unique_property(
    api: respx.MockRouter, driver: HubSpotBackend
) -> None:
    read = api.post("/crm/v3/objects/companies/batch/read").respond(
        200, json={"results": [obj("9", enginy_external_id="x1", name="Acme")]}
    )
    found = await driver.find_records(Entity.COMPANY, MatchKey(EXTERNAL_ID), ["x1"])
    assert found["x1"].fields == {"name": "Acme"}
    assert body(read.calls.last)["idProperty"] == "enginy_external_id"


async def test_find_by_linkedin_reads_the_key_then_searches_hand_made_records(
    api: respx.MockRouter, driver: HubSpotBackend
) -> None:
    read = api.post("/crm/v3/objects/companies/batch/read").respond(
        207, json={"results": [obj("4", enginy_linkedin_key="linkedin.com/company/beta")]}
    )
    search = api.post("/crm/v3/objects/companies/search").respond(
        200,
        json={
            "total": 1,
            "results": [obj("3", linkedin_company_page="https://www.LinkedIn.com/company/Acme/")],
        },
    )
    found = await driver.find_records(
        Entity.COMPANY,
        MatchKey("linkedinUrl", "linkedin_company_page"),
        ["linkedin.com/company/acme", "linkedin.com/company/beta"],
    )
    assert found["linkedin.com/company/acme"].crm_id == "3"  # made by hand: no key
    assert found["linkedin.com/company/beta"].crm_id == "4"  # made by the adapter: the key
    sent = body(read.calls.last)
    assert sent["idProperty"] == "enginy_linkedin_key"
    assert sent["inputs"] == [
        {"id": "linkedin.com/company/acme"},
        {"id": "linkedin.com/company/beta"},
    ]
    # One search for every company with a LinkedIn page and no key: those made by hand.
    sent = body(search.calls.last)
    assert sent["filterGroups"] == [
        {
            "filters": [
                {"propertyName": "linkedin_company_page", "operator": "HAS_PROPERTY"},
                {"propertyName": "enginy_linkedin_key", "operator": "NOT_HAS_PROPERTY"},
            ]
        }
    ]
    assert sent["sorts"] == [{"propertyName": "createdate", "direction": "ASCENDING"}]
    assert sent["limit"] == 200
    assert "linkedin_company_page" in sent["properties"]
    assert len(search.calls.last.request.content) <= 3000


async def test_many_hand_made_urls_are_searched_with_contains_token_five_at_a_time(
    api: respx.MockRouter, driver: HubSpotBackend
) -> None:
    api.post("/crm/v3/objects/contacts/batch/read").respond(200, json={"results": []})
    census = {
        "total": 5000,
        "results": [obj(str(i), hs_linkedin_url=f"linkedin.com/in/other-{i}") for i in range(200)],
        "paging": {"next": {"after": "200"}},
    }
    hand_made = obj("7", hs_linkedin_url="HTTP://uk.LinkedIn.com/in/Lead-3/?trk=x")
    search = api.post("/crm/v3/objects/contacts/search").mock(
        side_effect=[
            httpx.Response(200, json=census),
            httpx.Response(200, json={"total": 1, "results": [hand_made]}),
            httpx.Response(200, json={"total": 0, "results": []}),
        ]
    )
    wanted = [f"linkedin.com/in/lead-{i}" for i in range(7)]
    found = await driver.find_records(
        Entity.CONTACT, MatchKey("linkedinUrl", "hs_linkedin_url", "linkedin"), wanted
    )
    assert {v: r.crm_id for v, r in found.items()} == {"linkedin.com/in/lead-3": "7"}
    # 5,000 unkeyed contacts: 24 more census pages would cost more than 2 token searches.
    assert search.call_count == 3
    first, second = body(search.calls[1]), body(search.calls[2])
    for sent, values in ((first, wanted[:5]), (second, wanted[5:])):
        assert sent["filterGroups"] == [
            {
                "filters": [
                    {
                        "propertyName": "hs_linkedin_url",
                        "operator": "CONTAINS_TOKEN",
                        "value": f"*{value}*",
                    },
                    {"propertyName": "enginy_linkedin_key", "operator": "NOT_HAS_PROPERTY"},
                ]
            }
            for value in values
        ]
    assert all(len(call.request.content) <= 3000 for call in search.calls)


async def test_find_by_name_searches_lower_case_in(
    api: respx.MockRouter, driver: HubSpotBackend
) -> None:
    search = api.post("/crm/v3/objects/companies/search").respond(
        200, json={"total": 1, "results": [obj("3", name="ACME  Inc")]}
    )
    found = await driver.find_records(Entity.COMPANY, MatchKey("name", "name"), ["acme inc"])
    assert found["acme inc"].crm_id == "3"
    (flt,) = body(search.calls.last)["filterGroups"][0]["filters"]
    assert flt == {"propertyName": "name", "operator": "IN", "values": ["acme inc"]}


async def test_update_is_batch_update_by_id_without_id_property(
    api: respx.MockRouter, driver: HubSpotBackend
) -> None:
    update = api.post("/crm/v3/objects/contacts/batch/update").respond(
        200, json={"results": [{**obj("5"), "objectWriteTraceId": "enginy-0"}]}
    )
    results = await driver.update_records(
        Entity.CONTACT, [RecordUpdate("5", {"firstname": "Bo"}, clear=frozenset({"lastname"}))]
    )
    assert results[0].ok
    (item,) = body(update.calls.last)["inputs"]
    assert item == {
        "id": "5",
        "properties": {"firstname": "Bo", "lastname": ""},
        "objectWriteTraceId": "enginy-0",
    }


async def test_associations_use_v4_default_batch(
    api: respx.MockRouter, driver: HubSpotBackend
) -> None:
    route = api.post("/crm/v4/associations/contacts/companies/batch/associate/default").respond(
        200,
        json={
            "status": "COMPLETE",
            "results": [
                {
                    "from": {"id": "1"},
                    "to": {"id": "2"},
                    "associationSpec": {
                        "associationCategory": "HUBSPOT_DEFINED",
                        "associationTypeId": 279,
                    },
                }
            ],
        },
    )
    results = await driver.create_associations([AssociationPair("1", "2")])
    assert results[0].ok and results[0].crm_id == "1"
    assert body(route.calls.last) == {"inputs": [{"from": {"id": "1"}, "to": {"id": "2"}}]}


async def test_primary_association_uses_type_1(api: respx.MockRouter) -> None:
    driver = await opened(primary_company=True)
    route = api.post("/crm/v4/associations/contacts/companies/batch/create").respond(
        201, json={"results": [{"fromObjectId": 1, "toObjectId": 2, "labels": []}]}
    )
    results = await driver.create_associations([AssociationPair("1", "2")])
    assert results[0].ok
    assert body(route.calls.last)["inputs"][0]["types"] == [
        {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}
    ]


@pytest.mark.parametrize(
    ("kind", "direction", "object_type", "expected", "type_ids"),
    [
        (
            "EMAIL",
            "OUTBOUND",
            "emails",
            {
                "hs_email_direction": "EMAIL",
                "hs_email_status": "SENT",
                "hs_email_subject": "Hi",
                "hs_email_text": "Body",
            },
            (198, 186),
        ),
        ("EMAIL", "INBOUND", "emails", {"hs_email_direction": "INCOMING_EMAIL"}, (198, 186)),
        (
            "LINKEDIN",
            "OUTBOUND",
            "communications",
            {
                "hs_communication_channel_type": "LINKEDIN_MESSAGE",
                "hs_communication_logged_from": "CRM",
                "hs_communication_body": "Body",
            },
            (81, 87),
        ),
        (
            "LINKEDIN_INMAIL",
            "INBOUND",
            "communications",
            {"hs_communication_channel_type": "LINKEDIN_MESSAGE"},
            (81, 87),
        ),
        (
            "LINKEDIN_CONNECTION",
            "OUTBOUND",
            "tasks",
            {"hs_task_type": "LINKED_IN_CONNECT", "hs_task_status": "COMPLETED"},
            (204, 192),
        ),
        ("WEBINAR", None, "notes", {"hs_note_body": "Body"}, (202, 190)),
    ],
)
async def test_activity_engagement_properties_and_association_ids(
    api: respx.MockRouter,
    driver: HubSpotBackend,
    kind: str,
    direction: str | None,
    object_type: str,
    expected: dict[str, str],
    type_ids: tuple[int, int],
) -> None:
    api.post("/crm/v3/objects/contacts/batch/read").respond(200, json={"results": [obj("1")]})
    api.post("/crm/v3/objects/companies/batch/read").respond(200, json={"results": [obj("2")]})
    api.post(f"/crm/v3/objects/{object_type}/batch/read").respond(200, json={"results": []})
    create = api.post(f"/crm/v3/objects/{object_type}").respond(201, json=obj("77"))
    activity = NewActivity(
        type=kind,
        direction=direction,
        subject="Hi",
        body="Body",
        contact_id="1",
        company_id="2",
        idempotency_key=f"{kind}|m1",
    )
    result = await driver.create_activity(activity)
    assert result.id == "77"
    sent = body(create.calls.last)
    for name, value in expected.items():
        assert sent["properties"][name] == value
    assert sent["properties"]["enginy_activity_key"] == f"{kind}|m1"
    assert "hs_timestamp" in sent["properties"]
    assert [(a["to"]["id"], a["types"][0]["associationTypeId"]) for a in sent["associations"]] == [
        ("1", type_ids[0]),
        ("2", type_ids[1]),
    ]
    assert all(
        a["types"][0]["associationCategory"] == "HUBSPOT_DEFINED" for a in sent["associations"]
    )


async def test_task_create_properties_and_association(
    api: respx.MockRouter, driver: HubSpotBackend
) -> None:
    api.post("/crm/v3/objects/contacts/batch/read").respond(200, json={"results": [obj("1")]})
    create = api.post("/crm/v3/objects/tasks").respond(
        201, json=obj("88", hs_task_subject="Call", hs_task_status="NOT_STARTED")
    )
    task = await driver.create_task(NewTask(subject="Call", type="call", contact_id="1"))
    assert task.id == "88" and task.completed is False
    sent = body(create.calls.last)
    assert sent["properties"]["hs_task_status"] == "NOT_STARTED"
    assert sent["properties"]["hs_task_type"] == "CALL"
    assert sent["properties"]["hs_task_subject"] == "Call"
    assert sent["associations"] == [
        {
            "to": {"id": "1"},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}],
        }
    ]


async def test_owners_are_paged_without_trailing_slash(
    api: respx.MockRouter, driver: HubSpotBackend
) -> None:
    route = api.get("/crm/v3/owners").mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "results": [{"id": "1", "email": "a@x.io", "firstName": "A", "lastName": "B"}],
                    "paging": {"next": {"after": "1"}},
                },
            ),
            httpx.Response(200, json={"results": [{"id": "2", "email": "c@x.io"}]}),
        ]
    )
    users = await driver.list_users()
    assert [(u.id, u.name) for u in users] == [("1", "A B"), ("2", "c@x.io")]
    assert route.calls[1].request.url.params["after"] == "1"
    assert route.calls[0].request.url.params["archived"] == "false"


async def test_date_versioned_paths(api: respx.MockRouter) -> None:
    driver = await opened(api_version="2026-03")
    read = api.post("/crm/objects/2026-03/contacts/batch/read").respond(200, json={"results": []})
    assoc = api.post(
        "/crm/associations/2026-03/contacts/companies/batch/associate/default"
    ).respond(200, json={"results": [{"from": {"id": "1"}, "to": {"id": "2"}}]})
    await driver.find_records(Entity.CONTACT, MatchKey(EXTERNAL_ID), ["x"])
    assert (await driver.create_associations([AssociationPair("1", "2")]))[0].ok
    assert read.called and assoc.called
