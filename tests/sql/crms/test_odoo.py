"""The Odoo fixture is the ORM's schema and data: no SQL defaults (Odoo applies them in
Python), required fields ``NOT NULL``, people and companies in one table, and screens that
apply the Contacts app's conditions."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from . import odoo
from ._shared import column_facts, rows
from .contract import ScreenContract

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


@pytest.fixture(scope="module")
async def crm() -> AsyncIterator[odoo.Odoo]:
    async with odoo.database() as db:
        yield db


class TestOdooScreens(ScreenContract):
    TABLES = odoo.TABLES


async def test_the_orm_leaves_no_column_defaults_but_the_id_sequence(crm: odoo.Odoo) -> None:
    partner = await column_facts(crm.engine, "res_partner")
    for name in ("active", "type", "is_company", "lang", "color", "partner_share"):
        assert partner[name].default is None and partner[name].nullable, name
    assert partner["id"].default is not None and "nextval" in partner["id"].default
    assert partner["id"].type == "integer"
    assert partner["name"].type == "character varying"  # Char: varchar without a length
    assert partner["comment"].type == "text"  # Html
    assert partner["partner_latitude"].type == "numeric"  # Float with digits
    assert "display_name" not in partner  # not stored since 17.0
    assert [n for n, c in partner.items() if not c.nullable] == ["id"]


async def test_required_fields_are_not_null(crm: odoo.Odoo) -> None:
    expected = {
        "res_users": {"id", "company_id", "partner_id", "login", "notification_type"},
        "mail_activity": {"id", "res_model_id", "date_deadline", "user_id"},
        "mail_message": {"id", "message_type"},
        "mail_activity_type": {"id", "name", "delay_unit", "delay_from", "chaining_type"},
    }
    for table, columns in expected.items():
        facts = await column_facts(crm.engine, table)
        assert {n for n, c in facts.items() if not c.nullable} == columns, table
    activity_type = await column_facts(crm.engine, "mail_activity_type")
    assert activity_type["name"].type == "jsonb"  # translated


async def test_constraints_odoo_declares_are_enforced(crm: odoo.Odoo) -> None:
    with pytest.raises(IntegrityError, match="res_partner_check_name"):
        async with crm.engine.begin() as conn:
            await conn.execute(
                sa.text("INSERT INTO res_partner (type, email) VALUES ('contact', 'x@y.z')")
            )
    with pytest.raises(IntegrityError, match="mail_activity_check_res_id_is_set"):
        async with crm.engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO mail_activity (res_model_id, res_model, res_id, "
                    "date_deadline, user_id) VALUES (:m, 'res.partner', 0, now(), :u)"
                ),
                {"m": crm.partner_model_id, "u": int(crm.seed.user_id)},
            )


async def test_a_person_under_a_company_is_stored_as_the_orm_computes_it(
    crm: odoo.Odoo,
) -> None:
    jane = await rows(
        crm.engine,
        """SELECT name, complete_name, is_company, type, active, parent_id,
                  commercial_partner_id, commercial_company_name, company_name,
                  email_normalized
           FROM res_partner WHERE id = :id""",
        id=int(crm.seed.contact_id),
    )
    acme = int(crm.seed.company_id)
    assert jane == [
        {
            "name": "Jane Doe",
            "complete_name": "Acme Corporation, Jane Doe",
            "is_company": False,
            "type": "contact",
            "active": True,
            "parent_id": acme,
            "commercial_partner_id": acme,
            "commercial_company_name": "Acme Corporation",
            "company_name": None,
            "email_normalized": "jane.doe@acme.example",
        }
    ]
    company = await rows(
        crm.engine,
        "SELECT commercial_partner_id, is_company FROM res_partner WHERE id = :id",
        id=acme,
    )
    assert company == [{"commercial_partner_id": acme, "is_company": True}]


async def test_the_activity_types_are_the_ones_mail_ships(crm: odoo.Odoo) -> None:
    found = await rows(
        crm.engine,
        "SELECT name->>'en_US' AS name, category, active FROM mail_activity_type ORDER BY sequence",
    )
    assert [(r["name"], r["category"], r["active"]) for r in found] == [
        ("Email", "default", True),
        ("Call", "phonecall", True),
        ("Meeting", "default", True),
        ("To-Do", "default", True),
        ("Upload Document", "upload_file", True),
        ("Exception", "default", False),
    ]


async def test_rows_without_odoo_defaults_or_of_another_type_are_not_people(
    crm: odoo.Odoo,
) -> None:
    """A partner inserted with only a name and an email (``active``/``type``/``is_company``
    NULL) is on no Contacts screen; the invoice address is not a person either."""
    async with crm.engine.begin() as conn:
        naive = (
            await conn.execute(
                sa.text(
                    "INSERT INTO res_partner (name, email) VALUES ('Sam Stranger', "
                    "'sam@stranger.example') RETURNING id"
                )
            )
        ).scalar_one()
    try:
        people = {c.id for c in await crm.contacts()}
        assert str(naive) not in people
        assert str(naive) not in {c.id for c in await crm.companies()}
        assert await crm.contact(str(naive)) is None
        invoice = await rows(crm.engine, "SELECT id FROM res_partner WHERE type = 'invoice'")
        assert str(invoice[0]["id"]) not in people
        assert {c.id for c in await crm.companies()}.isdisjoint(people)
    finally:
        async with crm.engine.begin() as conn:
            await conn.execute(sa.text("DELETE FROM res_partner WHERE id = :id"), {"id": naive})
