"""How long the dashboard's record search takes (``list_records(search=...)``), per driver.

The search is a scan (``lower(...) LIKE '%...%'`` on SQL, a loop in memory): this prints what a
page of results costs on stores of growing size, for a term that matches one record (the scan
reads everything) and one that matches many (it stops after a page).

    python bench/dashboard_search.py [RECORDS ...]     # default: 1000 10000 50000
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from backends.base import Backend, Entity, NewRecord
from backends.memory import MemoryBackend
from backends.sql.driver import SQLBackend
from backends.sql.options import SQLOptions

ROUNDS = 5


async def fill(backend: Backend, count: int) -> None:
    batch: list[NewRecord] = []
    for n in range(count):
        batch.append(
            NewRecord(
                f"ext-{n}",
                {
                    "email": f"person{n}@company{n % 500}.example",
                    "firstName": f"First{n}",
                    "lastName": f"Last{n}",
                    "leadScore": str(n % 100),
                },
            )
        )
        if len(batch) == 1000:
            await backend.create_records(Entity.CONTACT, batch)
            batch = []
    if batch:
        await backend.create_records(Entity.CONTACT, batch)


async def timed(backend: Backend, search: str) -> tuple[float, int]:
    best = float("inf")
    found = 0
    for _ in range(ROUNDS):
        start = time.perf_counter()
        found = len(await backend.list_records(Entity.CONTACT, limit=50, search=search))
        best = min(best, time.perf_counter() - start)
    return best * 1000, found


async def run(sizes: list[int]) -> None:
    print(f"{'driver':<8} {'records':>8} {'search':<22} {'found':>5} {'best of 5':>10}")
    for size in sizes:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
            drivers: list[tuple[str, Backend]] = [
                ("memory", MemoryBackend()),
                ("sqlite", SQLBackend(SQLOptions.model_validate({"url": url}))),
            ]
            for name, backend in drivers:
                await backend.open()
                try:
                    await fill(backend, size)
                    for search in (f"person{size // 2}@", "company7.example"):
                        ms, found = await timed(backend, search)
                        print(f"{name:<8} {size:>8} {search:<22} {found:>5} {ms:>8.1f} ms")
                finally:
                    await backend.close()


if __name__ == "__main__":
    arguments = [int(a) for a in sys.argv[1:]] or [1000, 10000, 50000]
    asyncio.run(run(arguments))
