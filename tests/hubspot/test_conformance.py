"""The shipped conformance suite against the HubSpot driver served by the stateful fake."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from backends.base import Backend, Entity, User
from backends.hubspot import HubSpotBackend, HubSpotOptions
from backends.testing import DEFAULT_RECORD_FIELDS, ConformanceSuite, RecordFields
from backends.testing.hubspot import FakeHubSpot

TOKEN = "pat-na1-conformance"
OWNERS = [("Ada", "Lovelace", "ada@example.com"), ("Grace", "Hopper", "grace@example.com")]


class TestHubSpotConformance(ConformanceSuite):
    @pytest.fixture
    def fake(self) -> FakeHubSpot:
        # A stock portal. The suite looks records up right after creating them; a company
        # *name* can only be found through HubSpot's search index, which lags writes, so the
        # index is made immediate here. Every other key (external id, email, LinkedIn URL,
        # domain) reads the primary store and is tested with the lag in test_driver.py.
        fake = FakeHubSpot(token=TOKEN, search_lag=0.0)
        for first, last, email in OWNERS:
            fake.add_owner(first, last, email)
        return fake

    @pytest.fixture
    async def backend(self, fake: FakeHubSpot) -> AsyncIterator[Backend]:
        options = HubSpotOptions(token=TOKEN)
        driver = HubSpotBackend(options, transport=fake.transport())
        await driver.open()
        try:
            yield driver
        finally:
            await driver.close()

    @pytest.fixture
    def record_fields(self) -> RecordFields:
        def fields(entity: Entity) -> dict[str, str]:
            mapped = HubSpotBackend.default_field_map[entity]
            return {role: mapped[role] for role in DEFAULT_RECORD_FIELDS[entity]}

        return fields

    @pytest.fixture
    def number_field(self) -> tuple[Entity, str] | None:
        # A stock portal has no custom contact property; companies have a number property.
        return (Entity.COMPANY, "numberofemployees")

    @pytest.fixture
    def expected_users(self, fake: FakeHubSpot) -> list[User]:
        return [User(o["id"], f"{o['firstName']} {o['lastName']}", o["email"]) for o in fake.owners]
