"""What the outbox's tests share: a memory backend that can be taken down, and settings."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from backends.base import (
    Activity,
    AssociationPair,
    BackendError,
    Entity,
    ItemResult,
    NewActivity,
    NewRecord,
    NewTask,
    RecordUpdate,
    Task,
    TaskChanges,
)
from backends.memory import MemoryBackend
from tests.conftest import make_settings

__all__ = ["OutageBackend", "outbox_settings", "run_sql"]


class OutageBackend(MemoryBackend):
    """The reference driver, with an outage switch: while ``failure`` is set, every write (and
    ``ping``) raises it. ``writes`` logs the writes that reached the
    store, in order: ``(operation, ident, detail)``."""

    def __init__(self) -> None:
        super().__init__()
        self.failure: BackendError | None = None
        self.writes: list[tuple[str, str, Any]] = []

    def _check(self) -> None:
        if self.failure is not None:
            raise self.failure

    async def ping(self) -> None:
        self._check()

    async def create_records(
        self, entity: Entity, records: Sequence[NewRecord]
    ) -> list[ItemResult]:
        self._check()
        return await super().create_records(entity, records)

    async def create_task(self, task: NewTask) -> Task:
        self._check()
        return await super().create_task(task)

    async def update_records(
        self, entity: Entity, updates: Sequence[RecordUpdate]
    ) -> list[ItemResult]:
        self._check()
        results = await super().update_records(entity, updates)
        for update, result in zip(updates, results, strict=True):
            if result.ok:
                self.writes.append((f"{entity.plural}.update", update.crm_id, dict(update.fields)))
        return results

    async def create_associations(self, pairs: Sequence[AssociationPair]) -> list[ItemResult]:
        self._check()
        results = await super().create_associations(pairs)
        for pair, result in zip(pairs, results, strict=True):
            if result.ok:
                self.writes.append(("associations.create", pair.contact_id, pair.company_id))
        return results

    async def create_activity(self, activity: NewActivity) -> Activity:
        self._check()
        stored = await super().create_activity(activity)
        self.writes.append(("activities.create", stored.id, dict(activity.metadata)))
        return stored

    async def update_task(self, task_id: str, changes: TaskChanges) -> Task:
        self._check()
        task = await super().update_task(task_id, changes)
        self.writes.append(("tasks.update", task_id, changes.completed))
        return task

    async def update_tasks(self, ids: Sequence[str], changes: TaskChanges) -> list[Task]:
        self._check()
        return await super().update_tasks(ids, changes)

    def activities(self) -> list[Activity]:
        return list(self._activities.values())


def outbox_settings(tmp_path: Path, **outbox: Any) -> Any:
    """Test settings with the outbox on, its queue in ``tmp_path``, quick timings."""
    section = {
        "enabled": True,
        "url": f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}",
        "poll_seconds": 0.05,
        "probe_seconds": 0.05,
        "backoff": {"first": 0.05, "factor": 2, "cap": 0.5, "jitter": 0},
        **outbox,
    }
    return make_settings(outbox=section)


async def run_sql_async(url: str, *statements: str) -> list[list[tuple[Any, ...]]]:
    """Run ``statements`` in one transaction on ``url``; the rows of each (``[]`` when none)."""
    engine = create_async_engine(url)
    out: list[list[tuple[Any, ...]]] = []
    try:
        async with engine.begin() as conn:
            for statement in statements:
                result = await conn.execute(sa.text(statement))
                out.append([tuple(row) for row in result] if result.returns_rows else [])
    finally:
        await engine.dispose()
    return out


def run_sql(url: str, *statements: str) -> list[list[tuple[Any, ...]]]:
    """:func:`run_sql_async` from synchronous code."""
    return asyncio.run(run_sql_async(url, *statements))
