"""What SQLite itself needs for a create of 100 contacts: the adapter's own statements on the
standard ``sqlite3`` module, without HTTP, validation, asyncio or the driver's Python.

    python bench/sqlite_floor.py [--repeat 30] [--warmup 5] [--stored 20000]

It opens the SQL driver once on an SQLite file in a temporary directory (so the managed tables
are the adapter's, with their indexes), fills ``--stored`` contacts through the driver, closes
it, and then, on a plain ``sqlite3`` connection set up as the driver sets up its own (WAL,
``synchronous=NORMAL``), times the create's transaction as ``backends/sql/sqlitepaths.py`` runs
it: ``BEGIN IMMEDIATE``, the rows (one ``executemany`` of the driver's compiled ``INSERT ... ON
CONFLICT (external_id) DO NOTHING``), the match keys (two per contact: e-mail and LinkedIn URL,
one ``executemany``) and ``COMMIT``, with the driver's row layout and time-ordered ids.

Printed: the median wall and CPU milliseconds of each step and of the whole transaction, then
the same without the match keys' ``(entity, crm_id)`` index (dropped for the second part): what
that index costs a create. Compare the total with the bare app's round trip that
``bench/floor.py`` prints (the target of a create is 3 of those, HTTP and front included).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from backends.base import Entity, NewRecord  # noqa: E402
from backends.sql import SQLBackend, SQLOptions  # noqa: E402
from backends.sql.ids import time_ordered_ids  # noqa: E402
from backends.sql.sqlitebatch import json_text, sqlite_timestamp  # noqa: E402

BATCH = 100
C = Entity.CONTACT


def contact(tag: str, i: int) -> NewRecord:
    email = f"person.{tag}.{i}@example-{i % 97}.com"
    linkedin = f"linkedin.com/in/person-{tag}-{i}"
    fields = {
        "email": email,
        "firstName": f"First{i}",
        "lastName": f"Last{i}",
        "phone": f"+1 555 {i:07d}",
        "company": f"Company {i % 97}",
        "title": "VP of Engineering",
        "linkedinUrl": f"https://www.{linkedin}/",
        "campaigns": "Q3 outbound",
    }
    return NewRecord(f"{tag}-{i}", fields, {"email": email, "linkedinUrl": linkedin})


Row = tuple[Any, ...]
Layout = tuple[Callable[[Any], Row], Callable[[Any], dict[str, Any]]]


async def prepare(path: Path, stored: int) -> tuple[Any, Any, Layout, str]:
    """The schema and ``stored`` contacts through the driver; then the driver's compiled create
    statements, its row layout (the typed columns' getter and ``RecordStore.to_row``) and the
    name of the keys' ``crm_id`` index."""
    backend = SQLBackend(SQLOptions(url=f"sqlite+aiosqlite:///{path}"))
    await backend.open()
    try:
        for start in range(0, stored, 1000):
            batch = [contact("seed", i) for i in range(start, min(stored, start + 1000))]
            await backend.create_records(C, batch)
        store = backend._store(C)
        rows_sql, keys_sql, _held, typed, _to_json = backend._lite_create_sql(store)
        return rows_sql, keys_sql, (typed, store.to_row), f"{backend.tables.prefix}keys_crm_ix"
    finally:
        await backend.close()


def batch_params(tag: str, layout: Layout) -> tuple[list[Row], list[Row]]:
    """One batch's row and key tuples, as ``SQLitePathsMixin._lite_create`` binds them."""
    typed, to_row = layout
    stamp = sqlite_timestamp(datetime.now(UTC).replace(tzinfo=None))
    records = [contact(tag, i) for i in range(BATCH)]
    rows: list[Row] = []
    keys: list[Row] = []
    for record, crm_id in zip(records, time_ordered_ids(BATCH), strict=True):
        row = to_row(record.fields)
        rows.append(
            (crm_id, record.external_id, *typed(row), json_text(row["extra"]), stamp, stamp)
        )
        keys += [("contact", k, v, crm_id) for k, v in record.match_keys.items()]
    return rows, keys


def one_create(
    db: sqlite3.Connection, statements: tuple[Any, Any], rows: list[Row], keys: list[Row]
) -> dict[str, tuple[float, float]]:
    """One create's transaction, each step timed: ``{step: (wall s, CPU s)}``."""
    rows_sql, keys_sql = statements
    out: dict[str, tuple[float, float]] = {}

    def step(name: str, run: Callable[[], Any]) -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        run()
        out[name] = (time.perf_counter() - wall, time.thread_time() - cpu)

    step("BEGIN IMMEDIATE", lambda: db.execute("BEGIN IMMEDIATE"))
    step("rows (executemany)", lambda: db.executemany(rows_sql.sql, rows))
    step("keys (executemany)", lambda: db.executemany(keys_sql.sql, keys))
    step("COMMIT", lambda: db.execute("COMMIT"))
    return out


def measure(
    db: sqlite3.Connection,
    statements: tuple[Any, Any],
    layout: Layout,
    repeat: int,
    warmup: int,
    tag: str,
) -> dict[str, tuple[float, float]]:
    """Medians over ``repeat`` creates after ``warmup`` unmeasured ones."""
    timings: dict[str, list[tuple[float, float]]] = {}
    for n in range(warmup + repeat):
        rows, keys = batch_params(f"{tag}{n}", layout)
        result = one_create(db, statements, rows, keys)
        if n < warmup:
            continue
        total = (sum(w for w, _ in result.values()), sum(c for _, c in result.values()))
        for name, value in [*result.items(), ("whole transaction", total)]:
            timings.setdefault(name, []).append(value)
    return {
        name: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
        for name, values in timings.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--stored", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "floor.db"
        rows_sql, keys_sql, layout, crm_index = asyncio.run(prepare(path, args.stored))
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        statements = (rows_sql, keys_sql)
        results = {"as shipped": measure(db, statements, layout, args.repeat, args.warmup, "a")}
        db.execute(f'DROP INDEX "{crm_index}"')
        results["without keys' crm_id ix"] = measure(
            db, statements, layout, args.repeat, args.warmup, "b"
        )
        db.close()
    print(
        f"# bench/sqlite_floor.py: {args.stored:,} contacts stored, {BATCH}-contact creates, "
        f"SQLite {sqlite3.sqlite_version}, Python {sys.version.split()[0]}, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(f"{'variant':26s} {'step':22s} {'wall ms':>8s} {'cpu ms':>8s}")
    for variant, steps in results.items():
        for name, (wall, cpu) in steps.items():
            print(f"{variant:26s} {name:22s} {wall * 1000:8.3f} {cpu * 1000:8.3f}")


if __name__ == "__main__":
    main()
