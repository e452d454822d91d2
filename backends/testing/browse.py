"""Conformance tests of :attr:`Capability.BROWSE` (the dashboard's record pages)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from backends.base import (
    AssociationPair,
    Backend,
    Capability,
    Entity,
    NewActivity,
    NewTask,
    TaskChanges,
)
from backends.testing._base import RecordFactory, SuiteBase, require

__all__ = ["BrowseSuite"]

C, K = Entity.CONTACT, Entity.COMPANY
BASE = datetime(2025, 1, 1, tzinfo=UTC)


class BrowseSuite(SuiteBase):
    """``counts``, ``list_records`` (with ``search``), ``list_associated``, ``list_activities``,
    ``list_tasks`` (with ``completed`` and ``search``).

    Counts assume the ``backend`` fixture's store starts empty, as the suite requires. Tests
    that create activities, tasks or links also need those capabilities and skip without them.
    """

    @pytest.mark.anyio
    async def test_counts_start_at_zero(self, backend: Backend) -> None:
        require(backend, Capability.BROWSE)
        assert await backend.counts() == {
            "contacts": 0,
            "companies": 0,
            "associations": 0,
            "activities": 0,
            "tasks": 0,
        }

    @pytest.mark.anyio
    async def test_counts_follow_writes(self, backend: Backend, records: RecordFactory) -> None:
        require(backend, Capability.BROWSE)
        for capability in (Capability.ASSOCIATIONS, Capability.ACTIVITIES, Capability.TASKS):
            require(backend, capability)
        contacts = [await records.create(backend, C, n) for n in range(3)]
        company = await records.create(backend, K, 1)
        await records.create(backend, C, 0)  # idempotent repeat: no new contact
        pair = AssociationPair(contacts[0], company)
        await backend.create_associations([pair, pair, AssociationPair(contacts[1], company)])
        await backend.create_activity(NewActivity(type="EMAIL", contact_id=contacts[0]))
        await backend.create_task(NewTask(subject="Call"))
        assert await backend.counts() == {
            "contacts": 3,
            "companies": 1,
            "associations": 2,
            "activities": 1,
            "tasks": 1,
        }

    @pytest.mark.anyio
    async def test_list_records_newest_first_and_paged(
        self, backend: Backend, records: RecordFactory
    ) -> None:
        require(backend, Capability.BROWSE)
        ids = [await records.create(backend, K, n) for n in range(5)]
        newest_first = ids[::-1]
        listed = await backend.list_records(K)
        assert [r.crm_id for r in listed] == newest_first
        assert listed[0].external_id == records.external_id(K, 4)
        page = await backend.list_records(K, limit=2, offset=1)
        assert [r.crm_id for r in page] == newest_first[1:3]
        assert await backend.list_records(K, limit=2, offset=5) == []
        assert await backend.list_records(C) == []

    @pytest.mark.anyio
    async def test_list_records_search(self, backend: Backend, records: RecordFactory) -> None:
        require(backend, Capability.BROWSE)
        t = records.token
        ids = [await records.create(backend, K, n) for n in range(3)]
        literal = await records.create(backend, K, 3, name=f"half%_price {t}")
        # A field value, whatever its case.
        domain = records.value(K, "domain", 1).upper()
        assert [r.crm_id for r in await backend.list_records(K, search=domain)] == [ids[1]]
        # The external id and the CRM id.
        ext = records.external_id(K, 2)
        assert [r.crm_id for r in await backend.list_records(K, search=ext)] == [ids[2]]
        assert ids[0] in [r.crm_id for r in await backend.list_records(K, search=ids[0])]
        # Newest first and paged, like the whole list.
        found = await backend.list_records(K, search=t)
        assert [r.crm_id for r in found] == [literal, ids[2], ids[1], ids[0]]
        page = await backend.list_records(K, search=t, limit=2, offset=1)
        assert [r.crm_id for r in page] == [ids[2], ids[1]]
        # Literal: % and _ are characters, not wildcards.
        assert [r.crm_id for r in await backend.list_records(K, search="f%_p")] == [literal]
        assert [r.crm_id for r in await backend.list_records(K, search="%_")] == [literal]
        assert await backend.list_records(K, search=f"nothing-like-{t}") == []
        assert await backend.list_records(C, search=t) == []
        # No search (None or empty): every record.
        assert len(await backend.list_records(K, search="")) == 4

    @pytest.mark.anyio
    async def test_list_tasks_by_completion_and_search(self, backend: Backend) -> None:
        require(backend, Capability.BROWSE)
        require(backend, Capability.TASKS)
        call = await backend.create_task(NewTask(subject="Call Ada"))
        deck = await backend.create_task(NewTask(subject="Send deck", description="CALL notes"))
        done = await backend.create_task(NewTask(subject="Email 100%_sure"))
        await backend.update_task(done.id, TaskChanges(now=BASE, completed=True))

        def ids(tasks: list[Any]) -> list[str]:
            return [task.id for task in tasks]

        assert ids(await backend.list_tasks(completed=True)) == [done.id]
        assert ids(await backend.list_tasks(completed=False)) == [deck.id, call.id]
        assert ids(await backend.list_tasks(search="call")) == [deck.id, call.id]
        assert ids(await backend.list_tasks(search="DECK", completed=False)) == [deck.id]
        assert ids(await backend.list_tasks(search="deck", completed=True)) == []
        assert ids(await backend.list_tasks(search="0%_s")) == [done.id]
        assert ids(await backend.list_tasks(search="l%a")) == []
        assert ids(await backend.list_tasks(limit=1, offset=1)) == [deck.id]
        assert ids(await backend.list_tasks(limit=5, offset=3)) == []

    @pytest.mark.anyio
    async def test_list_associated_both_directions(
        self, backend: Backend, records: RecordFactory, missing_id: str
    ) -> None:
        require(backend, Capability.BROWSE)
        require(backend, Capability.ASSOCIATIONS)
        ada, bob, eve = [await records.create(backend, C, n) for n in range(3)]
        acme, globex = [await records.create(backend, K, n) for n in range(2)]
        await backend.create_associations(
            [
                AssociationPair(ada, acme),
                AssociationPair(ada, globex),
                AssociationPair(bob, acme),
                AssociationPair(ada, acme),
            ]
        )
        companies = await backend.list_associated(C, ada)
        assert sorted(r.crm_id for r in companies) == sorted([acme, globex])
        contacts = await backend.list_associated(K, acme)
        assert sorted(r.crm_id for r in contacts) == sorted([ada, bob])
        assert await backend.list_associated(C, eve) == []
        assert await backend.list_associated(K, missing_id) == []

    @pytest.mark.anyio
    async def test_list_activities_filtered_and_newest_first(
        self, backend: Backend, records: RecordFactory
    ) -> None:
        require(backend, Capability.BROWSE)
        require(backend, Capability.ACTIVITIES)
        ada, bob = [await records.create(backend, C, n) for n in range(2)]
        acme = await records.create(backend, K, 1)
        metadata = {"messageId": "m-1", "threadId": "t-9"}
        made = {}
        for name, contact, company, hours in [
            ("old", ada, None, 1),
            ("new", ada, acme, 3),
            ("mid", ada, None, 2),
            ("bob", bob, acme, 4),
        ]:
            activity = await backend.create_activity(
                NewActivity(
                    type="EMAIL",
                    direction="OUTBOUND",
                    subject=name,
                    occurred_at=BASE + timedelta(hours=hours),
                    contact_id=contact,
                    company_id=company,
                    metadata=metadata,
                )
            )
            made[name] = activity.id
        of_ada = await backend.list_activities(contact_id=ada)
        assert [a.id for a in of_ada] == [made["new"], made["mid"], made["old"]]
        assert dict(of_ada[0].metadata) == metadata
        assert (of_ada[0].type, of_ada[0].direction) == ("EMAIL", "OUTBOUND")
        of_acme = await backend.list_activities(company_id=acme)
        assert [a.id for a in of_acme] == [made["bob"], made["new"]]
        everything = await backend.list_activities(limit=2)
        assert [a.id for a in everything] == [made["bob"], made["new"]]

    @pytest.mark.anyio
    async def test_list_tasks_filtered_and_newest_first(
        self, backend: Backend, records: RecordFactory
    ) -> None:
        require(backend, Capability.BROWSE)
        require(backend, Capability.TASKS)
        ada, bob = [await records.create(backend, C, n) for n in range(2)]
        acme = await records.create(backend, K, 1)
        t1 = await backend.create_task(NewTask(subject="one", contact_id=ada))
        t2 = await backend.create_task(NewTask(subject="two", contact_id=bob, company_id=acme))
        t3 = await backend.create_task(NewTask(subject="three", contact_id=ada, company_id=acme))
        assert [t.id for t in await backend.list_tasks(contact_id=ada)] == [t3.id, t1.id]
        assert [t.id for t in await backend.list_tasks(company_id=acme)] == [t3.id, t2.id]
        assert [t.id for t in await backend.list_tasks()] == [t3.id, t2.id, t1.id]
        assert [t.id for t in await backend.list_tasks(limit=1)] == [t3.id]
