"""The fake behaves as the HubSpot facts say (so driver tests against it mean something)."""

from __future__ import annotations

import httpx
import pytest

from backends.testing.hubspot import FakeHubSpot

from .conftest import TOKEN, VirtualClock

pytestmark = pytest.mark.anyio

V3 = "https://api.hubapi.com/crm/v3/objects"


@pytest.fixture
async def http(fake: FakeHubSpot) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=fake.transport(), headers={"Authorization": f"Bearer {TOKEN}"}
    )


async def create(
    http: httpx.AsyncClient, inputs: list[dict[str, object]], kind: str = "contacts"
) -> httpx.Response:
    return await http.post(f"{V3}/{kind}/batch/create", json={"inputs": inputs})


async def test_wrong_token_is_401(fake: FakeHubSpot) -> None:
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        response = await http.get(f"{V3}/contacts", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.json()["category"] == "INVALID_AUTHENTICATION"


async def test_batch_limit_is_100(http: httpx.AsyncClient) -> None:
    inputs = [{"properties": {"email": f"a{i}@x.io"}} for i in range(101)]
    assert (await create(http, inputs)).status_code == 400
    assert (await create(http, inputs[:100])).status_code == 201


async def test_unknown_property_fails_whole_batch_without_trace_ids(
    http: httpx.AsyncClient, fake: FakeHubSpot
) -> None:
    response = await create(
        http,
        [{"properties": {"email": "a@x.io"}}, {"properties": {"email": "b@x.io", "nope": "1"}}],
    )
    assert response.status_code == 400
    assert "PROPERTY_DOESNT_EXIST" in response.json()["message"]
    assert fake.objects["contacts"] == {}


async def test_unknown_property_gives_207_with_trace_ids(http: httpx.AsyncClient) -> None:
    response = await create(
        http,
        [
            {"properties": {"email": "a@x.io"}, "objectWriteTraceId": "t1"},
            {"properties": {"email": "b@x.io", "nope": "1"}, "objectWriteTraceId": "t2"},
        ],
    )
    assert response.status_code == 207
    data = response.json()
    assert [r["objectWriteTraceId"] for r in data["results"]] == ["t1"]
    assert data["errors"][0]["context"]["objectWriteTraceId"] == ["t2"]


async def test_duplicate_email_is_409_with_the_id_only_in_the_message(
    http: httpx.AsyncClient,
) -> None:
    first = (await create(http, [{"properties": {"email": "a@x.io"}}])).json()["results"][0]
    response = await create(
        http,
        [
            {"properties": {"email": "z@x.io"}, "objectWriteTraceId": "1"},
            {"properties": {"email": "A@x.io"}, "objectWriteTraceId": "2"},
        ],
    )
    assert response.status_code == 409
    body = response.json()
    assert body["message"] == f"Contact already exists. Existing ID: {first['id']}"
    assert body["category"] == "CONFLICT"
    assert "id" not in body and "context" not in body


async def test_batch_read_by_email_top_level_id_property(http: httpx.AsyncClient) -> None:
    await create(http, [{"properties": {"email": "a@x.io"}}])
    response = await http.post(
        f"{V3}/contacts/batch/read",
        json={
            "idProperty": "email",
            "inputs": [{"id": "a@x.io"}, {"id": "b@x.io"}],
            "properties": ["email"],
        },
    )
    assert response.status_code == 207
    assert [r["properties"]["email"] for r in response.json()["results"]] == ["a@x.io"]
    bad = await http.post(
        f"{V3}/contacts/batch/read", json={"idProperty": "firstname", "inputs": [{"id": "x"}]}
    )
    assert bad.status_code == 400


async def test_batch_update_by_email_is_refused(http: httpx.AsyncClient) -> None:
    await create(http, [{"properties": {"email": "a@x.io"}}])
    response = await http.post(
        f"{V3}/contacts/batch/update",
        json={
            "inputs": [{"id": "a@x.io", "idProperty": "email", "properties": {"firstname": "A"}}]
        },
    )
    assert response.status_code == 400
    assert "non-unique" in response.json()["message"]


async def test_search_in_needs_lower_case_and_lags_writes(clock: VirtualClock) -> None:
    fake = FakeHubSpot(token=TOKEN, clock=clock, search_lag=5.0)
    async with httpx.AsyncClient(
        transport=fake.transport(), headers={"Authorization": f"Bearer {TOKEN}"}
    ) as http:
        await create(http, [{"properties": {"email": "Ana@X.io"}}])

        async def search(value: str) -> int:
            response = await http.post(
                f"{V3}/contacts/search",
                json={
                    "filterGroups": [
                        {
                            "filters": [
                                {"propertyName": "email", "operator": "IN", "values": [value]}
                            ]
                        }
                    ]
                },
            )
            return int(response.json()["total"])

        assert await search("ana@x.io") == 0  # not indexed yet
        clock.now += 6
        assert await search("ana@x.io") == 1
        assert await search("Ana@X.io") == 0  # IN values must be lower-case


async def test_search_limits(http: httpx.AsyncClient, clock: VirtualClock) -> None:
    flt = {"propertyName": "email", "operator": "EQ", "value": "a"}
    too_many_groups = {"filterGroups": [{"filters": [flt]}] * 6}
    too_many_filters = {"filterGroups": [{"filters": [flt] * 7}]}
    too_many_total = {"filterGroups": [{"filters": [flt] * 6}] * 4}
    too_long = {"filterGroups": [{"filters": [{**flt, "value": "x" * 3000}]}]}
    past_10k = {"limit": 200, "after": "9900"}
    for body in (
        too_many_groups,
        too_many_filters,
        too_many_total,
        too_long,
        past_10k,
        {"limit": 201},
    ):
        clock.now += 1  # stay under the 5/s search limit
        assert (await http.post(f"{V3}/contacts/search", json=body)).status_code == 400


async def test_ten_secondly_limit(clock: VirtualClock) -> None:
    fake = FakeHubSpot(token=TOKEN, clock=clock, rate_limit=3)
    async with httpx.AsyncClient(
        transport=fake.transport(), headers={"Authorization": f"Bearer {TOKEN}"}
    ) as http:
        statuses = [(await http.get(f"{V3}/contacts")).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        last = await http.get(f"{V3}/contacts")
        assert last.json()["policyName"] == "TEN_SECONDLY_ROLLING"
        assert last.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        clock.now += 10.5
        assert (await http.get(f"{V3}/contacts")).status_code == 200


async def test_search_secondly_and_daily_limits(clock: VirtualClock) -> None:
    fake = FakeHubSpot(token=TOKEN, clock=clock, search_per_second=1, daily_limit=3)
    async with httpx.AsyncClient(
        transport=fake.transport(), headers={"Authorization": f"Bearer {TOKEN}"}
    ) as http:
        assert (await http.post(f"{V3}/contacts/search", json={})).status_code == 200
        second = await http.post(f"{V3}/contacts/search", json={})
        assert second.status_code == 429
        assert "secondly limit" in second.json()["message"]
        assert "X-HubSpot-RateLimit-Max" not in second.headers
        await http.get(f"{V3}/contacts")
        await http.get(f"{V3}/contacts")
        daily = await http.get(f"{V3}/contacts")
        assert daily.status_code == 429 and daily.json()["policyName"] == "DAILY"


async def test_association_type_ids_and_direction(
    http: httpx.AsyncClient, fake: FakeHubSpot
) -> None:
    contact = (await create(http, [{"properties": {"email": "a@x.io"}}])).json()["results"][0]
    company = (await create(http, [{"properties": {"name": "Acme"}}], "companies")).json()[
        "results"
    ][0]
    wrong = await http.post(
        "https://api.hubapi.com/crm/v4/associations/contacts/companies/batch/create",
        json={
            "inputs": [
                {
                    "from": {"id": contact["id"]},
                    "to": {"id": company["id"]},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 280}],
                }
            ]
        },
    )
    assert wrong.status_code == 400  # 280 is company → contact
    ok = await http.post(
        "https://api.hubapi.com/crm/v4/associations/contacts/companies/batch/associate/default",
        json={"inputs": [{"from": {"id": contact["id"]}, "to": {"id": company["id"]}}]},
    )
    assert ok.status_code == 200
    assert ok.json()["results"][0]["associationSpec"]["associationTypeId"] == 279
    assert ("companies", company["id"], "contacts", contact["id"], 280) in fake.store.associations
    task = await http.post(
        f"{V3}/tasks",
        json={
            "properties": {"hs_timestamp": "2026-01-01T00:00:00Z", "hs_task_subject": "x"},
            "associations": [
                {
                    "to": {"id": contact["id"]},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 203}],
                }
            ],
        },
    )
    assert task.status_code == 400  # 203 is contact → task; a task needs 204


async def test_date_versioned_paths_are_served(http: httpx.AsyncClient) -> None:
    response = await http.get("https://api.hubapi.com/crm/objects/2026-03/contacts")
    assert response.status_code == 200


async def test_a_stock_portal_has_only_hubspot_defined_properties(
    http: httpx.AsyncClient, fake: FakeHubSpot
) -> None:
    props = fake.store.properties
    assert all(p["hubspotDefined"] for t in props.values() for p in t.values())
    assert (
        "hs_linkedin_url" in props["contacts"] and "linkedin_profile_url" not in props["contacts"]
    )
    response = await create(
        http, [{"properties": {"email": "a@x.io", "linkedin_profile_url": "x"}}]
    )
    assert response.status_code == 400
    assert "PROPERTY_DOESNT_EXIST" in response.json()["message"]


async def test_enumerations_take_only_internal_option_values(http: httpx.AsyncClient) -> None:
    for value, status in (
        ("Technology", 400),
        ("Computer Software", 400),
        ("COMPUTER_SOFTWARE", 201),
    ):
        response = await create(
            http, [{"properties": {"name": "A", "industry": value}}], "companies"
        )
        assert response.status_code == status, value
    bad = await create(http, [{"properties": {"name": "A", "industry": "Technology"}}], "companies")
    assert "INVALID_OPTION" in bad.json()["message"]


async def test_a_search_on_a_property_the_portal_lacks_is_a_400(http: httpx.AsyncClient) -> None:
    flt = {"propertyName": "linkedin_profile_url", "operator": "IN", "values": ["x"]}
    response = await http.post(f"{V3}/contacts/search", json={"filterGroups": [{"filters": [flt]}]})
    assert response.status_code == 400
    assert "linkedin_profile_url" in response.json()["message"]
    sort = {"sorts": [{"propertyName": "nope", "direction": "ASCENDING"}]}
    assert (await http.post(f"{V3}/contacts/search", json=sort)).status_code == 400


async def test_search_lags_writes_by_default(fake: FakeHubSpot, http: httpx.AsyncClient) -> None:
    assert fake.store.search_lag > 0
    await create(http, [{"properties": {"email": "a@x.io"}}])
    flt = {"propertyName": "email", "operator": "EQ", "value": "a@x.io"}
    found = await http.post(f"{V3}/contacts/search", json={"filterGroups": [{"filters": [flt]}]})
    assert found.json()["total"] == 0


async def test_the_search_429_names_its_policy(clock: VirtualClock) -> None:
    fake = FakeHubSpot(token=TOKEN, clock=clock)  # 5 searches per second, as HubSpot
    async with httpx.AsyncClient(
        transport=fake.transport(), headers={"Authorization": f"Bearer {TOKEN}"}
    ) as http:
        statuses = [
            (await http.post(f"{V3}/contacts/search", json={})).status_code for _ in range(6)
        ]
        assert statuses == [200] * 5 + [429]
        refused = await http.post(f"{V3}/contacts/search", json={})
        assert refused.json()["policyName"] == "SECONDLY"


async def test_default_rate_limit_is_a_free_portal_s(clock: VirtualClock) -> None:
    fake = FakeHubSpot(token=TOKEN, clock=clock)
    async with httpx.AsyncClient(
        transport=fake.transport(), headers={"Authorization": f"Bearer {TOKEN}"}
    ) as http:
        statuses = [(await http.get(f"{V3}/contacts")).status_code for _ in range(101)]
    assert statuses.count(200) == 100 and statuses[-1] == 429


async def test_companies_from_contact_email_domains(clock: VirtualClock) -> None:
    fake = FakeHubSpot(token=TOKEN, clock=clock, auto_create_companies=True)
    async with httpx.AsyncClient(
        transport=fake.transport(), headers={"Authorization": f"Bearer {TOKEN}"}
    ) as http:
        await create(
            http,
            [
                {"properties": {"email": "a@acme.io"}},
                {"properties": {"email": "b@ACME.io"}},
                {"properties": {"email": "c@gmail.com"}},
            ],
        )
    (company,) = fake.objects["companies"].values()
    assert company["properties"]["domain"] == "acme.io"
    linked = {
        a[1] for a in fake.store.associations if a[:1] == ("contacts",) and a[3] == company["id"]
    }
    assert len(linked) == 2


@pytest.mark.parametrize(
    ("stored", "value", "hit"),
    [
        # The docs' example: an e-mail address is one token, completed by the wildcard.
        ("ana@hubspot.com", "*@hubspot.com", True),
        ("ana@hubspot.com", "hubspot.com", False),  # no wildcard: a whole token only
        ("ana@hubspot.com", "*hubspot", False),
        ("Acme Corp", "acme", True),  # words are tokens; case is ignored
        ("Acme Corp", "ACME CORP", True),
        ("Acme Corp", "acme inc", False),
        ("http://uk.linkedin.com/in/Jane-Doe/?trk=x", "*linkedin.com/in/jane-doe*", True),
        ("linkedin.com/in/jane-doe", "*linkedin.com/in/jane-doe*", True),  # * may be empty
        ("linkedin.com/in/jane", "*linkedin.com/in/jane-doe*", False),
        ("shop.acme.co.uk", "*acme.*", True),
        ("acme-group.com", "*acme.*", False),
        ("acme.com", "a*e.c*", True),  # a wildcard anywhere
    ],
)
def test_contains_token_follows_hubspot_s_operator(stored: str, value: str, hit: bool) -> None:
    from backends.testing.hubspot.links import contains_token

    assert contains_token(stored, value) is hit


async def test_token_and_property_presence_filters_through_search(
    http: httpx.AsyncClient, fake: FakeHubSpot, clock: VirtualClock
) -> None:
    await create(
        http,
        [
            {
                "properties": {
                    "email": "a@x.io",
                    "hs_linkedin_url": "https://www.linkedin.com/in/A/",
                }
            },
            {"properties": {"email": "b@x.io", "hs_linkedin_url": "linkedin.com/in/b"}},
            {"properties": {"email": "c@x.io"}},
        ],
    )
    clock.now += fake.store.search_lag + 1

    async def emails(*filters: dict[str, str]) -> list[str]:
        clock.now += 1
        answer = await http.post(
            f"{V3}/contacts/search",
            json={"filterGroups": [{"filters": list(filters)}], "properties": ["email"]},
        )
        assert answer.status_code == 200, answer.text
        return sorted(r["properties"]["email"] for r in answer.json()["results"])

    url = "hs_linkedin_url"
    assert await emails({"propertyName": url, "operator": "HAS_PROPERTY"}) == ["a@x.io", "b@x.io"]
    assert await emails({"propertyName": url, "operator": "NOT_HAS_PROPERTY"}) == ["c@x.io"]
    token = {"propertyName": url, "operator": "CONTAINS_TOKEN", "value": "*linkedin.com/in/a*"}
    assert await emails(token) == ["a@x.io"]
    assert await emails({**token, "operator": "NOT_CONTAINS_TOKEN"}) == ["b@x.io", "c@x.io"]


async def test_companies_from_contact_email_domains_come_after_a_delay(
    clock: VirtualClock,
) -> None:
    fake = FakeHubSpot(token=TOKEN, clock=clock, auto_create_companies=True, auto_create_delay=1.0)
    async with httpx.AsyncClient(
        transport=fake.transport(), headers={"Authorization": f"Bearer {TOKEN}"}
    ) as http:
        made = await create(http, [{"properties": {"email": "a@acme.io"}}])
        contact = made.json()["results"][0]["id"]
        assert fake.objects["companies"] == {}
        clock.now += 1.5
        await http.get(f"{V3}/contacts")  # HubSpot works in the background; any call shows it
    (company,) = fake.objects["companies"].values()
    assert ("contacts", contact, "companies", company["id"], 1) in fake.store.associations


def test_the_portal_is_served_to_other_processes() -> None:
    from backends.testing.hubspot.server import FakePortalProcess

    with FakePortalProcess(["--rate-limit", "2", "--token", TOKEN]) as portal:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        answers = [
            httpx.get(f"{portal.url}/crm/v3/objects/contacts", headers=headers) for _ in range(3)
        ]
        calls = portal.get("/_fake/calls")
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert [c["status"] for c in calls] == [200, 200, 429]
