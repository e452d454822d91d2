"""Companies through the API: create, sync by domain / LinkedIn / name, update, aliases."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from backends.base import Entity
from backends.memory import MemoryBackend
from tests.conftest import error_body

pytestmark = pytest.mark.anyio


async def create(client: httpx.AsyncClient, *companies: dict[str, Any]) -> dict[str, str]:
    response = await client.post("/companies", json={"companies": list(companies)})
    assert response.status_code == 200, response.text
    return {r["externalId"]: r["crmId"] for r in response.json()["results"]}


async def sync(client: httpx.AsyncClient, *companies: dict[str, Any]) -> list[dict[str, Any]]:
    response = await client.post("/companies/sync", json={"companies": list(companies)})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


async def test_create_companies_returns_results(
    client: httpx.AsyncClient, backend: MemoryBackend
) -> None:
    response = await client.post(
        "/companies",
        json={
            "companies": [
                {"externalId": "789", "name": "Acme Inc", "domain": "acme.com", "foundedYear": 1999}
            ]
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"results"}
    assert body["results"][0]["externalId"] == "789"
    crm_id = body["results"][0]["crmId"]
    stored = (await backend.get_records(Entity.COMPANY, [crm_id]))[crm_id]
    assert stored.fields == {"name": "Acme Inc", "domain": "acme.com", "foundedYear": 1999}


async def test_numeric_external_id_is_accepted_as_text(client: httpx.AsyncClient) -> None:
    ids = await create(client, {"externalId": 789, "name": "Acme"})
    assert list(ids) == ["789"]


async def test_a4_company_create_is_idempotent_on_external_id(
    client: httpx.AsyncClient, backend: MemoryBackend
) -> None:
    first = await create(client, {"externalId": "co-1", "name": "Acme"})
    second = await create(client, {"externalId": "co-1", "name": "Acme"})
    assert first == second
    assert (await backend.counts())["companies"] == 1


async def test_a7_company_sync_by_normalised_domain(client: httpx.AsyncClient) -> None:
    ids = await create(client, {"externalId": "co-1", "domain": "https://www.Acme.com/about"})
    results = await sync(
        client,
        {"externalId": "x1", "domain": "WWW.ACME.COM"},
        {"externalId": "x2", "domain": "unknown-company.com"},
    )
    assert [(r["externalId"], r["crmId"]) for r in results] == [("x1", ids["co-1"])]


async def test_a7_company_sync_falls_back_to_linkedin_then_name(client: httpx.AsyncClient) -> None:
    ids = await create(
        client,
        {"externalId": "li", "linkedinUrl": "https://linkedin.com/company/acme"},
        {"externalId": "nm", "name": "Globex   Corporation"},
    )
    results = await sync(
        client,
        {
            "externalId": "a",
            "domain": "nomatch.io",
            "linkedinUrl": "www.linkedin.com/company/ACME/",
        },
        {"externalId": "b", "domain": "nomatch.io", "name": "globex corporation"},
    )
    assert [(r["externalId"], r["crmId"]) for r in results] == [("a", ids["li"]), ("b", ids["nm"])]


async def test_a7_domain_wins_over_name(client: httpx.AsyncClient) -> None:
    ids = await create(
        client,
        {"externalId": "by-domain", "domain": "acme.com", "name": "Something Else"},
        {"externalId": "by-name", "name": "Acme"},
    )
    results = await sync(client, {"externalId": "q", "domain": "acme.com", "name": "Acme"})
    assert results[0]["crmId"] == ids["by-domain"]


async def test_a8_employee_count_is_number_of_employees(
    client: httpx.AsyncClient, backend: MemoryBackend
) -> None:
    ids = await create(client, {"externalId": "co-1", "employeeCount": 500})
    stored = (await backend.get_records(Entity.COMPANY, [ids["co-1"]]))[ids["co-1"]]
    assert stored.fields == {"numberOfEmployees": 500}
    results = await sync(client, {"externalId": "co-1"})
    assert results[0]["properties"] == {"numberOfEmployees": 500}


async def test_a8_employee_count_alias_follows_the_mapping(serve: Any, settings_for: Any) -> None:
    backend = MemoryBackend()
    settings = settings_for(mapping={"companies": {"fields": {"numberOfEmployees": "headcount"}}})
    async with serve(settings, backend) as client:
        ids = await create(client, {"externalId": "a", "employeeCount": 150})
        await client.put(
            "/companies", json={"companies": [{"crmId": ids["a"], "employeeCount": 200}]}
        )
        results = await sync(client, {"externalId": "a"})
    stored = (await backend.get_records(Entity.COMPANY, [ids["a"]]))[ids["a"]]
    assert stored.fields == {"headcount": 200}
    assert results[0]["properties"] == {"numberOfEmployees": 200}


async def test_a6_company_partial_update(client: httpx.AsyncClient, backend: MemoryBackend) -> None:
    ids = await create(
        client, {"externalId": "c", "name": "Acme", "industry": "Tech", "domain": "acme.com"}
    )
    response = await client.put(
        "/companies",
        json={
            "companies": [{"crmId": ids["c"], "industry": "Software", "accountTier": "Enterprise"}]
        },
    )
    assert response.json() == {"results": [{"crmId": ids["c"], "success": True}]}
    stored = (await backend.get_records(Entity.COMPANY, [ids["c"]]))[ids["c"]]
    assert stored.fields == {
        "name": "Acme",
        "industry": "Software",
        "domain": "acme.com",
        "accountTier": "Enterprise",
    }


async def test_a6_unknown_company_crm_id_is_not_found(client: httpx.AsyncClient) -> None:
    response = await client.put("/companies", json={"companies": [{"crmId": "nope", "name": "x"}]})
    assert response.status_code == 200
    result = response.json()["results"][0]
    assert (result["crmId"], result["success"], result["error"]) == ("nope", False, "not_found")


async def test_a7_company_sync_properties_are_mapped_back(serve: Any, settings_for: Any) -> None:
    settings = settings_for(mapping={"companies": {"fields": {"domain": "website"}}})
    async with serve(settings) as client:
        ids = await create(client, {"externalId": "c", "domain": "acme.com", "totalDeals": 5})
        results = await sync(client, {"externalId": "other", "domain": "http://acme.com/"})
    assert results == [
        {
            "externalId": "other",
            "crmId": ids["c"],
            "properties": {"domain": "acme.com", "totalDeals": 5},
        }
    ]


async def test_companies_missing_external_id_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/companies", json={"companies": [{"name": "Acme"}]})
    assert response.status_code == 400
    assert error_body(response) == {
        "error": "invalid_request",
        "message": "companies[0].externalId: field required",
    }
