"""The HTTP front on the HubSpot driver (served by the fake): the contract end to end."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from adapter.mapping import build_mappers
from backends.base import Entity
from backends.hubspot import HubSpotBackend
from backends.testing.hubspot import FakeHubSpot

from .conftest import MakeBackend, serve

pytestmark = pytest.mark.anyio

DAILY = {
    "status": "error",
    "message": "You have reached your daily limit.",
    "errorType": "RATE_LIMIT",
    "policyName": "DAILY",
}


@pytest.fixture
async def client(make_backend: MakeBackend, fake: FakeHubSpot) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(make_backend()) as client:
        yield client


def test_default_field_map_is_accepted_by_the_front() -> None:
    from adapter.config import MappingConfig

    mappers = build_mappers(MappingConfig(), HubSpotBackend.default_field_map)
    contact = mappers[Entity.CONTACT].to_backend(
        {"firstName": "Ana", "title": "CEO", "linkedinUrl": "x"}
    )
    assert contact == {"firstname": "Ana", "jobtitle": "CEO", "hs_linkedin_url": "x"}
    company = mappers[Entity.COMPANY].to_backend({"employeeCount": 17})
    assert company == {"numberofemployees": 17}


async def test_export_then_sync_round_trip(client: httpx.AsyncClient, fake: FakeHubSpot) -> None:
    lead = {
        "externalId": "lead-1",
        "email": "Ana@Acme.io",
        "firstName": "Ana",
        "title": "CEO",
        "linkedinUrl": "https://www.linkedin.com/in/ana",
    }
    created = await client.post("/contacts", json={"contacts": [lead]})
    assert created.status_code == 200, created.text
    crm_id = created.json()["results"][0]["crmId"]
    stored = fake.objects["contacts"][crm_id]["properties"]
    assert stored["jobtitle"] == "CEO" and stored["enginy_external_id"] == "lead-1"
    again = await client.post("/contacts", json={"contacts": [lead]})
    assert again.json()["results"][0]["crmId"] == crm_id
    assert len(fake.objects["contacts"]) == 1
    synced = await client.post(
        "/contacts/sync", json={"contacts": [{"externalId": "other", "email": "ana@acme.io"}]}
    )
    (match,) = synced.json()["results"]
    assert match["crmId"] == crm_id
    assert match["properties"]["firstName"] == "Ana"
    assert match["properties"]["title"] == "CEO"


async def test_daily_quota_is_503_to_enginy(client: httpx.AsyncClient, fake: FakeHubSpot) -> None:
    fake.fail_next(429, DAILY)
    response = await client.post(
        "/companies", json={"companies": [{"externalId": "acct-1", "name": "Acme"}]}
    )
    assert response.status_code == 503
    assert response.json()["error"] == "backend_rate_limited"


async def test_outage_past_the_budget_is_503_with_retry_after(
    make_backend: MakeBackend, fake: FakeHubSpot
) -> None:
    async with serve(make_backend(budget_seconds=5)) as client:
        fake.fail_next(503, {"status": "error", "message": "down"}, times=100)
        response = await client.post(
            "/companies", json={"companies": [{"externalId": "acct-1", "name": "Acme"}]}
        )
    assert response.status_code == 503
    assert response.json()["error"] == "backend_unavailable"
    assert "retry-after" in response.headers


async def test_users_are_owners(client: httpx.AsyncClient, fake: FakeHubSpot) -> None:
    response = await client.get("/users")
    assert response.json() == [
        {"id": fake.owners[0]["id"], "name": "Ada Lovelace", "email": "ada@example.com"}
    ]


async def test_association_with_a_missing_company_is_reported(
    client: httpx.AsyncClient,
) -> None:
    contact = await client.post(
        "/contacts", json={"contacts": [{"externalId": "l1", "email": "a@x.io"}]}
    )
    crm_id = contact.json()["results"][0]["crmId"]
    response = await client.post(
        "/associations", json={"associations": [{"contactCRMId": crm_id, "companyCRMId": "424242"}]}
    )
    body = response.json()
    assert body["success"] is False or body.get("errors")
    assert "424242" in str(body)


def test_built_from_yaml_settings_with_the_token_from_the_environment(tmp_path: object) -> None:
    from pathlib import Path

    from adapter.config import ConfigError, build_backend, load_settings

    path = Path(str(tmp_path)) / "adapter.yaml"
    path.write_text(
        "auth: {keys: [k]}\nbackend:\n  driver: hubspot\n  options:\n"
        "    token: ${HUBSPOT_TOKEN}\n    api_version: '2026-03'\n"
    )
    settings = load_settings(path, environ={"HUBSPOT_TOKEN": "pat-na1-from-env"})
    backend = build_backend(settings)
    assert isinstance(backend, HubSpotBackend)
    assert backend.options.token.get_secret_value() == "pat-na1-from-env"
    assert (
        backend.client.paths.batch("contacts", "read") == "/crm/objects/2026-03/contacts/batch/read"
    )
    path.write_text(
        "auth: {keys: [k]}\nbackend:\n  driver: hubspot\n  options:\n    token: x\n    tokne: y\n"
    )
    with pytest.raises(ConfigError, match=r"backend\.options"):
        build_backend(load_settings(path, environ={}))


async def test_a_field_hubspot_cannot_take_is_named_and_the_rest_lands(
    client: httpx.AsyncClient, fake: FakeHubSpot
) -> None:
    companies = [
        {"externalId": "acct-1", "name": "Acme", "domain": "acme.io", "industry": "Technology"},
        {"externalId": "acct-2", "name": "Beta", "domain": "beta.io", "industry": "internet"},
    ]
    created = await client.post("/companies", json={"companies": companies})
    assert created.status_code == 200, created.text
    body = created.json()
    assert [r["externalId"] for r in body["results"]] == ["acct-1", "acct-2"]
    (warning,) = body["warnings"]
    assert (warning["externalId"], warning["field"]) == ("acct-1", "industry")
    assert "'Technology' is not an option" in warning["message"]
    acme, beta = (fake.objects["companies"][r["crmId"]] for r in body["results"])
    assert acme["properties"]["name"] == "Acme" and acme["properties"].get("industry") is None
    assert beta["properties"]["industry"] == "INTERNET"
    # The company exists, so Enginy's next step, the association, is made.
    contact = await client.post(
        "/contacts", json={"contacts": [{"externalId": "l1", "email": "ana@acme.io"}]}
    )
    linked = await client.post(
        "/associations",
        json={
            "associations": [
                {
                    "contactCRMId": contact.json()["results"][0]["crmId"],
                    "companyCRMId": body["results"][0]["crmId"],
                }
            ]
        },
    )
    assert linked.json()["created"] == 1
    updated = await client.put(
        "/companies",
        json={"companies": [{"crmId": body["results"][1]["crmId"], "industry": "Tech"}]},
    )
    assert updated.json()["results"] == [{"crmId": body["results"][1]["crmId"], "success": True}]
    assert updated.json()["warnings"][0]["field"] == "industry"
    assert (
        "warnings"
        not in (
            await client.put(
                "/companies",
                json={"companies": [{"crmId": body["results"][1]["crmId"], "city": "Rome"}]},
            )
        ).json()
    )
