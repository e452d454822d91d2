"""``examples/crms/civicrm.yaml`` on CiviCRM's tables (``tests/sql/crms/civicrm.py``): people
as Individuals with their e-mail, organisations with their website, the current employer,
activities and scheduled tasks with their contact links land where CiviCRM's screens read
them, and ``enginy-adapter simulate`` passes every MUST and SHOULD."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from ..crms import civicrm
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
async def crm() -> AsyncIterator[civicrm.CiviCRM]:
    async with civicrm.database() as db:
        yield db


async def test_check_finds_nothing_wrong_and_creates_nothing(crm: civicrm.CiviCRM) -> None:
    before = await table_names(crm)
    report = await check_report(preset_settings("civicrm", crm))
    assert report.problems == ()
    assert await table_names(crm) == before


async def test_enginys_calls_land_on_civicrms_screens(crm: civicrm.CiviCRM) -> None:
    async with serving(preset_settings("civicrm", crm)) as client:
        written = await contract_scenario(client, crm)
        await users_match(client, crm)
    [person] = await rows(
        crm.engine, "SELECT * FROM civicrm_contact WHERE id = :id", id=int(written.contact_id)
    )
    # listed as an Individual, named the CiviCRM way, with its employer
    assert (person["contact_type"], person["is_deleted"]) == ("Individual", 0)
    assert (person["display_name"], person["sort_name"]) == ("Ada Lovelace", "Lovelace, Ada")
    assert re.fullmatch(r"[0-9a-f]{32}", person["hash"])
    assert person["email_greeting_display"] == "Dear Ada"
    assert (person["employer_id"], person["organization_name"]) == (
        int(written.company_id),
        "Initech",
    )
    [email] = await rows(
        crm.engine, "SELECT * FROM civicrm_email WHERE contact_id = :id", id=int(written.contact_id)
    )
    assert (email["email"], email["is_primary"], email["location_type_id"]) == (
        "Ada.Lovelace@Initech.example",
        1,
        1,
    )
    [linkedin] = await rows(
        crm.engine,
        "SELECT * FROM civicrm_website WHERE contact_id = :id",
        id=int(written.contact_id),
    )
    assert (linkedin["url"], linkedin["website_type_id"]) == (
        "https://www.linkedin.com/in/ada-lovelace",
        3,
    )
    [org] = await rows(
        crm.engine, "SELECT * FROM civicrm_contact WHERE id = :id", id=int(written.company_id)
    )
    assert (org["contact_type"], org["display_name"], org["sort_name"]) == (
        "Organization",
        "Initech",
        "Initech",
    )
    [site] = await rows(
        crm.engine,
        "SELECT * FROM civicrm_website WHERE contact_id = :id",
        id=int(written.company_id),
    )
    assert (site["url"], site["website_type_id"]) == ("initech.example", 1)
    [activity] = await rows(
        crm.engine, "SELECT * FROM civicrm_activity WHERE id = :id", id=int(written.activity_id)
    )
    assert (activity["activity_type_id"], activity["status_id"]) == (3, 2)
    links = await rows(
        crm.engine,
        "SELECT contact_id, record_type_id FROM civicrm_activity_contact WHERE activity_id = :a",
        a=int(written.activity_id),
    )
    admin = crm.seed.user_id
    assert sorted((r["contact_id"], r["record_type_id"]) for r in links) == sorted(
        [(int(written.contact_id), 3), (int(written.company_id), 3), (int(admin), 2)]
    )
    [task] = await rows(
        crm.engine, "SELECT * FROM civicrm_activity WHERE id = :id", id=int(written.task_id)
    )
    assert task["status_id"] == 2  # completed through PATCH


async def test_simulate_passes_every_must_and_should(crm: civicrm.CiviCRM) -> None:
    report = await simulate_preset(preset_settings("civicrm", crm))
    assert failures(report) == {}, report.to_table()
