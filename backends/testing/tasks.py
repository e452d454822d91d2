"""Conformance tests of :attr:`Capability.TASKS`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backends.base import Backend, Capability, Entity, NewTask, NotFound, Task, TaskChanges
from backends.testing._base import RecordFactory, SuiteBase, require, same_instant

__all__ = ["TasksSuite"]

C, K = Entity.CONTACT, Entity.COMPANY
DUE = datetime(2025, 6, 1, 9, 0, 0, tzinfo=UTC)
T1 = datetime(2025, 6, 2, 12, 0, 0, tzinfo=UTC)
T2 = datetime(2025, 6, 3, 12, 0, 0, tzinfo=UTC)
T3 = datetime(2025, 6, 4, 12, 0, 0, tzinfo=UTC)


class TasksSuite(SuiteBase):
    """``create_task``, ``get_task(s)``, ``update_task(s)`` and completion semantics."""

    async def _task(self, backend: Backend, subject: str = "Call Ada", **kw: object) -> Task:
        return await backend.create_task(NewTask(subject=subject, **kw))  # type: ignore[arg-type]

    @pytest.mark.anyio
    async def test_create_returns_open_task_with_values(
        self, backend: Backend, records: RecordFactory
    ) -> None:
        require(backend, Capability.TASKS)
        contact = await records.create(backend, C, 1)
        company = await records.create(backend, K, 1)
        task = await self._task(
            backend,
            description="About the demo",
            type="CALL",
            due_date=DUE,
            contact_id=contact,
            company_id=company,
        )
        assert isinstance(task, Task)
        assert isinstance(task.id, str) and task.id
        assert task.completed is False
        assert task.completed_at is None
        assert (task.subject, task.description, task.type) == ("Call Ada", "About the demo", "CALL")
        assert (task.contact_id, task.company_id) == (contact, company)
        assert same_instant(task.due_date, DUE)
        got = await backend.get_task(task.id)
        assert (got.id, got.subject, got.completed) == (task.id, "Call Ada", False)

    @pytest.mark.anyio
    async def test_create_is_not_idempotent(self, backend: Backend) -> None:
        require(backend, Capability.TASKS)
        assert (await self._task(backend)).id != (await self._task(backend)).id

    @pytest.mark.anyio
    async def test_create_with_unknown_contact_raises_not_found(
        self, backend: Backend, missing_id: str
    ) -> None:
        require(backend, Capability.TASKS)
        with pytest.raises(NotFound):
            await self._task(backend, contact_id=missing_id)

    @pytest.mark.anyio
    async def test_get_tasks_keeps_order_and_skips_unknown_and_repeated_ids(
        self, backend: Backend, missing_id: str
    ) -> None:
        require(backend, Capability.TASKS)
        t1 = await self._task(backend, "one")
        t2 = await self._task(backend, "two")
        got = await backend.get_tasks([t2.id, missing_id, t1.id, t2.id])
        assert [(t.id, t.subject) for t in got] == [(t2.id, "two"), (t1.id, "one")]
        assert await backend.get_tasks([]) == []

    @pytest.mark.anyio
    async def test_get_task_unknown_raises_not_found(
        self, backend: Backend, missing_id: str
    ) -> None:
        require(backend, Capability.TASKS)
        with pytest.raises(NotFound):
            await backend.get_task(missing_id)

    @pytest.mark.anyio
    async def test_update_changes_only_given_fields(self, backend: Backend) -> None:
        require(backend, Capability.TASKS)
        task = await self._task(backend, description="keep me", type="CALL")
        updated = await backend.update_task(
            task.id, TaskChanges(now=T1, fields={"subject": "Email Ada", "due_date": DUE})
        )
        assert updated.id == task.id
        assert updated.subject == "Email Ada"
        assert same_instant(updated.due_date, DUE)
        assert (updated.description, updated.type) == ("keep me", "CALL")
        assert updated.completed is False
        got = await backend.get_task(task.id)
        assert (got.subject, got.description) == ("Email Ada", "keep me")

    @pytest.mark.anyio
    async def test_complete_with_given_time_stores_it(self, backend: Backend) -> None:
        require(backend, Capability.TASKS)
        task = await self._task(backend)
        done = await backend.update_task(
            task.id, TaskChanges(now=T2, completed=True, completed_at=T1)
        )
        assert done.completed is True
        assert same_instant(done.completed_at, T1)
        got = await backend.get_task(task.id)
        assert got.completed is True and same_instant(got.completed_at, T1)

    @pytest.mark.anyio
    async def test_complete_without_time_uses_now(self, backend: Backend) -> None:
        require(backend, Capability.TASKS)
        task = await self._task(backend)
        done = await backend.update_task(task.id, TaskChanges(now=T2, completed=True))
        assert done.completed is True
        assert same_instant(done.completed_at, T2)

    @pytest.mark.anyio
    async def test_completing_again_keeps_completed_at_unless_given(self, backend: Backend) -> None:
        require(backend, Capability.TASKS)
        task = await self._task(backend)
        await backend.update_task(task.id, TaskChanges(now=T1, completed=True))
        again = await backend.update_task(task.id, TaskChanges(now=T2, completed=True))
        assert again.completed is True
        assert same_instant(again.completed_at, T1)
        moved = await backend.update_task(
            task.id, TaskChanges(now=T3, completed=True, completed_at=T2)
        )
        assert same_instant(moved.completed_at, T2)

    @pytest.mark.anyio
    async def test_uncompleting_clears_completed_at(self, backend: Backend) -> None:
        require(backend, Capability.TASKS)
        task = await self._task(backend)
        await backend.update_task(task.id, TaskChanges(now=T1, completed=True))
        reopened = await backend.update_task(task.id, TaskChanges(now=T2, completed=False))
        assert reopened.completed is False
        assert reopened.completed_at is None
        got = await backend.get_task(task.id)
        assert got.completed is False and got.completed_at is None

    @pytest.mark.anyio
    async def test_field_update_does_not_touch_completion(self, backend: Backend) -> None:
        require(backend, Capability.TASKS)
        task = await self._task(backend)
        await backend.update_task(task.id, TaskChanges(now=T1, completed=True))
        updated = await backend.update_task(task.id, TaskChanges(now=T2, fields={"subject": "x"}))
        assert updated.completed is True
        assert same_instant(updated.completed_at, T1)

    @pytest.mark.anyio
    async def test_update_unknown_raises_not_found(self, backend: Backend, missing_id: str) -> None:
        require(backend, Capability.TASKS)
        with pytest.raises(NotFound):
            await backend.update_task(missing_id, TaskChanges(now=T1, completed=True))

    @pytest.mark.anyio
    @pytest.mark.parametrize("field", ["contact_id", "company_id"])
    async def test_update_pointing_at_an_unknown_record_raises_not_found(
        self, backend: Backend, records: RecordFactory, missing_id: str, field: str
    ) -> None:
        """The front tells this (400 naming the field) from an unknown task (404) by asking
        whether the task exists; the driver must refuse the reference either way."""
        require(backend, Capability.TASKS)
        contact = await records.create(backend, C, 1)
        task = await self._task(backend, contact_id=contact)
        with pytest.raises(NotFound):
            await backend.update_task(task.id, TaskChanges(now=T1, fields={field: missing_id}))
        got = await backend.get_task(task.id)
        assert (got.contact_id, got.company_id) == (contact, None)

    @pytest.mark.anyio
    async def test_update_tasks_skips_unknown_ids(self, backend: Backend, missing_id: str) -> None:
        require(backend, Capability.TASKS)
        t1 = await self._task(backend, "one")
        t2 = await self._task(backend, "two")
        untouched = await self._task(backend, "three")
        done = await backend.update_tasks(
            [t2.id, missing_id, t1.id], TaskChanges(now=T1, completed=True)
        )
        assert [t.id for t in done] == [t2.id, t1.id]
        assert all(t.completed and same_instant(t.completed_at, T1) for t in done)
        got = await backend.get_tasks([t1.id, t2.id, untouched.id])
        assert [t.completed for t in got] == [True, True, False]
