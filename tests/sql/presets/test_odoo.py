"""``examples/crms/odoo.yaml`` on Odoo's tables (``tests/sql/crms/odoo.py``): partners,
their parent company, chatter messages and planned activities land where Odoo's Contacts
app and chatter read them, and ``enginy-adapter simulate`` passes every MUST and SHOULD."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ..crms import odoo
from ..crms._shared import rows
from .scenario import (
    check_report,
    contract_scenario,
    failures,
    preset_settings,
    serving,
    simulate_preset,
    table_names,
    users_match,
)

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


@pytest.fixture(scope="module")
async def crm() -> AsyncIterator[odoo.Odoo]:
    async with odoo.database() as db:
        yield db


async def test_check_finds_nothing_wrong_and_creates_nothing(crm: odoo.Odoo) -> None:
    before = await table_names(crm)
    report = await check_report(preset_settings("odoo", crm))
    assert report.problems == ()
    assert await table_names(crm) == before


async def test_enginys_calls_land_on_odoos_screens(crm: odoo.Odoo) -> None:
    async with serving(preset_settings("odoo", crm)) as client:
        written = await contract_scenario(client, crm)
        await users_match(client, crm)
    [person] = await rows(
        crm.engine, "SELECT * FROM res_partner WHERE id = :id", id=int(written.contact_id)
    )
    company_id = int(written.company_id)
    # what Odoo's ORM would have written: visible, a person of type contact, synced with
    # its parent company
    assert (person["active"], person["is_company"], person["type"]) == (True, False, "contact")
    assert (person["name"], person["complete_name"]) == ("Ada Lovelace", "Initech, Ada Lovelace")
    assert (person["parent_id"], person["commercial_partner_id"]) == (company_id, company_id)
    assert person["commercial_company_name"] == "Initech"
    assert person["email_normalized"] == "ada.lovelace@initech.example"
    assert person["lang"] == "en_US" and person["create_uid"] is not None
    [company] = await rows(crm.engine, "SELECT * FROM res_partner WHERE id = :id", id=company_id)
    assert (company["is_company"], company["active"], company["commercial_partner_id"]) == (
        True,
        True,
        company_id,
    )
    [message] = await rows(
        crm.engine, "SELECT * FROM mail_message WHERE id = :id", id=int(written.activity_id)
    )
    assert (message["model"], message["res_id"], message["message_type"]) == (
        "res.partner",
        int(written.contact_id),
        "comment",
    )
    assert message["subtype_id"] == crm.note_subtype_id
    assert message["body"] == "<p>Hi Ada, are you free on Tuesday?</p>"
    [activity] = await rows(
        crm.engine, "SELECT * FROM mail_activity WHERE id = :id", id=int(written.task_id)
    )
    assert activity["res_model_id"] == crm.partner_model_id
    assert activity["activity_type_id"] == crm.activity_type_ids["todo"]
    assert (activity["active"], activity["date_done"] is not None) == (False, True)


async def test_a_name_with_markup_is_escaped_in_the_chatter(crm: odoo.Odoo) -> None:
    async with serving(preset_settings("odoo", crm)) as client:
        made = await client.post(
            "/contacts", json={"contacts": [{"externalId": "x-1", "firstName": "Bo"}]}
        )
        contact_id = made.json()["results"][0]["crmId"]
        await client.post(
            "/activities",
            json={
                "type": "EMAIL",
                "body": "1 < 2 & <b>bold</b>\nline two",
                "contactId": contact_id,
            },
        )
    [entry] = await crm.timeline(contact_id)
    assert entry.body == "<p>1 &lt; 2 &amp; &lt;b&gt;bold&lt;/b&gt;<br>line two</p>"


async def test_simulate_passes_every_must_and_should(crm: odoo.Odoo) -> None:
    report = await simulate_preset(preset_settings("odoo", crm))
    assert failures(report) == {}, report.to_table()
