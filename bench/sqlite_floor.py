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
that index costs a create.

Then (skipped with ``--no-budget``) the create's budget over HTTP, in one run: it serves the bare
app and times ``POST /contacts`` of 100 new contacts (``bench/floor.py``'s client and bodies)
alternately on it and on the adapter on the memory driver, then alternately on it and on the
adapter on an SQLite file (filled through its own API with ``--stored`` contacts first, so that
its indexes are the size of part 1's; started only for its pair, so that its background work
does not run beside the memory driver's requests); and it times the memory driver's
``create_records`` alone, in-process, on the very batches its front hands it. The memory
driver's round trip less its store is what every request costs before any driver (HTTP,
parsing, validation, mapping, match keys, the answer); that plus SQLite's own transaction is
the least an SQLite create can take with this front, whatever the driver does. Printed beside
the target (3 bare round trips) and the SQL driver's measured round trip, each as a ratio to
the bare app.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for path in (ROOT, BENCH):  # runnable from a checkout without installing
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import floor  # noqa: E402  (bench/floor.py: servers, bodies, the paired client)
import front  # noqa: E402  (bench/front.py: the bare app)

from adapter.app import build_service  # noqa: E402
from adapter.config import Settings  # noqa: E402
from backends.base import Entity, NewRecord  # noqa: E402
from backends.memory import MemoryBackend  # noqa: E402
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


# -- the budget of a create over HTTP -------------------------------------------------------------


def http_budget(workdir: Path, stored: int, repeat: int, warmup: int) -> dict[str, float]:
    """Median round trips (ms) of ``POST /contacts`` (100 new): the bare app against the memory
    driver, then the bare app against the SQL driver on an SQLite file holding ``stored``
    contacts, each pair alternately. The SQLite server is started only for the second pair: its
    background work (checkpoints, statistics) does not run beside the memory driver's requests.
    Keys: ``memory``, ``bare/memory``, ``sqlite``, ``bare/sqlite``."""
    out: dict[str, float] = {}
    with ExitStack() as stack:
        bare = stack.enter_context(front.server("bare", floor.KEY))
        bare_side = (stack.enter_context(floor.client_for(bare.url)), bare.pid)
        for name in ("memory", "sqlite"):
            db_url = None if name == "memory" else f"sqlite+aiosqlite:///{workdir / 'budget.db'}"
            with ExitStack() as ours:
                served = ours.enter_context(floor.serve_ours(db_url, workdir))
                sides = {name: (ours.enter_context(floor.client_for(served.url)), served.pid)}
                sides["bare"] = bare_side
                if db_url is not None:
                    for body in floor.create_bodies(stored // BATCH, "fill"):
                        floor.post(sides[name][0], "/contacts", body)
                creates = {
                    side: floor.create_bodies(repeat + warmup, f"{side}{uuid.uuid4().hex[:6]}")
                    for side in sides
                }
                timings = floor.paired(
                    sides, "/contacts", lambda side, i, c=creates: c[side][i], repeat, warmup
                )
            out[name] = timings[name].median
            out[f"bare/{name}"] = timings["bare"].median
    return out


def memory_store(repeat: int, warmup: int) -> float:
    """Median ms of the memory driver's ``create_records`` alone, on the batches the service
    (mapping, match keys) hands it for ``bench/floor.py``'s create bodies."""

    class Recording(MemoryBackend):
        def __init__(self) -> None:
            super().__init__()
            self.batches: list[list[NewRecord]] = []

        async def create_records(self, entity: Entity, records: Sequence[NewRecord]) -> Any:
            self.batches.append(list(records))
            return await super().create_records(entity, records)

    async def run() -> float:
        settings = Settings.model_validate(
            {"auth": {"keys": [floor.KEY]}, "backend": {"driver": "memory"}}
        )
        recording = Recording()
        service = build_service(settings, recording)
        for body in floor.create_bodies(repeat + warmup, f"store{uuid.uuid4().hex[:6]}"):
            await service.create_records(C, json.loads(body)["contacts"])
        assert len(recording.batches) == repeat + warmup
        backend = MemoryBackend()
        await backend.open()
        times = []
        for batch in recording.batches:
            start = time.perf_counter()
            await backend.create_records(C, batch)
            times.append(time.perf_counter() - start)
        await backend.close()
        return statistics.median(times[warmup:]) * 1000

    return asyncio.run(run())


def print_budget(http: dict[str, float], store: float, sqlite_txn: float) -> None:
    bare, bare_sqlite = http["bare/memory"], http["bare/sqlite"]
    pre = http["memory"] - store
    least = pre + sqlite_txn
    print()
    print("# the create's budget over HTTP: POST /contacts (100 new), medians in one run")
    print(f"{'':60s} {'ms':>7s} {'/ bare':>7s}")
    lines = [
        ("bare app round trip (paired with the memory driver)", bare, bare),
        ("memory driver round trip", http["memory"], bare),
        ("  its store alone (create_records, in-process)", store, bare),
        ("  so every request before a driver (memory - store)", pre, bare),
        ("SQLite's own transaction (as shipped, above)", sqlite_txn, bare),
        ("least an SQLite create can take: before a driver + SQLite", least, bare),
        ("target: 3 bare round trips", 3 * bare, bare),
        ("bare app round trip (paired with the SQL driver)", bare_sqlite, bare_sqlite),
        ("the SQL driver's round trip on SQLite", http["sqlite"], bare_sqlite),
    ]
    for name, ms, unit in lines:
        print(f"{name:60s} {ms:7.3f} {ms / unit:7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--stored", type=int, default=20_000)
    parser.add_argument(
        "--no-budget", action="store_true", help="only SQLite's own transaction, no HTTP part"
    )
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
    if args.no_budget:
        return
    with tempfile.TemporaryDirectory() as tmp:
        http = http_budget(Path(tmp), args.stored, args.repeat, args.warmup)
    store = memory_store(args.repeat, args.warmup)
    print_budget(http, store, results["as shipped"]["whole transaction"][0] * 1000)


if __name__ == "__main__":
    main()
