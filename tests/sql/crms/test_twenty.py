"""The Twenty fixture is a Twenty workspace: quoted camelCase composite columns in a
``workspace_*`` schema, native uuid ids, ``double precision`` positions, actor columns that
are ``NOT NULL``, soft deletes, and screens that apply Twenty's own conditions."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from . import twenty
from ._shared import CrmDatabase, column_facts, rows
from .contract import ScreenContract

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


@pytest.fixture(scope="module")
async def crm() -> AsyncIterator[twenty.Twenty]:
    async with twenty.database() as db:
        yield db


class TestTwentyScreens(ScreenContract):
    TABLES = twenty.TABLES

    def schema_of(self, crm: CrmDatabase) -> str | None:
        assert isinstance(crm, twenty.Twenty)
        return crm.schema


async def test_tables_live_in_the_workspace_schema_only(crm: twenty.Twenty) -> None:
    assert crm.schema.startswith("workspace_") and len(crm.schema) == len("workspace_") + 25
    public = await rows(
        crm.engine,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
    )
    assert public == []


async def test_columns_are_what_the_field_metadata_makes_them(crm: twenty.Twenty) -> None:
    person = await column_facts(crm.engine, "person", crm.schema)
    assert person["id"].type == "uuid" and not person["id"].nullable
    assert person["id"].default == "uuid_generate_v4()"
    for name in ("nameFirstName", "nameLastName", "emailsPrimaryEmail",
                 "linkedinLinkPrimaryLinkUrl", "jobTitle"):  # fmt: skip
        assert person[name].type == "text" and person[name].nullable, name
        assert person[name].default == "''::text", name
    assert person["emailsAdditionalEmails"].type == "jsonb"
    assert person["position"].type == "double precision"
    assert not person["position"].nullable and person["position"].default == "0"
    assert person["companyId"].type == "uuid" and person["companyId"].nullable
    assert person["createdAt"].type == "timestamp with time zone"
    assert not person["createdAt"].nullable and person["createdAt"].default == "now()"
    assert person["deletedAt"].nullable and person["deletedAt"].default is None
    assert person["createdBySource"].type == "person_createdBySource_enum"
    assert not person["createdBySource"].nullable
    assert not person["createdByName"].nullable
    assert person["createdByName"].default == "'System'::text"
    assert person["searchVector"].generated
    company = await column_facts(crm.engine, "company", crm.schema)
    assert company["employees"].type == "double precision"
    assert company["domainNamePrimaryLinkUrl"].type == "text"
    assert not company["idealCustomerProfile"].nullable
    task = await column_facts(crm.engine, "task", crm.schema)
    assert task["status"].type == "task_status_enum"
    assert task["status"].default == f"'TODO'::{crm.schema}.task_status_enum"


async def test_a_soft_deleted_person_keeps_its_row_and_email(crm: twenty.Twenty) -> None:
    found = await rows(
        crm.engine,
        f'SELECT "deletedAt" IS NOT NULL AS deleted FROM {crm.table("person")} '
        'WHERE "emailsPrimaryEmail" = :email',
        email=crm.seed.deleted_contact_email,
    )
    assert found == [{"deleted": True}]


async def test_ids_are_native_uuids_so_text_comparisons_fail(crm: twenty.Twenty) -> None:
    assert uuid.UUID(crm.seed.contact_id)
    with pytest.raises(DBAPIError, match="operator does not exist: uuid = character varying"):
        async with crm.engine.connect() as conn:
            await conn.execute(
                sa.text(f"SELECT 1 FROM {crm.table('person')} WHERE id = CAST(:id AS varchar)"),
                {"id": crm.seed.contact_id},
            )


async def test_what_twenty_enforces_on_write(crm: twenty.Twenty) -> None:
    with pytest.raises(DBAPIError, match="createdBySource"):
        async with crm.engine.begin() as conn:
            await conn.execute(
                sa.text(
                    f'INSERT INTO {crm.table("person")} ("nameFirstName", "createdBySource") '
                    "VALUES ('Sam', NULL)"
                )
            )
    with pytest.raises(DBAPIError, match="searchVector"):
        async with crm.engine.begin() as conn:
            await conn.execute(
                sa.text(
                    f'INSERT INTO {crm.table("person")} ("nameFirstName", "searchVector") '
                    "VALUES ('Sam', to_tsvector('sam'))"
                )
            )
    # With only the columns Enginy knows, the defaults make a person Twenty lists.
    async with crm.engine.begin() as conn:
        sam = (
            await conn.execute(
                sa.text(
                    f'INSERT INTO {crm.table("person")} ("nameFirstName", "nameLastName", '
                    "\"emailsPrimaryEmail\") VALUES ('Sam', 'Stranger', "
                    "'sam@stranger.example') RETURNING id"
                )
            )
        ).scalar_one()
    try:
        listed = {c.id: c for c in await crm.contacts()}
        assert listed[str(sam)].email == "sam@stranger.example"
        created = await rows(
            crm.engine,
            f'SELECT "createdBySource", "createdByName", position FROM {crm.table("person")} '
            "WHERE id = :id",
            id=sam,
        )
        assert created == [{"createdBySource": "MANUAL", "createdByName": "System", "position": 0}]
    finally:
        async with crm.engine.begin() as conn:
            await conn.execute(
                sa.text(f"DELETE FROM {crm.table('person')} WHERE id = :id"), {"id": sam}
            )
