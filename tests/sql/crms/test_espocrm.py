"""The EspoCRM fixture is Espo's schema and data: 24-character id columns holding 17-character
ids, utf8mb4_unicode_ci columns in utf8mb3 tables, link tables with their own auto-increment id,
and screens that apply Espo's own conditions."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from . import espocrm
from ._shared import column_facts, rows, table_facts
from .contract import ScreenContract

pytestmark = [pytest.mark.anyio, pytest.mark.mysql]


@pytest.fixture(scope="module")
async def crm() -> AsyncIterator[espocrm.EspoCRM]:
    async with espocrm.database() as db:
        yield db


class TestEspoCRMScreens(ScreenContract):
    TABLES = espocrm.TABLES


async def test_ids_are_17_characters_in_varchar_24_columns(crm: espocrm.EspoCRM) -> None:
    for value in (crm.seed.contact_id, crm.seed.company_id, crm.seed.user_id, espocrm.espo_id()):
        assert re.fullmatch(r"[0-9a-f]{17}", value), value
    for table in ("contact", "account", "user", "note", "task", "email_address"):
        facts = await column_facts(crm.engine, table)
        assert facts["id"].type == "varchar(24)" and not facts["id"].nullable, table
    contact = await column_facts(crm.engine, "contact")
    assert contact["account_id"].type == "varchar(24)" and contact["account_id"].nullable


async def test_columns_collate_utf8mb4_unicode_ci_whatever_the_table_default(
    crm: espocrm.EspoCRM,
) -> None:
    for table in espocrm.TABLES:
        assert await table_facts(crm.engine, table) == {
            "engine": "InnoDB",
            "collation": "utf8mb3_unicode_ci",
        }, table
        for name, column in (await column_facts(crm.engine, table)).items():
            if column.type.startswith(("varchar", "mediumtext")):
                assert column.collation == "utf8mb4_unicode_ci", (table, name)
    server = await rows(crm.engine, "SELECT @@collation_database AS c")
    assert server[0]["c"] != "utf8mb4_unicode_ci"  # what a side table would get by default


async def test_bool_and_text_columns_are_what_the_field_types_make_them(
    crm: espocrm.EspoCRM,
) -> None:
    contact = await column_facts(crm.engine, "contact")
    assert contact["do_not_call"].type == "tinyint(1)"
    assert not contact["do_not_call"].nullable and contact["do_not_call"].default == "0"
    assert contact["deleted"].nullable and contact["deleted"].default == "0"
    assert contact["description"].type == "mediumtext"
    assert contact["address_postal_code"].type == "varchar(40)"
    assert "email_address" not in contact and "title" not in contact
    account = await column_facts(crm.engine, "account")
    assert account["name"].type == "varchar(249)" and account["name"].nullable
    user = await column_facts(crm.engine, "user")
    assert user["delete_id"].type == "varchar(17)" and not user["delete_id"].nullable
    assert user["is_active"].default == "1" and not user["is_active"].nullable
    task = await column_facts(crm.engine, "task")
    assert task["status"].default == "'Not Started'"


async def test_link_tables_have_their_own_id_and_a_unique_pair(crm: espocrm.EspoCRM) -> None:
    link = await column_facts(crm.engine, "account_contact")
    assert link["id"].type == "bigint(20)" and not link["id"].nullable
    assert set(link) == {"id", "account_id", "contact_id", "role", "is_inactive", "deleted"}
    async with crm.engine.connect() as conn:
        indexes = await conn.run_sync(lambda sync: sa.inspect(sync).get_indexes("account_contact"))
        email_indexes = await conn.run_sync(
            lambda sync: sa.inspect(sync).get_indexes("entity_email_address")
        )
    pair = next(i for i in indexes if i["unique"])
    assert pair["name"] == "UNIQ_ACCOUNT_ID_CONTACT_ID"
    assert pair["column_names"] == ["account_id", "contact_id"]
    unique = next(i for i in email_indexes if i["unique"])
    assert unique["column_names"] == ["entity_id", "email_address_id", "entity_type"]
    extra = await rows(crm.engine, "SHOW COLUMNS FROM account_contact LIKE 'id'")
    assert extra[0]["Extra"] == "auto_increment"


async def test_a_contact_keeps_both_association_forms_and_its_title_is_the_role(
    crm: espocrm.EspoCRM,
) -> None:
    jane = await rows(
        crm.engine, "SELECT account_id FROM contact WHERE id = :id", id=crm.seed.contact_id
    )
    assert jane == [{"account_id": crm.seed.company_id}]
    link = await rows(
        crm.engine,
        "SELECT account_id, role, deleted FROM account_contact WHERE contact_id = :id",
        id=crm.seed.contact_id,
    )
    assert link == [{"account_id": crm.seed.company_id, "role": "Head of Sales", "deleted": 0}]


async def test_a_deleted_contact_keeps_a_live_email_link_that_search_ignores(
    crm: espocrm.EspoCRM,
) -> None:
    live = await rows(
        crm.engine,
        """SELECT eea.deleted FROM entity_email_address eea
           JOIN email_address ea ON ea.id = eea.email_address_id
           WHERE ea.lower = :lower""",
        lower=crm.seed.deleted_contact_email,
    )
    assert live == [{"deleted": 0}]
    assert await crm.find_by_email(crm.seed.deleted_contact_email) == []
    assert await crm.find_by_email("john.SMITH@globex.example") != []


async def test_the_many_to_many_panel_and_the_account_field_read_different_columns() -> None:
    """A contact linked only through ``account_contact`` shows on the account's Contacts
    panel but has no Account (nor title) on its own page; only ``account_id`` fills those."""
    async with espocrm.database() as crm:
        sam = espocrm.espo_id()
        async with crm.engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO contact (id, deleted, first_name, last_name, do_not_call) "
                    "VALUES (:id, 0, 'Sam', 'Stranger', 0)"
                ),
                {"id": sam},
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO account_contact (account_id, contact_id, role, deleted) "
                    "VALUES (:a, :c, 'Buyer', 0)"
                ),
                {"a": crm.seed.company_id, "c": sam},
            )
        company = await crm.company(crm.seed.company_id)
        assert company is not None and sam in company.contact_ids
        detail = await crm.contact(sam)
        assert detail is not None
        assert detail.company is None and detail.title is None
        assert {c.id: c.company for c in await crm.contacts()}[sam] is None
