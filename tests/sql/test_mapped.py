"""Mapped schema: the whole contract through the HTTP app against an in-house CRM's tables.

The Settings map Enginy's names onto ``crm_people`` / ``crm_accounts`` columns; the adapter
writes only its side tables besides the customer's rows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from adapter.app import create_app
from adapter.config import Settings, build_backend
from backends.base import (
    EXTERNAL_ID,
    AssociationPair,
    Entity,
    InvalidRecord,
    MatchKey,
    NewActivity,
    NewRecord,
    NotFound,
    RecordUpdate,
)
from backends.sql import SQLBackend, SQLOptions

from .conftest import drop_adapter_tables
from .crm_schema import CRM, FIELD_MAP, crm_schema

pytestmark = pytest.mark.anyio
KEY = "mapped-test-key"


def settings_for(crm: CRM, **options: Any) -> Settings:
    return Settings.model_validate(
        {
            "auth": {"keys": [KEY]},
            "backend": {"driver": "sql", "options": crm.options(**options)},
            "mapping": {
                "contacts": {"fields": FIELD_MAP[Entity.CONTACT]},
                "companies": {"fields": FIELD_MAP[Entity.COMPANY]},
            },
        }
    )


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    backend = build_backend(settings)
    assert isinstance(backend, SQLBackend)
    app = create_app(settings, backend)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app),
                base_url="http://adapter",
                headers={"X-API-Key": KEY},
            ) as client,
        ):
            yield client
    finally:
        await drop_adapter_tables(backend)


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ]
)
async def crm(request: pytest.FixtureRequest) -> AsyncIterator[CRM]:
    url = request.getfixturevalue(f"{request.param}_url")
    async with crm_schema(url) as schema:
        yield schema


async def rows(crm: CRM, table: sa.Table) -> list[dict[str, Any]]:
    engine = create_async_engine(crm.url)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(sa.select(table).order_by(*table.primary_key.columns))
            return [dict(r) for r in result.mappings()]
    finally:
        await engine.dispose()


async def test_whole_contract_on_the_customer_tables(crm: CRM) -> None:
    async with serve(settings_for(crm)) as client:
        assert (await client.get("/health")).json() == {"status": "ok"}

        # companies: mapped columns, a number column
        companies = await client.post(
            "/companies",
            json={
                "companies": [
                    {
                        "externalId": "co-1",
                        "name": "Acme",
                        "domain": "acme.example",
                        "numberOfEmployees": 150,
                        "industry": "Tools",
                    },
                    {"externalId": "co-2", "name": "Globex", "domain": "globex.example"},
                ]
            },
        )
        assert companies.status_code == 200, companies.text
        co = {r["externalId"]: r["crmId"] for r in companies.json()["results"]}
        assert co["co-1"].isdigit()  # the CRM's own integer identity

        # contacts: one title overflows VARCHAR(50): that record fails, the rest land
        long_title = "Chief " + "Very " * 12 + "Important Officer"
        contacts = await client.post(
            "/contacts",
            json={
                "contacts": [
                    {
                        "externalId": "lead-1",
                        "email": "ada@acme.example",
                        "firstName": "Ada",
                        "lastName": "Lovelace",
                        "title": "CTO",
                        "campaignEngagementStatus": "OPENED",
                    },
                    {"externalId": "lead-2", "email": "bob@acme.example", "title": long_title},
                    {"externalId": "lead-3", "email": "cy@globex.example", "firstName": "Cy"},
                ]
            },
        )
        assert contacts.status_code == 200, contacts.text
        body = contacts.json()
        ids = {r["externalId"]: r["crmId"] for r in body["results"]}
        assert set(ids) == {"lead-1", "lead-3"}
        assert [e["externalId"] for e in body["errors"]] == ["lead-2"]
        assert body["errors"][0]["error"] == "invalid_record"
        assert "job_title" in body["errors"][0]["message"]
        people = {r["person_id"]: r for r in await rows(crm, crm.people)}
        ada = people[int(ids["lead-1"])]
        assert (ada["given_name"], ada["family_name"], ada["mail"], ada["job_title"]) == (
            "Ada",
            "Lovelace",
            "ada@acme.example",
            "CTO",
        )
        assert ada["status"] == "lead"  # the column's default was not overridden
        assert '"campaignEngagementStatus":"OPENED"' in ada["custom_json"]
        assert not any(p["mail"] == "bob@acme.example" for p in people.values())

        # idempotent create
        again = await client.post(
            "/contacts",
            json={"contacts": [{"externalId": "lead-1", "email": "other@acme.example"}]},
        )
        assert again.json()["results"] == [{"externalId": "lead-1", "crmId": ids["lead-1"]}]
        assert len(await rows(crm, crm.people)) == 3  # pre-existing + two

        # sync: by externalId, by email (also a row the adapter never wrote), unmatched left out
        synced = await client.post(
            "/contacts/sync",
            json={
                "contacts": [
                    {"externalId": "lead-1"},
                    {"externalId": "lead-9", "email": "CY@globex.example"},
                    {"externalId": "lead-7", "email": "pre.existing@acme.example"},
                    {"externalId": "lead-8", "email": "nobody@nowhere.example"},
                ]
            },
        )
        assert synced.status_code == 200, synced.text
        found = {r["externalId"]: r for r in synced.json()["results"]}
        assert set(found) == {"lead-1", "lead-9", "lead-7"}
        assert found["lead-1"]["crmId"] == ids["lead-1"]
        assert found["lead-1"]["properties"]["firstName"] == "Ada"  # mapped back
        assert found["lead-9"]["crmId"] == ids["lead-3"]
        pre = next(p for p in people.values() if p["given_name"] == "Pre")
        assert found["lead-7"]["crmId"] == str(pre["person_id"])

        # update: partial; an overflowing title is that record's failure
        updated = await client.put(
            "/contacts",
            json={
                "contacts": [
                    {"crmId": ids["lead-1"], "title": "CEO", "phone": "+1 555 0100"},
                    {"crmId": ids["lead-3"], "title": long_title},
                    {"crmId": "424242"},
                ]
            },
        )
        assert updated.status_code == 200, updated.text
        outcome = {r["crmId"]: r for r in updated.json()["results"]}
        assert outcome[ids["lead-1"]]["success"] is True
        assert outcome[ids["lead-3"]]["success"] is False
        assert outcome[ids["lead-3"]]["error"] == "invalid_record"
        assert outcome["424242"]["error"] == "not_found"
        people = {r["person_id"]: r for r in await rows(crm, crm.people)}
        assert (
            people[int(ids["lead-1"])]["job_title"],
            people[int(ids["lead-1"])]["phone_no"],
            people[int(ids["lead-1"])]["given_name"],
        ) == ("CEO", "+1 555 0100", "Ada")
        assert people[int(ids["lead-3"])]["job_title"] is None

        # a company field without a column (and no JSON column) is that record's error
        bad = await client.post(
            "/companies",
            json={"companies": [{"externalId": "co-3", "name": "Initech", "revenue": "1-10M"}]},
        )
        assert bad.status_code == 400
        assert "revenue" in bad.json()["errors"][0]["message"]

        # associations go to the customer's link table
        linked = await client.post(
            "/associations",
            json={
                "associations": [
                    {"contactCRMId": ids["lead-1"], "companyCRMId": co["co-1"]},
                    {"contactCRMId": ids["lead-3"], "companyCRMId": co["co-2"]},
                    {"contactCRMId": ids["lead-1"], "companyCRMId": co["co-1"]},
                ]
            },
        )
        assert linked.status_code == 200, linked.text
        assert linked.json()["success"] is True
        assert {(r["person_id"], r["account_id"]) for r in await rows(crm, crm.links)} == {
            (int(ids["lead-1"]), int(co["co-1"])),
            (int(ids["lead-3"]), int(co["co-2"])),
        }

        # activities and tasks live in the adapter's side tables
        activity = {
            "type": "EMAIL",
            "direction": "OUTBOUND",
            "subject": "Hi",
            "contactId": ids["lead-1"],
            "companyId": co["co-1"],
            "metadata": {"messageId": "m-1"},
        }
        first = await client.post("/activities", json=activity)
        second = await client.post("/activities", json=activity)
        assert first.status_code == 200, first.text
        assert first.json()["id"] == second.json()["id"]
        unknown = await client.post(
            "/activities",
            json={**activity, "contactId": "777777", "metadata": {"messageId": "m-2"}},
        )
        assert unknown.status_code == 400
        assert unknown.json()["message"] == "contactId: no contact exists with ID: 777777"

        task = await client.post("/tasks", json={"subject": "Call Ada", "contactId": ids["lead-1"]})
        assert task.status_code in (200, 201), task.text
        task_id = task.json()["id"]
        done = await client.patch(f"/tasks/{task_id}", json={"completed": True})
        assert done.json()["completed"] is True and done.json()["completedAt"]
        assert (await client.get(f"/tasks/{task_id}")).json()["completed"] is True

        users = await client.get("/users")
        assert users.json() == [
            {"id": "1", "name": "Ada Lovelace", "email": "ada@example.com"},
            {"id": "2", "name": "Grace Hopper"}
            | ({"email": None} if "email" in users.json()[1] else {}),
        ]


async def test_fk_column_associations(crm: CRM, open_backend: Any) -> None:
    """Associations onto a foreign-key column of the contacts table."""
    async with crm_schema(crm.url) as schema:
        fk_people = sa.Table(
            f"{schema.tag}fk_people",
            sa.MetaData(),
            sa.Column("id", sa.String(36), primary_key=True),
            sa.Column("mail", sa.String(254)),
            sa.Column("account_id", sa.Integer),
        )
        engine = create_async_engine(crm.url)
        async with engine.begin() as conn:
            await conn.run_sync(fk_people.create)
        try:
            options = schema.options(
                contacts={"table": fk_people.name, "id_strategy": "uuid"},
                associations={"fk_column": "account_id"},
            )
            async with open_backend(**options) as backend:
                person = await backend.create_record(
                    Entity.CONTACT,
                    NewRecord("p-1", {"mail": "x@y.example"}, {"email": "x@y.example"}),
                )
                account = await backend.create_record(
                    Entity.COMPANY, NewRecord("a-1", {"account_name": "Acme"})
                )
                assert person.crm_id and len(person.crm_id) == 36  # adapter-made UUID
                assert person.crm_id and account.crm_id
                result = await backend.create_associations(
                    [AssociationPair(person.crm_id, account.crm_id)]
                )
                assert result[0].ok
                got = await backend.get_records(Entity.CONTACT, [person.crm_id])
                assert got[person.crm_id].fields["account_id"] == int(account.crm_id)
                companies = await backend.list_associated(Entity.CONTACT, person.crm_id)
                assert [c.crm_id for c in companies] == [account.crm_id]
        finally:
            async with engine.begin() as conn:
                await conn.run_sync(fk_people.drop)
            await engine.dispose()


async def test_check_schema_reports_missing_columns_and_types(crm: CRM) -> None:
    options = SQLOptions.model_validate(
        crm.options(
            companies={
                "table": crm.accounts.name,
                "primary_key": "account_id",
                "json_column": "nope",
            },
        )
    )
    backend = SQLBackend(options)
    field_maps = {
        Entity.CONTACT: {**FIELD_MAP[Entity.CONTACT], "email": "email_addr"},
        Entity.COMPANY: {
            **{k: v for k, v in FIELD_MAP[Entity.COMPANY].items() if k != "name"},
            "domain": "headcount",
        },
    }
    problems = await backend.check_schema(field_maps)
    text = "\n".join(problems)
    assert "column 'email_addr'" in text
    assert "has no column 'nope'" in text
    assert "field 'domain' is text but column" in text
    assert "account_name' is NOT NULL" in text  # nothing fills the required column
    assert len(problems) == 4, problems
    # the healthy configuration has no problems, and a missing table is named
    assert (
        await SQLBackend(SQLOptions.model_validate(crm.options())).check_schema(
            {e: FIELD_MAP[e] for e in Entity}
        )
        == []
    )
    missing = SQLBackend(
        SQLOptions.model_validate(
            crm.options(contacts={"table": "no_such_table", "primary_key": "id"})
        )
    )
    assert await missing.check_schema() == ["contacts: table 'no_such_table' does not exist"]


async def test_check_setup_reports_the_schema_problems_and_the_mode(crm: CRM) -> None:
    backend = SQLBackend(SQLOptions.model_validate(crm.options()))
    field_maps = {
        **{e: FIELD_MAP[e] for e in Entity},
        Entity.CONTACT: {**FIELD_MAP[Entity.CONTACT], "email": "email_addr"},
    }
    report = await backend.check_setup(field_maps)
    assert any("column 'email_addr'" in p for p in report.problems)
    assert report.notes and "mapped" in report.notes[0]
    healthy = await backend.check_setup({e: FIELD_MAP[e] for e in Entity})
    assert healthy.problems == ()


async def test_ids_out_of_the_key_range_are_simply_unknown(crm: CRM, open_backend: Any) -> None:
    """``crm_people.person_id`` is a 32-bit integer: a larger or non-numeric crmId is "not
    found", never a database error."""
    async with open_backend(**crm.options()) as backend:
        odd = ["99999999999", "abc", "-1", "1" * 30]
        assert await backend.get_records(Entity.CONTACT, odd) == {}
        results = await backend.update_records(
            Entity.CONTACT, [RecordUpdate(i, {"mail": "x@y.example"}) for i in odd]
        )
        assert all(isinstance(r.error, NotFound) for r in results)
        with pytest.raises(NotFound):
            await backend.create_activity(NewActivity("EMAIL", contact_id="99999999999"))


async def test_a_row_only_the_database_rejects_fails_alone(crm: CRM, open_backend: Any) -> None:
    """``crm_accounts`` has a CHECK constraint the adapter cannot know: the batch statement
    fails, the batch is replayed row by row in savepoints, and only the guilty record fails."""
    async with open_backend(**crm.options()) as backend:
        batch = [
            NewRecord(f"co-{i}", {"account_name": f"Co {i}", "headcount": n})
            for i, n in enumerate([10, -5, 20])
        ]
        results = await backend.create_records(Entity.COMPANY, batch)
        assert [r.ok for r in results] == [True, False, True]
        assert isinstance(results[1].error, InvalidRecord)
        assert "headcount_ck" in results[1].error.message or "check" in (
            results[1].error.message.lower()
        )
        stored = await backend.find_records(
            Entity.COMPANY, MatchKey(EXTERNAL_ID), ["co-0", "co-1", "co-2"]
        )
        assert sorted(stored) == ["co-0", "co-2"]  # co-1's claim was released
        assert (await backend.counts())["companies"] == 2
        ids = [r.crm_id or "" for r in results]
        updates = await backend.update_records(
            Entity.COMPANY,
            [RecordUpdate(ids[0], {"headcount": -1}), RecordUpdate(ids[2], {"headcount": 30})],
        )
        assert [u.ok for u in updates] == [False, True]
        got = await backend.get_records(Entity.COMPANY, [ids[0], ids[2]])
        assert (got[ids[0]].fields["headcount"], got[ids[2]].fields["headcount"]) == (10, 30)
        # a retry with a valid value creates the record that failed
        [retry] = await backend.create_records(
            Entity.COMPANY, [NewRecord("co-1", {"account_name": "Co 1", "headcount": 5})]
        )
        assert retry.created
