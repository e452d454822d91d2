"""Mapped mode on tables whose keys the application makes (text UUIDs): e-mail addresses
shared between records through a link table (found by an upper-cased copy), an extension
table keyed by the record's id, a link table of associations with its own key and a soft
delete, and activities and tasks in the CRM's own note and task tables. SQLite, PostgreSQL,
MariaDB."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa

from backends.base import (
    AssociationPair,
    Entity,
    MatchKey,
    NewActivity,
    NewRecord,
    NewTask,
    NotFound,
    RecordUpdate,
    TaskChanges,
)

from .conftest import OpenBackend
from .mapped_schemas import Schema, bean_options, bean_tables, schema

pytestmark = pytest.mark.anyio

EMAIL = MatchKey("email", "email")
NOW = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ]
)
async def beans(request: pytest.FixtureRequest) -> AsyncIterator[Schema]:
    url = request.getfixturevalue(f"{request.param}_url")
    async with schema(url, bean_tables) as s:
        yield s


def lead(ext: str, email: str, **more: Any) -> NewRecord:
    return NewRecord(
        ext,
        {"first_name": "Ada", "last_name": ext, "email": email, **more},
        {"email": email.lower()},
    )


def engagement(s: Schema) -> dict[str, Any]:
    return {
        "activities": {
            "table": s.name("note"),
            "id_strategy": "uuid",
            "columns": {"subject": "name", "body": "description"},
            "where": {"deleted": 0},
            "on_create": {"date_entered": {"now": True}, "date_modified": {"now": True}},
            "contact_column": "lead_id",
            "parent": {
                "type_column": "parent_type",
                "id_column": "parent_id",
                "company": "Accounts",
                "prefer": "company",
            },
        },
        "tasks": {
            "table": s.name("task"),
            "id_strategy": "uuid",
            "columns": {"subject": "name", "description": "description", "due_date": "date_due"},
            "where": {"deleted": 0},
            "on_create": {"date_entered": {"now": True}, "date_modified": {"now": True}},
            "on_update": {"date_modified": {"now": True}},
            "contact_column": "lead_id",
            "parent": {
                "type_column": "parent_type",
                "id_column": "parent_id",
                "contact": "Leads",
                "company": "Accounts",
            },
            "completed": {
                "column": "status",
                "done": ["Completed", "Deferred"],
                "open": "Not Started",
            },
            "truncate": True,
        },
    }


async def test_shared_addresses_through_a_link_table(
    beans: Schema, open_backend: OpenBackend
) -> None:
    async with open_backend(beans.url, **bean_options(beans)) as backend:
        made = await backend.create_records(
            Entity.CONTACT,
            [lead("a", "Team@Acme.example", linkedin_c="li/a"), lead("b", "team@acme.example")],
        )
        assert all(r.ok for r in made), made
        a, b = (r.crm_id or "" for r in made)
        assert uuid.UUID(a) and len(a) == 36  # the adapter made the text key
        # one shared address row (found again by its upper-cased copy), two primary links
        [address] = await beans.rows("address")
        assert (address["address"], address["address_caps"]) == (
            "Team@Acme.example",
            "TEAM@ACME.EXAMPLE",
        )
        links = await beans.rows("address_rel")
        assert sorted(r["bean_id"] for r in links) == sorted([a, b])
        assert all(
            (r["address_id"], r["primary_address"], r["bean_module"], r["deleted"])
            == (address["id"], 1, "Leads", 0)
            for r in links
        )
        assert all(len(r["id"]) == 36 for r in links)
        [cstm] = await beans.rows("lead_cstm")
        assert (cstm["id_c"], cstm["linkedin_c"]) == (a, "li/a")
        # an address typed differently by someone else is found through the copy's index
        await beans.execute(
            sa.insert(beans.t("lead")).values(id="seed", first_name="Seed", deleted=0),
            sa.insert(beans.t("address")).values(
                id="addr-seed", address="Seed@Example.COM", address_caps="SEED@EXAMPLE.COM"
            ),
            sa.insert(beans.t("address_rel")).values(
                id="rel-seed",
                address_id="addr-seed",
                bean_id="seed",
                bean_module="Leads",
                primary_address=1,
            ),
            # a retired link names nobody
            sa.insert(beans.t("address_rel")).values(
                id="rel-old",
                address_id="addr-seed",
                bean_id=a,
                bean_module="Leads",
                primary_address=0,
                deleted=1,
            ),
        )
        found = await backend.find_records(Entity.CONTACT, EMAIL, ["seed@example.com"])
        assert found["seed@example.com"].crm_id == "seed"
        assert found["seed@example.com"].fields["email"] == "Seed@Example.COM"
        # a new address for a: the primary link moves, the shared row stays for b
        [moved] = await backend.update_records(
            Entity.CONTACT, [RecordUpdate(a, {"email": "a@x.example"})]
        )
        assert moved.ok, moved.error
        got = await backend.get_records(Entity.CONTACT, [a, b])
        assert (got[a].fields["email"], got[b].fields["email"]) == (
            "a@x.example",
            "Team@Acme.example",
        )
        assert len(await beans.rows("address")) == 3
        # clearing retires the link (deleted = 1), the address row stays
        [cleared] = await backend.update_records(
            Entity.CONTACT, [RecordUpdate(b, {}, clear=frozenset({"email"}))]
        )
        assert cleared.ok, cleared.error
        rel = [r for r in await beans.rows("address_rel", bean_id=b)]
        assert [(r["deleted"], r["primary_address"]) for r in rel] == [(1, 1)]
        assert "email" not in (await backend.get_records(Entity.CONTACT, [b]))[b].fields
        # a soft-deleted lead is invisible, whatever finds it
        await beans.execute(
            sa.update(beans.t("lead")).where(beans.t("lead").c.id == "seed").values(deleted=1)
        )
        assert await backend.find_records(Entity.CONTACT, EMAIL, ["seed@example.com"]) == {}


async def test_a_link_table_with_its_own_key_and_a_soft_delete(
    beans: Schema, open_backend: OpenBackend
) -> None:
    async with open_backend(beans.url, **bean_options(beans)) as backend:
        [person] = await backend.create_records(Entity.CONTACT, [lead("a", "a@x.example")])
        [account] = await backend.create_records(
            Entity.COMPANY, [NewRecord("acme", {"name": "Acme"})]
        )
        pair = AssociationPair(person.crm_id or "", account.crm_id or "")
        assert [r.ok for r in await backend.create_associations([pair, pair])] == [True, True]
        [row] = await beans.rows("account_lead")
        assert (row["lead_id"], row["account_id"], row["deleted"]) == (
            person.crm_id,
            account.crm_id,
            0,
        )
        assert len(row["id"]) == 36 and row["date_modified"] is not None
        assert [r.ok for r in await backend.create_associations([pair])] == [True]
        assert len(await beans.rows("account_lead")) == 1
        # someone removes the link in the CRM (deleted = 1); linking again revives it
        await beans.execute(sa.update(beans.t("account_lead")).values(deleted=1))
        assert await backend.list_associated(Entity.CONTACT, person.crm_id or "") == []
        assert (await backend.counts())["associations"] == 0
        await backend.create_associations([pair])
        [row] = await beans.rows("account_lead")
        assert row["deleted"] == 0
        linked = await backend.list_associated(Entity.CONTACT, pair.contact_id)
        assert [c.crm_id for c in linked] == [account.crm_id]
        # a deleted account cannot be linked
        await beans.execute(sa.update(beans.t("account")).values(deleted=1))
        [refused] = await backend.create_associations([pair])
        assert isinstance(refused.error, NotFound)


async def test_activities_and_tasks_in_the_crms_tables(
    beans: Schema, open_backend: OpenBackend
) -> None:
    async with open_backend(beans.url, **bean_options(beans, **engagement(beans))) as backend:
        [person] = await backend.create_records(Entity.CONTACT, [lead("a", "a@x.example")])
        [account] = await backend.create_records(Entity.COMPANY, [NewRecord("c", {"name": "Acme"})])
        contact_id, company_id = person.crm_id or "", account.crm_id or ""
        note = NewActivity(
            "EMAIL",
            "OUTBOUND",
            "Hello",
            "Body text",
            contact_id=contact_id,
            company_id=company_id,
            idempotency_key="EMAIL|OUTBOUND|m-1",
            metadata={"messageId": "m-1"},
        )
        first = await backend.create_activity(note)
        again = await backend.create_activity(note)
        assert first.id == again.id
        [row] = await beans.rows("note")
        assert row["id"] == first.id  # the activity's id is the CRM row's
        assert (row["name"], row["description"], row["lead_id"]) == (
            "Hello",
            "Body text",
            contact_id,
        )
        # prefer: company
        assert (row["parent_type"], row["parent_id"]) == ("Accounts", company_id)
        assert row["date_entered"] is not None
        assert first.metadata == {"messageId": "m-1"}

        long_subject = "Call back about the renewal of the enterprise licence, twice"
        task = await backend.create_task(
            NewTask(long_subject, "details", due_date=NOW, contact_id=contact_id)
        )
        [row] = await beans.rows("task")
        assert row["id"] == task.id
        assert row["name"] == long_subject[:50]  # truncate: the column holds 50
        assert task.subject == long_subject  # the adapter's copy keeps it whole
        assert (row["status"], row["parent_type"], row["parent_id"], row["lead_id"]) == (
            "Not Started",
            "Leads",
            contact_id,
            contact_id,
        )
        assert row["date_due"].replace(tzinfo=None) == NOW.replace(tzinfo=None)
        done = await backend.update_task(task.id, TaskChanges(now=NOW, completed=True))
        assert done.completed and done.completed_at is not None
        [row] = await beans.rows("task")
        assert row["status"] == "Completed"
        # completed (or deferred) in the CRM: Enginy sees it completed; reopened: not
        await beans.execute(sa.update(beans.t("task")).values(status="Not Started"))
        assert (await backend.get_task(task.id)).completed is False
        await beans.execute(sa.update(beans.t("task")).values(status="Deferred", name="Renamed"))
        seen = await backend.get_task(task.id)
        assert (seen.completed, seen.subject) == (True, "Renamed")
        # deleted in the CRM: gone for Enginy too
        await beans.execute(sa.update(beans.t("task")).values(deleted=1))
        assert await backend.get_tasks([task.id]) == []
        with pytest.raises(NotFound):
            await backend.update_task(task.id, TaskChanges(now=NOW, completed=False))
