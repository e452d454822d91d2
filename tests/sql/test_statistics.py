"""SQLite statistics of the adapter's tables (backends/sql/statistics.py): never created by the
adapter, brought up to date when the driver opens and when its tables have grown, and read by
every pooled connection afterwards (the refresh is a schema change for them), so an update
searches the index instead of scanning the table once per record."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import make_url

from backends.base import Entity, NewRecord, RecordUpdate
from backends.sql import SQLBackend, SQLOptions
from backends.sql.statistics import MIN_GROWTH, PROBE_ROWS

from .conftest import on_statements, unique_prefix

pytestmark = pytest.mark.anyio
C = Entity.CONTACT


def contacts(n: int, tag: str) -> list[NewRecord]:
    return [
        NewRecord(f"{tag}-{i}", {"email": f"{tag}{i}@x.io"}, {"email": f"{tag}{i}@x.io"})
        for i in range(n)
    ]


@asynccontextmanager
async def opened(url: str, prefix: str) -> AsyncIterator[SQLBackend]:
    backend = SQLBackend(SQLOptions(url=url, table_prefix=prefix))
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()


def analyse(url: str) -> None:
    """What an operator's ``sqlite3 file.db ANALYZE`` does."""
    path = make_url(url).database
    assert path is not None
    with sqlite3.connect(path) as db:
        db.execute("ANALYZE")


def recorded_rows(url: str, table: str) -> int | None:
    path = make_url(url).database
    assert path is not None
    db = sqlite3.connect(path)
    try:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
            return None
        row = db.execute(
            "SELECT max(CAST(stat AS INTEGER)) FROM sqlite_stat1 WHERE tbl = ?", (table,)
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])
    finally:
        db.close()


async def update_plans(backend: SQLBackend, crm_ids: list[str], connections: int) -> list[Any]:
    """The plan of the batch update of ``crm_ids`` on each of ``connections`` pooled
    connections held at once (every connection the pool has must plan it well)."""
    seen: list[tuple[str, Any]] = []
    updates = [RecordUpdate(crm_id, {"title": "CTO"}) for crm_id in crm_ids]
    with on_statements(backend, lambda sql, params, _many: seen.append((sql, params))):
        results = await backend.update_records(C, updates)
    assert all(r.ok for r in results)
    sql, params = next((s, p) for s, p in seen if s.startswith("UPDATE"))
    plans: list[Any] = []
    conns = [await backend.engine.connect() for _ in range(connections)]
    try:
        for n, conn in enumerate(conns):
            # A statement that runs notices a schema change (EXPLAIN alone does not), as the
            # update itself would; the EXPLAIN's text is new each time, so it is planned now
            # rather than taken from the connection's statement cache.
            await conn.exec_driver_sql(f"SELECT 1 FROM {backend.tables.contacts.name} LIMIT 1")
            explain = f"EXPLAIN QUERY PLAN {sql} -- {uuid.uuid4().hex} {n}"
            rows = await conn.exec_driver_sql(explain, params)
            plans.append([row[3] for row in rows])
    finally:
        for conn in conns:
            await conn.close()
    return plans


def scans(plan: list[str], table: str) -> bool:
    return any(step.startswith(f"SCAN {table}") for step in plan)


async def test_no_statistics_are_made_where_there_were_none(sqlite_url: str) -> None:
    async with opened(sqlite_url, unique_prefix()) as backend:
        statistics = backend._statistics
        assert statistics is not None
        await backend.create_records(C, contacts(PROBE_ROWS, "a"))
        await statistics.settled()
        assert statistics.refreshes == 2  # at open, then a look after PROBE_ROWS rows
        assert statistics.recorded == {}
        assert recorded_rows(sqlite_url, backend.tables.contacts.name) is None


async def test_statistics_taken_while_the_driver_runs_are_kept_current(sqlite_url: str) -> None:
    async with opened(sqlite_url, unique_prefix()) as backend:
        statistics = backend._statistics
        assert statistics is not None
        table = backend.tables.contacts.name
        await backend.create_records(C, contacts(20, "a"))
        analyse(sqlite_url)  # by an operator, after the driver opened
        await backend.create_records(C, contacts(PROBE_ROWS, "b"))
        await statistics.settled()
        assert statistics.recorded[table] >= 500  # 1,020 rows, sampled


async def test_stale_statistics_are_refreshed_when_the_driver_opens(sqlite_url: str) -> None:
    prefix = unique_prefix()
    async with opened(sqlite_url, prefix) as backend:
        await backend.create_records(C, contacts(20, "a"))
        analyse(sqlite_url)  # taken at 20 contacts ...
        made = await backend.create_records(C, contacts(PROBE_ROWS - 100, "b"))  # ... kept
        table = backend.tables.contacts.name
    assert recorded_rows(sqlite_url, table) == 20
    async with opened(sqlite_url, prefix) as backend:
        assert backend._statistics is not None
        assert backend._statistics.recorded[table] >= 450  # 920 rows, sampled: an estimate
        assert recorded_rows(sqlite_url, table) == backend._statistics.recorded[table]
        ids = [r.crm_id for r in made[:50] if r.crm_id is not None]
        for plan in await update_plans(backend, ids, connections=2):
            assert not scans(plan, table), plan


async def test_statistics_are_refreshed_as_the_tables_grow(sqlite_url: str) -> None:
    async with opened(sqlite_url, unique_prefix()) as backend:
        statistics = backend._statistics
        assert statistics is not None
        table = backend.tables.contacts.name
        await backend.create_records(C, contacts(20, "a"))
        analyse(sqlite_url)
        recorded = await statistics.refresh()
        assert recorded[table] == 20 and recorded[backend.tables.match_keys.name] == 20
        before = statistics.refreshes
        # Two pooled connections that read the statistics of 20 contacts.
        made = await backend.create_records(C, contacts(MIN_GROWTH - 1, "b"))
        ids = [r.crm_id for r in made if r.crm_id is not None]
        assert all(scans(p, table) for p in await update_plans(backend, ids[:20], 2))
        assert statistics.refreshes == before  # 99 new rows: not yet worth it
        await backend.create_records(C, contacts(MIN_GROWTH, "c"))
        await statistics.settled()
        assert statistics.refreshes == before + 1
        assert statistics.recorded[table] >= 100
        for plan in await update_plans(backend, ids[:20], connections=2):
            assert not scans(plan, table), plan
