"""``examples/crms/twenty.yaml`` on a Twenty workspace's tables (``tests/sql/crms/twenty.py``):
people, companies, notes and tasks (with their target rows) land where Twenty's record pages
read them, and ``enginy-adapter simulate`` passes every MUST and SHOULD."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import pytest

from adapter.config import Settings

from ..crms import twenty
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
async def crm() -> AsyncIterator[twenty.Twenty]:
    async with twenty.database() as db:
        yield db


def settings(crm: twenty.Twenty) -> Settings:
    return preset_settings("twenty", crm, TWENTY_SCHEMA=crm.schema)


async def test_check_finds_nothing_wrong_and_creates_nothing(crm: twenty.Twenty) -> None:
    before = await table_names(crm), await table_names(crm, crm.schema)
    report = await check_report(settings(crm))
    assert report.problems == ()
    assert (await table_names(crm), await table_names(crm, crm.schema)) == before


async def test_enginys_calls_land_on_twentys_record_pages(crm: twenty.Twenty) -> None:
    async with serving(settings(crm)) as client:
        written = await contract_scenario(client, crm)
        await users_match(client, crm)
    assert str(uuid.UUID(written.contact_id)) == written.contact_id
    [person] = await rows(
        crm.engine,
        f"SELECT * FROM {crm.table('person')} WHERE id = :id",
        id=uuid.UUID(written.contact_id),
    )
    assert (person["createdBySource"], person["createdByName"]) == ("API", "Enginy")
    assert person["companyId"] == uuid.UUID(written.company_id)
    assert person["linkedinLinkPrimaryLinkUrl"] == "https://www.linkedin.com/in/ada-lovelace"
    [note] = await rows(
        crm.engine,
        f"SELECT * FROM {crm.table('note')} WHERE id = :id",
        id=uuid.UUID(written.activity_id),
    )
    assert note["title"] == "Quick question"
    blocks = json.loads(note["bodyV2Blocknote"])
    assert blocks[0]["content"][0]["text"] == "Hi Ada, are you free on Tuesday?"
    targets = await rows(
        crm.engine,
        f'SELECT * FROM {crm.table("noteTarget")} WHERE "noteId" = :id',
        id=uuid.UUID(written.activity_id),
    )
    assert {(t["personId"], t["companyId"]) for t in targets} == {
        (uuid.UUID(written.contact_id), None),
        (None, uuid.UUID(written.company_id)),
    }
    [task] = await rows(
        crm.engine,
        f"SELECT * FROM {crm.table('task')} WHERE id = :id",
        id=uuid.UUID(written.task_id),
    )
    assert task["status"] == "DONE"


async def test_simulate_passes_every_must_and_should(crm: twenty.Twenty) -> None:
    report = await simulate_preset(settings(crm))
    assert failures(report) == {}, report.to_table()
