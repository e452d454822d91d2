"""Conformance tests of :attr:`Capability.ACTIVITIES`."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
import pytest

from backends.base import Activity, Backend, Capability, Entity, NewActivity, NotFound
from backends.testing._base import RecordFactory, SuiteBase, require, same_instant

__all__ = ["ActivitiesSuite"]

C, K = Entity.CONTACT, Entity.COMPANY
WHEN = datetime(2025, 3, 4, 10, 30, 15, tzinfo=UTC)


class ActivitiesSuite(SuiteBase):
    """``create_activity``: ids, idempotency key, ``NotFound`` links, values stored as sent."""

    @pytest.mark.anyio
    async def test_create_returns_stored_activity_with_id(
        self, backend: Backend, records: RecordFactory
    ) -> None:
        require(backend, Capability.ACTIVITIES)
        contact = await records.create(backend, C, 1)
        company = await records.create(backend, K, 1)
        sent = NewActivity(
            type="EMAIL",
            direction="OUTBOUND",
            subject="Hello",
            body="Hi Ada, ...",
            occurred_at=WHEN,
            contact_id=contact,
            company_id=company,
        )
        activity = await backend.create_activity(sent)
        assert isinstance(activity, Activity)
        assert isinstance(activity.id, str) and activity.id
        assert (activity.type, activity.direction) == ("EMAIL", "OUTBOUND")
        assert (activity.subject, activity.body) == ("Hello", "Hi Ada, ...")
        assert (activity.contact_id, activity.company_id) == (contact, company)
        assert same_instant(activity.occurred_at, WHEN)

    @pytest.mark.anyio
    async def test_same_idempotency_key_returns_first_activity(
        self, backend: Backend, records: RecordFactory
    ) -> None:
        require(backend, Capability.ACTIVITIES)
        contact = await records.create(backend, C, 1)
        key = f"EMAIL|OUTBOUND|msg-{records.token}"
        first = await backend.create_activity(
            NewActivity(
                type="EMAIL",
                direction="OUTBOUND",
                subject="first",
                contact_id=contact,
                idempotency_key=key,
            )
        )
        second = await backend.create_activity(
            NewActivity(
                type="EMAIL",
                direction="OUTBOUND",
                subject="second",
                contact_id=contact,
                idempotency_key=key,
            )
        )
        assert second.id == first.id
        assert second.subject == "first"

    @pytest.mark.anyio
    async def test_concurrent_calls_with_one_key_store_one_activity(
        self, backend: Backend, records: RecordFactory
    ) -> None:
        require(backend, Capability.ACTIVITIES)
        contact = await records.create(backend, C, 1)
        key = f"EMAIL|INBOUND|msg-{records.token}"
        made: list[Activity] = []

        async def create() -> None:
            made.append(
                await backend.create_activity(
                    NewActivity(
                        type="EMAIL", direction="INBOUND", contact_id=contact, idempotency_key=key
                    )
                )
            )

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(create)
        assert len(made) == 5
        assert len({a.id for a in made}) == 1

    @pytest.mark.anyio
    async def test_without_key_each_call_stores_a_new_activity(
        self, backend: Backend, records: RecordFactory
    ) -> None:
        require(backend, Capability.ACTIVITIES)
        contact = await records.create(backend, C, 1)
        sent = NewActivity(type="LINKEDIN", direction="OUTBOUND", body="Hi", contact_id=contact)
        first = await backend.create_activity(sent)
        second = await backend.create_activity(sent)
        assert first.id != second.id

    @pytest.mark.anyio
    async def test_different_keys_are_different_activities(
        self, backend: Backend, records: RecordFactory
    ) -> None:
        require(backend, Capability.ACTIVITIES)
        contact = await records.create(backend, C, 1)
        ids = {
            (
                await backend.create_activity(
                    NewActivity(
                        type="EMAIL",
                        direction=d,
                        contact_id=contact,
                        idempotency_key=f"EMAIL|{d}|m-{records.token}",
                    )
                )
            ).id
            for d in ("INBOUND", "OUTBOUND")
        }
        assert len(ids) == 2

    @pytest.mark.anyio
    async def test_unknown_contact_raises_not_found(
        self, backend: Backend, missing_id: str
    ) -> None:
        require(backend, Capability.ACTIVITIES)
        with pytest.raises(NotFound):
            await backend.create_activity(NewActivity(type="EMAIL", contact_id=missing_id))

    @pytest.mark.anyio
    async def test_unknown_company_raises_not_found(
        self, backend: Backend, records: RecordFactory, missing_id: str
    ) -> None:
        require(backend, Capability.ACTIVITIES)
        contact = await records.create(backend, C, 1)
        with pytest.raises(NotFound):
            await backend.create_activity(
                NewActivity(type="EMAIL", contact_id=contact, company_id=missing_id)
            )

    @pytest.mark.anyio
    async def test_unknown_type_and_direction_are_stored_as_sent(
        self, backend: Backend, records: RecordFactory
    ) -> None:
        require(backend, Capability.ACTIVITIES)
        contact = await records.create(backend, C, 1)
        activity = await backend.create_activity(
            NewActivity(
                type="WHATSAPP_MESSAGE", direction="INBOUND", body="hola", contact_id=contact
            )
        )
        assert activity.type == "WHATSAPP_MESSAGE"
        assert activity.direction == "INBOUND"
        assert activity.body == "hola"

    @pytest.mark.anyio
    async def test_metadata_round_trips(self, backend: Backend, records: RecordFactory) -> None:
        require(backend, Capability.ACTIVITIES)
        contact = await records.create(backend, C, 1)
        metadata = {"messageId": f"m-{records.token}", "threadId": "t-1", "campaign": "Q3"}
        activity = await backend.create_activity(
            NewActivity(
                type="LINKEDIN_INMAIL", direction="OUTBOUND", contact_id=contact, metadata=metadata
            )
        )
        assert dict(activity.metadata) == metadata
