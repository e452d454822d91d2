"""Mapped mode on the column types and keys CRMs use: native ``uuid`` keys made by the
database in a schema of their own, quoted camelCase columns, ``double precision``, enums, a
generated ``tsvector``, ``timestamptz`` soft deletes (PostgreSQL); 17-character ids in
``varchar(24)`` keys and tables in a collation other than the server's (MariaDB)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from backends.base import (
    EXTERNAL_ID,
    AssociationPair,
    Entity,
    MatchKey,
    NewRecord,
    NotFound,
    RecordUpdate,
)
from backends.sql import SQLBackend, SQLOptions

from .conftest import OpenBackend

pytestmark = pytest.mark.anyio


@pytest.fixture
async def workspace(postgres_url: str) -> AsyncIterator[tuple[str, str]]:
    """A PostgreSQL schema with uuid-keyed tables like a workspace CRM's."""
    name = f"ws_{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(postgres_url)
    ddl = [
        f"CREATE SCHEMA {name}",
        f"CREATE TYPE {name}.source_enum AS ENUM ('MANUAL', 'API', 'IMPORT')",
        f"""CREATE TABLE {name}.company (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            name text NOT NULL DEFAULT '',
            "domainNamePrimaryLinkUrl" text NOT NULL DEFAULT '',
            employees double precision,
            "idealCustomerProfile" boolean NOT NULL DEFAULT false,
            position double precision NOT NULL DEFAULT 0,
            "createdAt" timestamptz NOT NULL DEFAULT now(),
            "deletedAt" timestamptz)""",
        f"""CREATE TABLE {name}.person (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            "nameFirstName" text NOT NULL DEFAULT '',
            "nameLastName" text NOT NULL DEFAULT '',
            "emailsPrimaryEmail" text NOT NULL DEFAULT '',
            "jobTitle" text NOT NULL DEFAULT '',
            position double precision NOT NULL DEFAULT 0,
            "createdBySource" {name}.source_enum NOT NULL DEFAULT 'MANUAL',
            "createdByName" text NOT NULL DEFAULT '',
            "createdAt" timestamptz NOT NULL DEFAULT now(),
            "updatedAt" timestamptz NOT NULL DEFAULT now(),
            "deletedAt" timestamptz,
            "companyId" uuid REFERENCES {name}.company(id) ON DELETE SET NULL,
            "searchVector" tsvector GENERATED ALWAYS AS (
                to_tsvector('simple', "nameFirstName" || ' ' || "emailsPrimaryEmail")) STORED)""",
        f'CREATE INDEX ON {name}.person (lower("emailsPrimaryEmail"))',
    ]
    try:
        async with engine.begin() as conn:
            for statement in ddl:
                await conn.execute(sa.text(statement))
        yield postgres_url, name
    finally:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"DROP SCHEMA {name} CASCADE"))
        await engine.dispose()


def workspace_options(url: str, name: str) -> dict[str, Any]:
    return {
        "url": url,
        "mode": "mapped",
        "contacts": {
            "table": "person",
            "schema": name,
            "where": {"deletedAt": None},
            "on_create": {"createdBySource": "API", "createdByName": "Enginy"},
            "on_update": {"updatedAt": {"now": True}},
        },
        "companies": {"table": "company", "schema": name, "where": {"deletedAt": None}},
        "associations": {"fk_column": "companyId"},
    }


@pytest.mark.postgres
async def test_native_uuid_keys_in_a_schema_of_their_own(
    workspace: tuple[str, str], open_backend: OpenBackend
) -> None:
    url, name = workspace
    async with open_backend(**workspace_options(url, name)) as backend:
        [person] = await backend.create_records(
            Entity.CONTACT,
            [
                NewRecord(
                    "p-1",
                    {
                        "nameFirstName": "Ada",
                        "emailsPrimaryEmail": "ada@acme.example",
                        "jobTitle": "CTO",
                    },
                    {"email": "ada@acme.example"},
                )
            ],
        )
        [company] = await backend.create_records(
            Entity.COMPANY, [NewRecord("c-1", {"name": "Acme", "employees": 51})]
        )
        assert person.ok and company.ok, (person.error, company.error)
        crm_id = person.crm_id or ""
        assert str(uuid.UUID(crm_id)) == crm_id  # made by the column's default
        # sync by external id and by key: uuid keys compared with the side tables' text ids
        by_ext = await backend.find_records(Entity.CONTACT, MatchKey(EXTERNAL_ID), ["p-1"])
        assert by_ext["p-1"].crm_id == crm_id
        by_key = await backend.find_records(
            Entity.CONTACT, MatchKey("email", "emailsPrimaryEmail"), ["ada@acme.example"]
        )
        assert by_key["ada@acme.example"].crm_id == crm_id
        # a PUT right after the create finds it; an upper-case spelling of the id too
        [done] = await backend.update_records(
            Entity.CONTACT, [RecordUpdate(crm_id.upper(), {"jobTitle": "CEO"})]
        )
        assert done.ok, done.error
        [cleared] = await backend.update_records(
            Entity.CONTACT, [RecordUpdate(crm_id, {}, clear=frozenset({"jobTitle"}))]
        )
        assert cleared.ok, cleared.error
        [linked] = await backend.create_associations(
            [AssociationPair(crm_id, company.crm_id or "")]
        )
        assert linked.ok, linked.error
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.text(
                        f'SELECT "jobTitle", "createdBySource"::text AS source, "createdByName",'
                        f' "companyId"::text AS company FROM {name}.person'
                    )
                )
            ).one()
            employees = (
                await conn.execute(sa.text(f"SELECT employees FROM {name}.company"))
            ).scalar()
        await engine.dispose()
        # "no value" in a NOT NULL text column is '' (clearing it)
        assert (row.jobTitle, row.source, row.createdByName) == ("", "API", "Enginy")
        assert row.company == company.crm_id
        assert employees == 51.0
        # the dashboard's search reads the text columns, not the enum
        listed = await backend.list_records(Entity.CONTACT, search="ADA@acme")
        assert [r.crm_id for r in listed] == [crm_id]
        got = await backend.get_records(Entity.COMPANY, [company.crm_id or ""])
        assert got[company.crm_id or ""].fields["employees"] == 51
        # a person soft-deleted in the CRM is gone for Enginy
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.execute(sa.text(f'UPDATE {name}.person SET "deletedAt" = now()'))
        await engine.dispose()
        assert await backend.get_records(Entity.CONTACT, [crm_id]) == {}
        [gone] = await backend.update_records(
            Entity.CONTACT, [RecordUpdate(crm_id, {"jobTitle": "x"})]
        )
        assert isinstance(gone.error, NotFound)
        assert await backend.find_records(Entity.CONTACT, MatchKey(EXTERNAL_ID), ["p-1"]) == {}


@pytest.mark.postgres
async def test_check_accepts_every_type_of_the_workspace_tables(
    workspace: tuple[str, str],
) -> None:
    url, name = workspace
    backend = SQLBackend(SQLOptions.model_validate(workspace_options(url, name)))
    fields = {
        Entity.CONTACT: {
            "firstName": "nameFirstName",
            "email": "emailsPrimaryEmail",
            "title": "jobTitle",
        },
        Entity.COMPANY: {
            "name": "name",
            "domain": "domainNamePrimaryLinkUrl",
            "numberOfEmployees": "employees",
        },
    }
    report = await backend.check_setup(fields)
    assert report.problems == ()
    # the e-mail lookup has its expression index; the domain's has none: a note says so
    text = "\n".join(report.notes)
    assert "sync by email" not in text
    assert "sync by domain compares lower(domainNamePrimaryLinkUrl)" in text


ESPO_DDL = [
    """CREATE TABLE {t}contact (
        id varchar(24) NOT NULL PRIMARY KEY,
        first_name varchar(100), last_name varchar(100),
        do_not_call tinyint(1) NOT NULL DEFAULT 0,
        deleted tinyint(1) NOT NULL DEFAULT 0,
        account_id varchar(24),
        created_at datetime, modified_at datetime)
       DEFAULT CHARSET=utf8mb3 COLLATE=utf8mb3_unicode_ci""",
    """CREATE TABLE {t}account (
        id varchar(24) NOT NULL PRIMARY KEY,
        name varchar(249) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci,
        deleted tinyint(1) NOT NULL DEFAULT 0)
       DEFAULT CHARSET=utf8mb3 COLLATE=utf8mb3_unicode_ci""",
    """CREATE TABLE {t}account_contact (
        id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
        account_id varchar(24), contact_id varchar(24),
        role varchar(100), is_inactive tinyint(1) NOT NULL DEFAULT 0,
        deleted tinyint(1) NOT NULL DEFAULT 0,
        UNIQUE KEY uniq (account_id, contact_id))
       DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
]


@pytest.fixture
async def espo_like(mysql_url: str) -> AsyncIterator[tuple[str, str]]:
    tag = f"e{uuid.uuid4().hex[:6]}_"
    engine = create_async_engine(mysql_url)
    try:
        async with engine.begin() as conn:
            for statement in ESPO_DDL:
                # The key columns in utf8mb4_unicode_ci, the server's default is another one.
                sql = statement.format(t=tag).replace(
                    "id varchar(24)",
                    "id varchar(24) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
                )
                await conn.execute(sa.text(sql))
            server = (await conn.execute(sa.text("SELECT @@collation_database"))).scalar()
        assert server != "utf8mb4_unicode_ci"  # else this test would prove nothing
        yield mysql_url, tag
    finally:
        async with engine.begin() as conn:
            for table in ("contact", "account", "account_contact"):
                await conn.execute(sa.text(f"DROP TABLE IF EXISTS {tag}{table}"))
        await engine.dispose()


@pytest.mark.mysql
async def test_short_ids_and_a_collation_other_than_the_servers(
    espo_like: tuple[str, str], open_backend: OpenBackend
) -> None:
    url, tag = espo_like
    options = {
        "url": url,
        "mode": "mapped",
        "contacts": {
            "table": f"{tag}contact",
            "id_strategy": "espo",
            "where": {"deleted": 0},
            "on_create": {"created_at": {"now": True}, "modified_at": {"now": True}},
        },
        "companies": {"table": f"{tag}account", "id_strategy": "espo", "where": {"deleted": 0}},
        "associations": {
            "table": f"{tag}account_contact",
            "contact_column": "contact_id",
            "company_column": "account_id",
            "where": {"deleted": 0},
            "on_create": {"is_inactive": 0},
            "fk_column": "account_id",
        },
    }
    async with open_backend(**options) as backend:
        made = await backend.create_records(
            Entity.CONTACT, [NewRecord(f"p-{i}", {"first_name": f"P{i}"}) for i in range(3)]
        )
        assert all(r.ok for r in made), made
        ids = [r.crm_id or "" for r in made]
        assert all(len(i) == 17 and int(i, 16) >= 0 for i in ids)
        # joins of the side tables with the mapped keys: no "Illegal mix of collations"
        found = await backend.find_records(Entity.CONTACT, MatchKey(EXTERNAL_ID), ["p-0", "p-2"])
        assert {v: r.crm_id for v, r in found.items()} == {"p-0": ids[0], "p-2": ids[2]}
        [account] = await backend.create_records(Entity.COMPANY, [NewRecord("a", {"name": "Acme"})])
        [linked] = await backend.create_associations(
            [AssociationPair(ids[0], account.crm_id or "")]
        )
        assert linked.ok, linked.error
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            links = (
                (await conn.execute(sa.text(f"SELECT * FROM {tag}account_contact")))
                .mappings()
                .all()
            )
            fk = (
                await conn.execute(
                    sa.text(f"SELECT account_id FROM {tag}contact WHERE id = :i"), {"i": ids[0]}
                )
            ).scalar()
            collations = dict(
                (
                    await conn.execute(
                        sa.text(
                            "SELECT TABLE_NAME, TABLE_COLLATION FROM information_schema.TABLES "
                            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE :p"
                        ),
                        {"p": backend.options.table_prefix + "%"},
                    )
                ).all()
            )
        await engine.dispose()
        # both places EspoCRM keeps the link
        assert [(r["contact_id"], r["account_id"], r["deleted"]) for r in links] == [
            (ids[0], account.crm_id, 0)
        ]
        assert fk == account.crm_id
        assert set(collations.values()) == {"utf8mb4_unicode_ci"}
