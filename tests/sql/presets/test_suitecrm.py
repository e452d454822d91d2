"""``examples/crms/suitecrm.yaml`` on SuiteCRM 7's tables (``tests/sql/crms/suitecrm.py``):
records, e-mails, links, notes and tasks land where SuiteCRM's screens read them, and
``enginy-adapter simulate`` passes every MUST and SHOULD."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ..crms import suitecrm
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


@pytest.fixture(scope="module")
async def crm() -> AsyncIterator[suitecrm.SuiteCRM]:
    async with suitecrm.database() as db:
        yield db


async def test_check_finds_nothing_wrong_and_creates_nothing(crm: suitecrm.SuiteCRM) -> None:
    before = await table_names(crm)
    report = await check_report(preset_settings("suitecrm", crm))
    assert report.problems == ()
    assert await table_names(crm) == before  # check is read-only


async def test_enginys_calls_land_on_suitecrms_screens(crm: suitecrm.SuiteCRM) -> None:
    async with serving(preset_settings("suitecrm", crm)) as client:
        written = await contract_scenario(client, crm)
        await users_match(client, crm)
    # SuiteCRM's own rows, as its code writes them
    [contact] = await rows(
        crm.engine, "SELECT * FROM contacts WHERE id = :id", id=written.contact_id
    )
    assert (contact["deleted"], contact["created_by"]) == (0, "1")
    assert contact["date_entered"] is not None
    [cstm] = await rows(
        crm.engine, "SELECT * FROM contacts_cstm WHERE id_c = :id", id=written.contact_id
    )
    assert cstm["linkedin_c"] == "https://www.linkedin.com/in/ada-lovelace"
    [address] = await rows(
        crm.engine,
        """SELECT ea.* FROM email_addresses ea JOIN email_addr_bean_rel r
           ON r.email_address_id = ea.id WHERE r.bean_id = :id AND r.deleted = 0""",
        id=written.contact_id,
    )
    assert address["email_address_caps"] == "ADA.LOVELACE@INITECH.EXAMPLE"
    assert suitecrm.guid  # ids are GUID-shaped, like create_guid()'s
    assert len(written.contact_id) == 36 and written.contact_id.count("-") == 4
    [link] = await rows(
        crm.engine, "SELECT * FROM accounts_contacts WHERE contact_id = :id", id=written.contact_id
    )
    assert len(link["id"]) == 36 and link["deleted"] == 0
    [note] = await rows(crm.engine, "SELECT * FROM notes WHERE id = :id", id=written.activity_id)
    assert (note["contact_id"], note["parent_type"], note["parent_id"]) == (
        written.contact_id,
        "Accounts",
        written.company_id,
    )
    [task] = await rows(crm.engine, "SELECT * FROM tasks WHERE id = :id", id=written.task_id)
    assert (task["status"], task["contact_id"], task["deleted"]) == (
        "Completed",
        written.contact_id,
        0,
    )
    # the history subpanel now shows the completed task too
    assert written.task_id in {e.id for e in await crm.timeline(written.contact_id)}


async def test_simulate_passes_every_must_and_should(crm: suitecrm.SuiteCRM) -> None:
    report = await simulate_preset(preset_settings("suitecrm", crm))
    assert failures(report) == {}, report.to_table()
