"""The matching rules (compound keys, alternatives, any domain extension) on the SQL driver,
through the app: records the adapter wrote are found through its key table (managed and
mapped), rows it did not write through the customer's columns (mapped). SQLite, PostgreSQL,
MariaDB."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from adapter.app import create_app
from adapter.config import Settings

from .conftest import drop_adapter_tables, unique_prefix
from .mapped_schemas import Schema, party_options, party_tables, schema

pytestmark = pytest.mark.anyio
KEY = "rules-sql-key-1234"

RULES = {
    "contacts": ["linkedinUrl", {"fields": ["firstName", "lastName", "company"]}],
    "companies": [{"field": "domain", "normaliser": "domain_any_extension"}],
}
PARTY_MAPPING = {
    "contacts": {"fields": {"firstName": "first_name", "lastName": "last_name",
                            "company": "org_name", "linkedinUrl": "linkedin"}},
    "companies": {"fields": {"name": "org_name", "domain": "website"}},
}  # fmt: skip


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ]
)
async def party(request: pytest.FixtureRequest) -> AsyncIterator[Schema]:
    url = request.getfixturevalue(f"{request.param}_url")
    async with schema(url, party_tables) as s:
        t = s.t("party")
        await s.execute(
            sa.insert(s.t("location_type")).values(id=1, name="Home", is_default=1),
            # rows the CRM wrote (ids from the table's own sequence)
            sa.insert(t).values(kind="org", org_name="Umbrella", website="www.umbrella.de"),
            sa.insert(t).values(kind="person", first_name="Grace", last_name="Hopper",
                                org_name="Navy"),
        )  # fmt: skip
        yield s


async def client_for(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://a", headers={"X-API-Key": KEY}
        ) as client,
    ):
        yield client


async def found(
    client: httpx.AsyncClient, path: str, items: list[dict[str, Any]]
) -> dict[str, str]:
    entity = path.strip("/").split("/")[0]
    answer = await client.post(path, json={entity: items})
    assert answer.status_code == 200, answer.text
    return {r["externalId"]: r["crmId"] for r in answer.json()["results"]}


async def test_rules_on_the_customers_tables(party: Schema) -> None:
    settings = Settings.model_validate(
        {
            "auth": {"keys": [KEY]},
            "backend": {"driver": "sql", "options": {"url": party.url, **party_options(party)}},
            "mapping": PARTY_MAPPING,
            "matching": RULES,
        }
    )
    seeded = {r["org_name"] if r["kind"] == "org" else r["first_name"]: str(r["id"])
              for r in await party.rows("party")}  # fmt: skip
    async for client in client_for(settings):
        made = await client.post(
            "/companies", json={"companies": [{"externalId": "i", "name": "Initech",
                                               "domain": "initech.com"}]}
        )  # fmt: skip
        initech = made.json()["results"][0]["crmId"]
        made = await client.post(
            "/contacts", json={"contacts": [{"externalId": "a", "firstName": "Ada",
                                             "lastName": "Lovelace", "company": "Initech"}]}
        )  # fmt: skip
        ada = made.json()["results"][0]["crmId"]
        # written by the adapter: its key table; written by the CRM: the columns
        assert await found(client, "/companies/sync", [
            {"externalId": "x", "domain": "https://www.initech.es"},
            {"externalId": "y", "domain": "umbrella.co.uk"},
            {"externalId": "z", "domain": "umbrellacorp.com"},
        ]) == {"x": initech, "y": seeded["Umbrella"]}  # fmt: skip
        assert await found(client, "/contacts/sync", [
            {"externalId": "x", "firstName": "ADA", "lastName": "lovelace", "company": "initech"},
            {"externalId": "y", "firstName": "grace", "lastName": "HOPPER", "company": "Navy"},
            {"externalId": "z", "firstName": "Grace", "lastName": "Hopper", "company": "Army"},
        ]) == {"x": ada, "y": seeded["Grace"]}  # fmt: skip
    await drop_adapter_tables_of(settings)


async def drop_adapter_tables_of(settings: Settings) -> None:
    from adapter.config import build_backend
    from backends.sql import SQLBackend

    backend = build_backend(settings)
    assert isinstance(backend, SQLBackend)
    await drop_adapter_tables(backend)


async def test_rules_on_the_adapters_own_tables(sqlite_url: str) -> None:
    settings = Settings.model_validate(
        {
            "auth": {"keys": [KEY]},
            "backend": {"driver": "sql", "options": {"url": sqlite_url,
                                                     "table_prefix": unique_prefix()}},
            "matching": RULES,
        }
    )  # fmt: skip
    async for client in client_for(settings):
        made = await client.post(
            "/contacts", json={"contacts": [{"externalId": "a", "firstName": "Ada",
                                             "lastName": "Lovelace", "company": "Initech"}]}
        )  # fmt: skip
        ada = made.json()["results"][0]["crmId"]
        await client.put("/contacts", json={"contacts": [{"crmId": ada, "company": "Globex"}]})
        assert await found(client, "/contacts/sync", [
            {"externalId": "x", "firstName": "Ada", "lastName": "Lovelace", "company": "Globex"},
            {"externalId": "y", "firstName": "Ada", "lastName": "Lovelace", "company": "Initech"},
        ]) == {"x": ada}  # fmt: skip
