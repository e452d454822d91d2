"""The SuiteCRM fixture is SuiteCRM's schema and data: DDL facts from the vardefs, rows as
SuiteCRM writes them, and screens that apply SuiteCRM's own conditions."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from . import suitecrm
from ._shared import column_facts, rows, table_facts
from .contract import ScreenContract

pytestmark = [pytest.mark.anyio, pytest.mark.mysql]

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
async def crm() -> AsyncIterator[suitecrm.SuiteCRM]:
    async with suitecrm.database() as db:
        yield db


class TestSuiteCRMScreens(ScreenContract):
    TABLES = suitecrm.TABLES


async def test_tables_use_the_installer_default_charset_and_collation(
    crm: suitecrm.SuiteCRM,
) -> None:
    for table in suitecrm.TABLES:
        assert await table_facts(crm.engine, table) == {
            "engine": "InnoDB",
            "collation": "utf8mb4_general_ci",
        }, table


async def test_only_ids_are_not_null_and_defaults_come_from_the_vardefs(
    crm: suitecrm.SuiteCRM,
) -> None:
    contacts = await column_facts(crm.engine, "contacts")
    assert contacts["id"].type == "char(36)" and not contacts["id"].nullable
    assert [name for name, c in contacts.items() if not c.nullable] == ["id"]
    assert contacts["deleted"].type == "tinyint(1)" and contacts["deleted"].default == "0"
    assert contacts["portal_user_type"].default == "'Single'"
    assert contacts["last_name"].type == "varchar(100)"  # required in the UI only
    accounts = await column_facts(crm.engine, "accounts")
    assert accounts["name"].type == "varchar(150)" and accounts["name"].nullable
    assert accounts["employees"].type == "varchar(10)"
    assert accounts["website"].type == "varchar(255)"
    # 'length' (not 'len') in email_addressesMetaData.php is ignored: varchar(255).
    addresses = await column_facts(crm.engine, "email_addresses")
    assert addresses["email_address"].type == "varchar(255)"
    rel = await column_facts(crm.engine, "email_addr_bean_rel")
    assert {n for n, c in rel.items() if not c.nullable} == {
        "id",
        "email_address_id",
        "bean_id",
    }
    assert rel["primary_address"].default == "0"


async def test_the_link_table_has_its_own_id_with_no_default_and_no_unique_pair(
    crm: suitecrm.SuiteCRM,
) -> None:
    link = await column_facts(crm.engine, "accounts_contacts")
    assert link["id"].type == "varchar(36)"
    assert not link["id"].nullable and link["id"].default is None
    assert link["deleted"].default == "0"
    async with crm.engine.connect() as conn:
        indexes = await conn.run_sync(
            lambda sync: sa.inspect(sync).get_indexes("accounts_contacts")
        )
    pair = next(i for i in indexes if i["name"] == "idx_account_contact")
    assert pair["column_names"] == ["account_id", "contact_id"]
    assert not pair["unique"]


async def test_seeded_ids_have_create_guid_shape_and_admin_is_one(
    crm: suitecrm.SuiteCRM,
) -> None:
    assert GUID.match(crm.seed.contact_id)
    assert GUID.match(crm.seed.company_id)
    assert GUID.match(suitecrm.guid())
    users = {u.id for u in await crm.users()}
    assert "1" in users


async def test_email_lookup_goes_through_the_upper_cased_copy(crm: suitecrm.SuiteCRM) -> None:
    stored = await rows(
        crm.engine,
        "SELECT email_address, email_address_caps FROM email_addresses "
        "WHERE email_address = 'John.Smith@Globex.Example'",
    )
    assert stored == [
        {
            "email_address": "John.Smith@Globex.Example",
            "email_address_caps": "JOHN.SMITH@GLOBEX.EXAMPLE",
        }
    ]
    assert await crm.find_by_email(" JANE.DOE@acme.example ") == [crm.seed.contact_id]
    # The deleted contact's address row is still there; its link is marked deleted.
    assert await crm.find_by_email(crm.seed.deleted_contact_email) == []
    leftovers = await rows(
        crm.engine,
        "SELECT deleted FROM email_addresses WHERE email_address = :a",
        a=crm.seed.deleted_contact_email,
    )
    assert leftovers == [{"deleted": 0}]


async def test_studio_fields_live_in_contacts_cstm_keyed_by_id_c(crm: suitecrm.SuiteCRM) -> None:
    cstm = await column_facts(crm.engine, "contacts_cstm")
    assert cstm["id_c"].type == "char(36)" and not cstm["id_c"].nullable
    assert cstm["linkedin_c"].type == "varchar(255)"
    assert cstm["jjwg_maps_lat_c"].type == "float(10,8)"
    detail = await crm.contact(crm.seed.contact_id)
    assert detail is not None
    assert detail.extra["linkedin_c"] == "https://www.linkedin.com/in/jane-doe"


async def test_screens_apply_suitecrm_conditions_to_rows_written_otherwise() -> None:
    """Rows an adapter could write that SuiteCRM would not show the way it meant."""
    async with suitecrm.database() as crm:
        stranger = suitecrm.guid()
        now = suitecrm.now_db()
        async with crm.engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO contacts (id, first_name, last_name, date_entered) "
                    "VALUES (:id, 'Sam', 'Stranger', :now)"
                ),
                {"id": stranger, "now": now},
            )
            # An address linked without the primary flag, and a link row marked deleted.
            await suitecrm._add_email(
                conn, stranger, "Contacts", "sam@stranger.example", primary=False, when=now
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO accounts_contacts (id, contact_id, account_id, date_modified,"
                    " deleted) VALUES (:id, :c, :a, :now, 1)"
                ),
                {"id": suitecrm.guid(), "c": stranger, "a": crm.seed.company_id, "now": now},
            )
            # A note on Jane through parent_type/parent_id only: not in her History.
            await conn.execute(
                sa.text(
                    "INSERT INTO notes (id, name, parent_type, parent_id, deleted, "
                    "date_entered) VALUES (:id, 'Parent only', 'Contacts', :jane, 0, :now)"
                ),
                {"id": suitecrm.guid(), "jane": crm.seed.contact_id, "now": now},
            )
        listed = {c.id: c for c in await crm.contacts()}
        assert listed[stranger].email is None  # the list shows primary addresses only
        assert listed[stranger].company is None
        detail = await crm.contact(stranger)
        assert detail is not None and detail.primary_email is None
        assert [e.address for e in detail.emails] == ["sam@stranger.example"]
        assert "Parent only" not in {e.subject for e in await crm.timeline(crm.seed.contact_id)}
