"""SQLite's hot paths as one trip to the connection's thread (backends/sql/sqlitebatch.py):
errors keep their classification, writers of one process queue instead of failing, and the
ids the adapter makes are time-ordered UUIDs."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import anyio
import pytest

from backends.base import EXTERNAL_ID, Entity, MatchKey, NewActivity, NewRecord, Unavailable
from backends.sql.ids import time_ordered_ids

from .conftest import OpenBackend, on_statements

pytestmark = pytest.mark.anyio
C = Entity.CONTACT


def contacts(n: int, tag: str) -> list[NewRecord]:
    return [
        NewRecord(
            f"{tag}-{i}", {"email": f"{tag}{i}@x.io", "score": i}, {"email": f"{tag}{i}@x.io"}
        )
        for i in range(n)
    ]


async def test_the_hot_paths_run_as_batches_on_sqlite(
    open_backend: OpenBackend, sqlite_url: str
) -> None:
    async with open_backend(sqlite_url) as backend:
        assert backend._lite is not None
        seen: list[str] = []
        with on_statements(backend, lambda sql, *_: seen.append(sql.split(None, 1)[0].upper())):
            made = await backend.create_records(C, contacts(50, "a"))
        # The rows and the keys are two executemany statements in one write transaction.
        assert seen == ["BEGIN", "INSERT", "INSERT", "COMMIT"], seen
        assert all(r.created for r in made)
        found = await backend.find_records(C, MatchKey("email", "email"), ["a7@x.io"])
        assert found["a7@x.io"].crm_id == made[7].crm_id


async def test_a_database_error_inside_a_batch_is_unavailable_and_writes_nothing(
    open_backend: OpenBackend, sqlite_url: str
) -> None:
    async with open_backend(sqlite_url) as backend:

        def locked(sql: str, *_args: Any) -> None:
            if sql.startswith(f"INSERT INTO {backend.tables.prefix}match_keys"):
                raise sqlite3.OperationalError("database is locked")

        with on_statements(backend, locked), pytest.raises(Unavailable) as caught:
            await backend.create_records(C, contacts(5, "b"))
        assert caught.value.retryable and "database is locked" in caught.value.message
        # The rows inserted before the failing statement were rolled back with it.
        assert (await backend.counts())["contacts"] == 0
        assert all(r.created for r in await backend.create_records(C, contacts(5, "b")))


async def test_a_constraint_error_inside_a_batch_is_replayed_row_by_row(
    open_backend: OpenBackend, sqlite_url: str
) -> None:
    """An IntegrityError from sqlite3 is a record error (as through SQLAlchemy): the batch is
    replayed row by row, so a one-off rejection of the batch statement loses nothing."""
    async with open_backend(sqlite_url) as backend:
        failed: list[str] = []

        def reject_once(sql: str, *_args: Any) -> None:
            if sql.startswith(f"INSERT INTO {backend.tables.prefix}contacts") and not failed:
                failed.append(sql)
                raise sqlite3.IntegrityError("CHECK constraint failed")

        with on_statements(backend, reject_once):
            made = await backend.create_records(C, contacts(5, "c"))
        assert failed and all(r.created for r in made)
        assert (await backend.counts())["contacts"] == 5


async def test_writers_of_one_process_queue_instead_of_hitting_the_busy_timeout(
    open_backend: OpenBackend, sqlite_url: str
) -> None:
    """With a busy timeout of 1 ms, concurrent write transactions of one process would fail
    with "database is locked"; the driver queues them itself."""
    async with open_backend(sqlite_url, connect_timeout=0.001, pool_size=5) as backend:
        outcomes: list[bool] = []

        async def create(n: int) -> None:
            made = await backend.create_records(C, contacts(100, f"w{n}"))
            outcomes.append(all(r.created for r in made))

        async def activity(n: int) -> None:
            await backend.create_activity(
                NewActivity(type="EMAIL", idempotency_key=f"EMAIL|OUTBOUND|m{n}")
            )
            outcomes.append(True)

        async with anyio.create_task_group() as tg:
            for n in range(20):
                tg.start_soon(create, n)
                tg.start_soon(activity, n)
        assert outcomes == [True] * 40
        counts = await backend.counts()
        assert (counts["contacts"], counts["activities"]) == (2000, 20)
        hits = await backend.find_records(C, MatchKey(EXTERNAL_ID), ["w19-99", "w0-0"])
        assert set(hits) == {"w19-99", "w0-0"}


def test_made_ids_are_time_ordered_uuids() -> None:
    first, later = time_ordered_ids(100), time_ordered_ids(100)
    assert first == sorted(first) and len(set(first + later)) == 200
    assert max(first) < min(later) or first[0][:13] == later[0][:13]  # same millisecond
    for value in first:
        parsed = uuid.UUID(value)
        assert (parsed.version, parsed.variant, str(parsed)) == (7, uuid.RFC_4122, value)


async def test_managed_records_and_activities_get_time_ordered_ids(
    open_backend: OpenBackend, sqlite_url: str
) -> None:
    async with open_backend(sqlite_url) as backend:
        made = await backend.create_records(C, contacts(3, "d"))
        stored = await backend.create_activity(NewActivity(type="EMAIL"))
        for crm_id in [*(r.crm_id or "" for r in made), stored.id]:
            assert uuid.UUID(crm_id).version == 7
