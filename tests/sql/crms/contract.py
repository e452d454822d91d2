"""What every CRM fixture must show on its screens, whatever the CRM: the seeded rows where the
CRM's own UI would show them, and the soft-deleted ones nowhere.

A CRM's test module subclasses :class:`ScreenContract` and provides a module-scoped ``crm``
fixture (one database per module); the class sets ``TABLES`` and, for Twenty, overrides
``schema_of``.
"""

from __future__ import annotations

from typing import ClassVar

import sqlalchemy as sa

from ._shared import CrmDatabase


class ScreenContract:
    TABLES: ClassVar[tuple[str, ...]] = ()

    def schema_of(self, crm: CrmDatabase) -> str | None:
        """The schema holding the CRM's tables (None: the database's default one)."""
        return None

    async def test_every_table_of_the_crm_exists(self, crm: CrmDatabase) -> None:
        schema = self.schema_of(crm)
        async with crm.engine.connect() as conn:
            names = await conn.run_sync(
                lambda sync: sa.inspect(sync).get_table_names(schema=schema)
            )
        assert self.TABLES
        assert set(self.TABLES) <= set(names), set(self.TABLES) - set(names)

    async def test_the_contact_is_listed_with_its_primary_email_and_company(
        self, crm: CrmDatabase
    ) -> None:
        listed = {c.id: c for c in await crm.contacts()}
        jane = listed[crm.seed.contact_id]
        assert "Jane" in jane.name and "Doe" in jane.name
        assert jane.email == crm.seed.contact_email
        assert jane.company == crm.seed.company_name

    async def test_an_email_is_listed_as_it_was_typed(self, crm: CrmDatabase) -> None:
        emails = {c.email for c in await crm.contacts()}
        assert "John.Smith@Globex.Example" in emails

    async def test_the_contact_page_shows_the_primary_email_and_company(
        self, crm: CrmDatabase
    ) -> None:
        detail = await crm.contact(crm.seed.contact_id)
        assert detail is not None
        assert detail.primary_email == crm.seed.contact_email
        assert detail.emails[0].primary
        assert detail.company_id == crm.seed.company_id
        assert detail.company == crm.seed.company_name
        assert detail.title == "Head of Sales"

    async def test_a_soft_deleted_contact_is_on_no_screen(self, crm: CrmDatabase) -> None:
        gone = crm.seed.deleted_contact_id
        assert gone not in {c.id for c in await crm.contacts()}
        assert crm.seed.deleted_contact_email not in {c.email for c in await crm.contacts()}
        assert await crm.contact(gone) is None
        company = await crm.company(crm.seed.company_id)
        assert company is not None
        assert gone not in company.contact_ids
        assert await crm.timeline(gone) == []

    async def test_the_company_is_listed_with_its_website_as_stored(self, crm: CrmDatabase) -> None:
        listed = {c.id: c for c in await crm.companies()}
        acme = listed[crm.seed.company_id]
        assert acme.name == crm.seed.company_name
        assert acme.website == crm.seed.company_website
        # Stored with a scheme and/or www., so matching it by the bare domain needs normalising.
        assert acme.website != crm.seed.company_domain
        assert crm.seed.company_domain in acme.website
        assert crm.seed.other_company_id in listed

    async def test_the_company_page_lists_its_contact(self, crm: CrmDatabase) -> None:
        company = await crm.company(crm.seed.company_id)
        assert company is not None
        assert company.contact_ids == (crm.seed.contact_id,)
        assert await crm.company(crm.seed.contact_id) is None  # a person is not a company

    async def test_the_contact_history_shows_the_seeded_entries(self, crm: CrmDatabase) -> None:
        history = await crm.timeline(crm.seed.contact_id)
        assert history
        assert any("Q3 roll-out" in (e.body or "") for e in history)

    async def test_only_unfinished_tasks_are_open(self, crm: CrmDatabase) -> None:
        tasks = await crm.open_tasks(crm.seed.contact_id)
        assert [t.title for t in tasks] == ["Send the proposal"]
        assert tasks[0].due is not None
        assert tasks[0].assignee_id is not None

    async def test_the_user_picker_offers_the_seeded_user(self, crm: CrmDatabase) -> None:
        users = {u.id: u for u in await crm.users()}
        assert crm.seed.user_id in users
        assert users[crm.seed.user_id].name
        assert users[crm.seed.user_id].email
