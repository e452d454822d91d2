"""A sync's lookups on the SQL driver: every key on one connection (one trip to SQLite's
connection thread), and on SQLite, lookups that search the indexes even when the table's
statistics are stale (backends/sql/plans.py)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest
from sqlalchemy import event, make_url

from backends.base import EXTERNAL_ID, Entity, MatchKey, NewRecord, StoredRecord
from backends.sql import SQLBackend

from .conftest import OpenBackend, on_statements

pytestmark = pytest.mark.anyio
C = Entity.CONTACT
KEYS = [
    MatchKey(EXTERNAL_ID),
    MatchKey("email", "email", "email"),
    MatchKey("linkedinUrl", "linkedinUrl", "linkedin"),
]


def contact(tag: str, i: int) -> NewRecord:
    email, linkedin = f"{tag}{i}@x.io", f"linkedin.com/in/{tag}-{i}"
    return NewRecord(
        f"{tag}-{i}",
        {"email": email, "linkedinUrl": linkedin},
        {"email": email, "linkedinUrl": linkedin},
    )


async def seed(backend: SQLBackend) -> list[str]:
    made = await backend.create_records(C, [contact("s", i) for i in range(3)])
    return [r.crm_id for r in made if r.crm_id is not None]


#: Four items: by external id, by e-mail, by LinkedIn URL, and one nothing finds (``values[k][i]``).
ITEMS = [
    ["s-0", "new-1", "new-2", "new-3"],
    [None, "s1@x.io", "nobody@x.io", "nobody@x.io"],
    [None, None, "linkedin.com/in/s-2", "linkedin.com/in/nobody"],
]


def ids(found: list[StoredRecord | None]) -> list[str | None]:
    return [r.crm_id if r is not None else None for r in found]


async def test_a_sync_is_one_trip_to_the_sqlite_connection_thread(
    open_backend: OpenBackend, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_backend(sqlite_url) as backend:
        made = await seed(backend)
        lite = backend._lite
        assert lite is not None
        trips: list[str] = []
        run = lite.run

        async def counted(what: str, work: Any, **kw: Any) -> Any:
            trips.append(what)
            return await run(what, work, **kw)

        monkeypatch.setattr(lite, "run", counted)
        seen: list[str] = []
        with on_statements(backend, lambda sql, *_: seen.append(sql)):
            found = await backend.match_records(C, KEYS, ITEMS)
        assert ids(found) == [made[0], made[1], made[2], None]
        assert trips == ["find contacts"]
        # One statement per key, each for the items still unmatched.
        assert len(seen) == 3, seen


@pytest.mark.parametrize("server", ["postgres_url", "mysql_url"])
async def test_a_sync_checks_out_one_connection(
    open_backend: OpenBackend, request: pytest.FixtureRequest, server: str
) -> None:
    async with open_backend(request.getfixturevalue(server)) as backend:
        made = await seed(backend)
        checkouts: list[object] = []

        def on_checkout(*args: Any) -> None:
            checkouts.append(args)

        pool = backend.engine.sync_engine.pool
        event.listen(pool, "checkout", on_checkout)
        try:
            found = await backend.match_records(C, KEYS, ITEMS)
        finally:
            event.remove(pool, "checkout", on_checkout)
        assert ids(found) == [made[0], made[1], made[2], None]
        assert len(checkouts) == 1


async def test_sqlite_lookups_search_the_indexes_when_the_statistics_are_stale(
    open_backend: OpenBackend, sqlite_url: str
) -> None:
    """Statistics taken when the table was small (``ANALYZE`` at 20 contacts, 2,000 since)
    made SQLite scan the whole table for each external-id lookup; the lookups are now
    driven by the wanted values, so every table is searched through an index."""
    path = make_url(sqlite_url).database
    assert path is not None
    async with open_backend(sqlite_url) as backend:
        # The lookups alone: without the driver's upkeep of statistics (statistics.py), which
        # would refresh them while the table grows.
        backend._statistics = None
        await backend.create_records(C, [contact("a", i) for i in range(20)])
        with sqlite3.connect(path) as db:
            db.execute("ANALYZE")
        await backend.create_records(C, [contact("b", i) for i in range(2000)])
        statements: list[tuple[str, Any]] = []
        with on_statements(backend, lambda sql, params, _many: statements.append((sql, params))):
            # Close the pool's connections so the next ones load the statistics afresh.
            await backend.engine.dispose()
            found = await backend.match_records(
                C, KEYS, [["b-1999", "x"], [None, "a7@x.io"], [None, None]]
            )
        assert [r.external_id if r else None for r in found] == ["b-1999", "a-7"]
        assert len(statements) == 2
        db = sqlite3.connect(path)
        try:
            stats = db.execute("SELECT count(*) FROM sqlite_stat1").fetchone()[0]
            assert stats > 0, "the test needs statistics to be stale"
            for sql, params in statements:
                plan = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
                tables = [step for step in plan if not step.startswith("SCAN enginy_wanted")]
                assert tables and all(step.startswith("SEARCH") for step in tables), plan
        finally:
            db.close()


async def test_lookups_take_each_value_once_on_sqlite(
    open_backend: OpenBackend, sqlite_url: str
) -> None:
    """The driven lookup joins the values to the table: a value sent twice must not make two
    rows (the driver sends each value once, and the answer holds each record once)."""
    async with open_backend(sqlite_url) as backend:
        made = await seed(backend)
        seen: list[Any] = []
        with on_statements(backend, lambda _sql, params, _many: seen.append(params)):
            found = await backend.find_records(C, KEYS[0], ["s-1", "s-1", "s-2"])
        assert {k: r.crm_id for k, r in found.items()} == {"s-1": made[1], "s-2": made[2]}
        assert sorted(json.loads(seen[0]["wanted"])) == ["s-1", "s-2"]
