"""The CiviCRM fixture is CiviCRM's schema and data: booleans ``NOT NULL DEFAULT 0``, people and
organisations in ``civicrm_contact`` told apart by ``contact_type``, names formatted by CiviCRM,
option values as shipped, and screens that apply CiviCRM's own conditions."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from . import civicrm
from ._shared import column_facts, rows, table_facts
from .contract import ScreenContract

pytestmark = [pytest.mark.anyio, pytest.mark.mysql]


@pytest.fixture(scope="module")
async def crm() -> AsyncIterator[civicrm.CiviCRM]:
    async with civicrm.database() as db:
        yield db


class TestCiviCRMScreens(ScreenContract):
    TABLES = civicrm.TABLES


async def test_tables_are_utf8mb4_unicode_ci_dynamic_innodb(crm: civicrm.CiviCRM) -> None:
    for table in civicrm.TABLES:
        assert await table_facts(crm.engine, table) == {
            "engine": "InnoDB",
            "collation": "utf8mb4_unicode_ci",
        }, table
    formats = await rows(
        crm.engine,
        "SELECT DISTINCT ROW_FORMAT AS f FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = DATABASE()",
    )
    assert formats == [{"f": "Dynamic"}]


async def test_booleans_are_not_null_with_a_default_and_only_required_fields_are_not_null(
    crm: civicrm.CiviCRM,
) -> None:
    contact = await column_facts(crm.engine, "civicrm_contact")
    booleans = {n for n, c in contact.items() if c.type == "tinyint(1)"}
    assert {"is_deleted", "do_not_email", "is_opt_out", "is_deceased"} <= booleans
    for name in booleans:
        assert not contact[name].nullable and contact[name].default == "0", name
    assert {n for n, c in contact.items() if not c.nullable} == {"id"} | booleans
    assert contact["contact_type"].type == "varchar(64)" and contact["contact_type"].nullable
    assert contact["display_name"].type == "varchar(128)"
    assert contact["id"].type == "int(10) unsigned"
    activity = await column_facts(crm.engine, "civicrm_activity")
    assert not activity["activity_type_id"].nullable and activity["activity_type_id"].default == "1"
    assert activity["details"].type == "longtext"
    link = await column_facts(crm.engine, "civicrm_activity_contact")
    assert {n for n, c in link.items() if not c.nullable} == {"id", "activity_id", "contact_id"}
    email = await column_facts(crm.engine, "civicrm_email")
    assert email["email"].type == "varchar(254)"
    assert not email["on_hold"].nullable and email["on_hold"].default == "0"


async def test_names_are_formatted_the_civicrm_way(crm: civicrm.CiviCRM) -> None:
    found = await rows(
        crm.engine,
        """SELECT id, contact_type, display_name, sort_name, organization_name, employer_id,
                  hash
           FROM civicrm_contact WHERE id IN (:jane, :acme) ORDER BY contact_type""",
        jane=int(crm.seed.contact_id),
        acme=int(crm.seed.company_id),
    )
    jane, acme = found
    assert jane["contact_type"] == "Individual"
    assert (jane["display_name"], jane["sort_name"]) == ("Jane Doe", "Doe, Jane")
    # the current employer: its id, and its name cached in the person's organization_name
    assert jane["employer_id"] == acme["id"]
    assert jane["organization_name"] == "Acme Corporation"
    assert acme["contact_type"] == "Organization"
    assert acme["display_name"] == acme["sort_name"] == acme["organization_name"]
    assert re.fullmatch(r"[0-9a-f]{32}", jane["hash"])


async def test_option_values_are_the_shipped_ones(crm: civicrm.CiviCRM) -> None:
    found = await rows(
        crm.engine,
        """SELECT og.name AS grp, ov.name, ov.value FROM civicrm_option_value ov
           JOIN civicrm_option_group og ON og.id = ov.option_group_id""",
    )
    by_group: dict[str, dict[str, str]] = {}
    for r in found:
        by_group.setdefault(r["grp"], {})[r["name"]] = r["value"]
    assert {k: int(v) for k, v in by_group["activity_type"].items()} == civicrm.ACTIVITY_TYPES
    assert {k: int(v) for k, v in by_group["activity_contacts"].items()} == civicrm.RECORD_TYPES
    assert by_group["activity_status"]["Scheduled"] == "1"
    assert by_group["activity_status"]["Completed"] == "2"
    assert by_group["website_type"] == {"Work": "1", "Main": "2", "Social": "3"}


async def test_a_trashed_contact_keeps_its_email_row(crm: civicrm.CiviCRM) -> None:
    found = await rows(
        crm.engine,
        """SELECT c.is_deleted, e.is_primary FROM civicrm_email e
           JOIN civicrm_contact c ON c.id = e.contact_id WHERE e.email = :email""",
        email=crm.seed.deleted_contact_email,
    )
    assert found == [{"is_deleted": 1, "is_primary": 1}]


async def test_a_logged_activity_links_the_user_as_source_and_the_contact_as_target(
    crm: civicrm.CiviCRM,
) -> None:
    found = await rows(
        crm.engine,
        """SELECT ac.contact_id, ac.record_type_id FROM civicrm_activity a
           JOIN civicrm_activity_contact ac ON ac.activity_id = a.id
           WHERE a.subject = 'Intro call' ORDER BY ac.record_type_id""",
    )
    assert found == [
        {"contact_id": crm.admin_contact_id, "record_type_id": 2},
        {"contact_id": int(crm.seed.contact_id), "record_type_id": 3},
    ]


async def test_contacts_without_a_type_or_a_primary_email_show_as_civicrm_sees_them(
    crm: civicrm.CiviCRM,
) -> None:
    """A row without ``contact_type`` is neither a person nor an organisation on any list;
    an address not flagged primary does not show in the list's Email column."""
    async with crm.engine.begin() as conn:
        untyped = (
            await conn.execute(
                sa.text(
                    "INSERT INTO civicrm_contact (first_name, last_name, display_name) "
                    "VALUES ('Sam', 'Stranger', 'Sam Stranger')"
                )
            )
        ).lastrowid
        typed = (
            await conn.execute(
                sa.text(
                    "INSERT INTO civicrm_contact (contact_type, first_name, last_name, "
                    "display_name, sort_name) VALUES ('Individual', 'Pat', 'Plain', "
                    "'Pat Plain', 'Plain, Pat')"
                )
            )
        ).lastrowid
        await conn.execute(
            sa.text("INSERT INTO civicrm_email (contact_id, email) VALUES (:c, 'pat@p.example')"),
            {"c": typed},
        )
    try:
        people = {c.id: c for c in await crm.contacts()}
        assert str(untyped) not in people
        assert str(untyped) not in {c.id for c in await crm.companies()}
        assert people[str(typed)].email is None
    finally:
        async with crm.engine.begin() as conn:
            await conn.execute(
                sa.text("DELETE FROM civicrm_contact WHERE id IN (:a, :b)"),
                {"a": untyped, "b": typed},
            )
