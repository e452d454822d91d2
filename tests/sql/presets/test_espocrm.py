"""``examples/crms/espocrm.yaml`` on EspoCRM's tables (``tests/sql/crms/espocrm.py``):
records, e-mails, links (both places Espo keeps them), Stream posts and tasks land where
EspoCRM's screens read them, and ``enginy-adapter simulate`` passes every MUST and SHOULD."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from ..crms import espocrm
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

pytestmark = [pytest.mark.anyio, pytest.mark.mysql]

ESPO_ID = re.compile(r"^[0-9a-f]{17}$")


@pytest.fixture(scope="module")
async def crm() -> AsyncIterator[espocrm.EspoCRM]:
    async with espocrm.database() as db:
        yield db


async def test_check_finds_nothing_wrong_and_creates_nothing(crm: espocrm.EspoCRM) -> None:
    before = await table_names(crm)
    report = await check_report(preset_settings("espocrm", crm))
    assert report.problems == ()
    assert await table_names(crm) == before


async def test_enginys_calls_land_on_espocrms_screens(crm: espocrm.EspoCRM) -> None:
    async with serving(preset_settings("espocrm", crm)) as client:
        written = await contract_scenario(client, crm)
        await users_match(client, crm)
    assert ESPO_ID.match(written.contact_id) and ESPO_ID.match(written.company_id)
    [contact] = await rows(
        crm.engine, "SELECT * FROM contact WHERE id = :id", id=written.contact_id
    )
    assert (contact["deleted"], contact["do_not_call"], contact["account_id"]) == (
        0,
        0,
        written.company_id,
    )
    assert contact["created_by_id"]  # the admin user, read from the user table
    [address] = await rows(
        crm.engine,
        """SELECT ea.* FROM email_address ea JOIN entity_email_address eea
           ON eea.email_address_id = ea.id WHERE eea.entity_id = :id AND eea.deleted = 0""",
        id=written.contact_id,
    )
    assert address["lower"] == "ada.lovelace@initech.example" and ESPO_ID.match(address["id"])
    [link] = await rows(
        crm.engine, "SELECT * FROM account_contact WHERE contact_id = :id", id=written.contact_id
    )
    assert (link["account_id"], link["role"], link["deleted"]) == (written.company_id, "CEO", 0)
    [note] = await rows(crm.engine, "SELECT * FROM note WHERE id = :id", id=written.activity_id)
    assert (note["type"], note["parent_type"], note["parent_id"]) == (
        "Post",
        "Contact",
        written.contact_id,
    )
    assert (note["super_parent_type"], note["super_parent_id"]) == ("Account", written.company_id)
    assert note["number"] is not None  # the database's auto-increment, never written
    [task] = await rows(crm.engine, "SELECT * FROM task WHERE id = :id", id=written.task_id)
    assert (task["status"], task["contact_id"], task["account_id"]) == (
        "Completed",
        written.contact_id,
        written.company_id,
    )
    assert task["date_completed"] is not None


async def test_simulate_passes_every_must_and_should(crm: espocrm.EspoCRM) -> None:
    report = await simulate_preset(preset_settings("espocrm", crm))
    assert failures(report) == {}, report.to_table()
