"""The SQL driver over HTTP against the bare SQLAlchemy Core work for the same batch.

    python bench/sql.py [--databases sqlite,postgres] [--rows 1000000] [--repeat 15]

For each database (an SQLite file in a temporary directory; PostgreSQL at
``$ENGINY_TEST_POSTGRES_URL``, default the local CI server) it:

1. creates the adapter's managed tables under a fresh prefix, bulk-loads 1,000 contacts
   (server-side ``generate_series`` / recursive CTE: contacts with their external ids, and their
   e-mail keys), starts ``enginy-adapter serve`` (uvicorn, one process, loopback) on them, and
   times over HTTP, ``--repeat`` times each (median reported):

   * ``POST /contacts`` with 100 new contacts;
   * ``POST /contacts/sync`` with 100 contacts, half matching (25 by externalId, 25 by e-mail,
     50 unknown);
   * ``PUT /contacts`` with 100 updates of existing contacts;

   and, in the same run, the bare Core work for the same batch on a plain table, i.e. what a
   hand-written service doing the same job would at least run (see :func:`bare_table` and
   the ``bare_*`` functions):

   * create: one transaction, ``INSERT ... ON CONFLICT (external_id) DO NOTHING RETURNING id``
     (the unique external id makes the create idempotent; RETURNING says which rows were
     new) into a table whose match keys (e-mail, LinkedIn URL) are indexed columns;
   * sync: the two indexed ``IN`` lookups (by external id, then by e-mail), outside a
     transaction, as the adapter's reads run;
   * update: one transaction, one executemany ``UPDATE ... SET title = ?, extra = <JSON merge
     of the new leadScore>, updated_at = ? WHERE id = ?`` (the unknown field must be merged
     into the JSON column). It does not report unknown ids, which the adapter must.

   The ratio adapter/bare has a target of ≤ 3.
2. bulk-loads ``--rows`` contacts under a second prefix, serves them, and times the same sync:
   the latency with 1,000,000 stored contacts should be within 1.5 times that with 1,000.

Also times the same requests on the memory driver ("front": HTTP, validation, mapping and
matching without a database) and prints ``(adapter - front) / bare``: the SQL driver's own
cost against the bare Core work.

Prints one table. Bounded: the bulk load is a few INSERT ... SELECT statements; the whole run
takes a few minutes at most.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backends.sql import SQLBackend, SQLOptions

KEY = "bench-key"
BATCH = 100
POSTGRES_URL = os.environ.get(
    "ENGINY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


# -- loading -----------------------------------------------------------------------------------


def _series(dialect: str, n: int) -> str:
    """A ``FROM`` clause yielding ``g`` = 1..n on the server."""
    if dialect == "postgresql":
        return f"generate_series(1, {n}) AS s(g)"
    return (
        f"(WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {n}) "
        "SELECT g FROM s)"
    )


async def bulk_load(engine: AsyncEngine, prefix: str, n: int) -> None:
    """``n`` contacts as the adapter stores them (rows with their external ids, e-mail keys),
    and the same rows in the bare table."""
    d = engine.dialect.name

    def cat(*parts: str) -> str:
        return " || ".join(parts)

    cid = cat("'bulk-'", "CAST(g AS TEXT)" if d == "sqlite" else "g::text")
    email = cat("'bulk'", "CAST(g AS TEXT)" if d == "sqlite" else "g::text", "'@example.com'")
    now = "CURRENT_TIMESTAMP"
    src = _series(d, n)
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                f"INSERT INTO {prefix}contacts "
                "(id, external_id, email, first_name, last_name, created_at, updated_at) "
                f"SELECT {cid}, {cat(repr('ext-'), cid)}, {email}, 'Bulk', 'Contact', {now}, {now} "
                f"FROM {src}"
            )
        )
        await conn.execute(
            sa.text(
                f"INSERT INTO {prefix}match_keys (entity, key_name, value, crm_id) "
                f"SELECT 'contact', 'email', {email}, {cid} FROM {src}"
            )
        )
        await conn.execute(
            sa.text(
                f"INSERT INTO {prefix}bare (id, external_id, email, first_name, last_name) "
                f"SELECT {cid}, {cat(repr('ext-'), cid)}, {email}, 'Bulk', 'Contact' FROM {src}"
            )
        )
        if d == "postgresql":
            await conn.execute(sa.text("ANALYZE"))
        else:
            await conn.execute(sa.text("ANALYZE"))


def bare_table(prefix: str) -> sa.Table:
    """What a hand-written service would use: one table, unique external id, the match keys
    (e-mail, LinkedIn URL) as indexed columns, a JSON column for other fields, a timestamp."""
    md = sa.MetaData()
    return sa.Table(
        f"{prefix}bare",
        md,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("external_id", sa.String(255), nullable=False, unique=True),
        sa.Column("email", sa.Text, index=True),
        sa.Column("first_name", sa.Text),
        sa.Column("last_name", sa.Text),
        sa.Column("title", sa.Text),
        sa.Column("linkedin_url", sa.String(512), index=True),
        sa.Column("company", sa.Text),
        sa.Column("extra", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
        sa.Column("updated_at", sa.DateTime),
    )


async def prepare(url: str, prefix: str, n: int) -> sa.Table:
    backend = SQLBackend(SQLOptions(url=url, table_prefix=prefix))
    await backend.open()
    await backend.close()
    bare = bare_table(prefix)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(bare.metadata.create_all)
        await bulk_load(engine, prefix, n)
    finally:
        await engine.dispose()
    return bare


async def drop(url: str, prefix: str) -> None:
    backend = SQLBackend(SQLOptions(url=url, table_prefix=prefix))
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(backend.tables.metadata.drop_all)
            await conn.run_sync(bare_table(prefix).metadata.drop_all)
    finally:
        await engine.dispose()


# -- serving -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(url: str | None, prefix: str, workdir: Path) -> Iterator[str]:
    """``enginy-adapter serve`` on the SQL driver (or the memory driver when ``url`` is None)."""
    config = workdir / f"{prefix}.yaml"
    backend = (
        f"backend:\n  driver: sql\n  options:\n    url: {url}\n    table_prefix: {prefix}\n"
        if url is not None
        else "backend:\n  driver: memory\n"
    )
    config.write_text(f"auth:\n  keys: [{KEY}]\n{backend}")
    port = _free_port()
    exe = Path(sys.executable).with_name("enginy-adapter")
    log = (workdir / f"{prefix}.log").open("wb")
    proc = subprocess.Popen(
        [str(exe), "serve", "--config", str(config), "--port", str(port), "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health", headers={"X-API-Key": KEY}).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"serve did not start; see {log.name}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


# -- measuring ---------------------------------------------------------------------------------


async def paired_ms(
    ours: Callable[[int], Awaitable[None]],
    bare: Callable[[int], Awaitable[None]],
    repeat: int,
) -> tuple[float, float]:
    """Median milliseconds of each, measured alternately so that both see the same machine
    load (the ratio matters more than the absolute figures on a shared host)."""
    await ours(-1)  # warm-up (connections, statement caches)
    await bare(-1)
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(repeat):
        for run, sink in ((ours, times[0]), (bare, times[1])):
            start = time.perf_counter()
            await run(i)
            sink.append((time.perf_counter() - start) * 1000)
    return statistics.median(times[0]), statistics.median(times[1])


def new_contact(tag: str, i: int) -> dict[str, Any]:
    return {
        "externalId": f"new-{tag}-{i}",
        "email": f"new.{tag}.{i}@example.com",
        "firstName": "New",
        "lastName": f"Contact {i}",
        "title": "CTO",
        "linkedinUrl": f"https://linkedin.com/in/new-{tag}-{i}",
        "company": "Acme",
    }


def sync_batch(stored: int, tag: str) -> list[dict[str, Any]]:
    step = max(1, stored // 60)
    out = [{"externalId": f"ext-bulk-{1 + i * step}"} for i in range(25)]
    out += [
        {"externalId": f"s-{tag}-{i}", "email": f"bulk{1 + (i + 30) * step}@example.com"}
        for i in range(25)
    ]
    out += [
        {"externalId": f"u-{tag}-{i}", "email": f"nobody.{tag}.{i}@example.com"} for i in range(50)
    ]
    return out


async def measure(url: str, stored: int, repeat: int, workdir: Path, full: bool) -> dict[str, Any]:
    prefix = f"b{uuid.uuid4().hex[:6]}_"
    bare = await prepare(url, prefix, stored)
    engine = create_async_engine(url)
    pg = engine.dialect.name == "postgresql"
    dialect_insert = postgresql.insert if pg else sqlite.insert
    out: dict[str, Any] = {}
    try:
        with serve(url, prefix, workdir) as base:
            async with httpx.AsyncClient(
                base_url=base, headers={"X-API-Key": KEY}, timeout=60
            ) as client:

                async def sync(i: int) -> None:
                    r = await client.post(
                        "/contacts/sync", json={"contacts": sync_batch(stored, f"{i}")}
                    )
                    assert r.status_code == 200 and len(r.json()["results"]) == 50, r.text

                async def bare_sync(i: int) -> None:
                    batch = sync_batch(stored, f"b{i}")
                    async with engine.connect() as conn:
                        if pg:  # reads need no transaction (no BEGIN/ROLLBACK round trips)
                            await conn.execution_options(isolation_level="AUTOCOMMIT")
                        found = (
                            await conn.execute(
                                sa.select(bare).where(
                                    bare.c.external_id.in_([c["externalId"] for c in batch])
                                )
                            )
                        ).all()
                        emails = [c["email"] for c in batch[25:]]
                        found += (
                            await conn.execute(sa.select(bare).where(bare.c.email.in_(emails)))
                        ).all()
                    assert len(found) == 50

                out["sync"] = await paired_ms(sync, bare_sync, repeat)
                if not full:
                    return out

                created: list[str] = []

                async def create(i: int) -> None:
                    batch = [new_contact(f"h{i}", j) for j in range(BATCH)]
                    r = await client.post("/contacts", json={"contacts": batch})
                    assert r.status_code == 200 and len(r.json()["results"]) == BATCH, r.text
                    if not created:
                        created[:] = [x["crmId"] for x in r.json()["results"]]

                async def bare_create(i: int) -> None:
                    rows = [new_contact(f"b{i}", j) for j in range(BATCH)]
                    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
                    insert = (
                        dialect_insert(bare)
                        .on_conflict_do_nothing(index_elements=["external_id"])
                        .returning(bare.c.id)
                    )
                    async with engine.begin() as conn:
                        await conn.execute(
                            insert,
                            [
                                {
                                    "id": str(uuid.uuid4()),
                                    "external_id": c["externalId"],
                                    "email": c["email"],
                                    "first_name": c["firstName"],
                                    "last_name": c["lastName"],
                                    "title": c["title"],
                                    "linkedin_url": c["linkedinUrl"],
                                    "company": c["company"],
                                    "updated_at": now,
                                }
                                for c in rows
                            ],
                        )

                out["create"] = await paired_ms(create, bare_create, repeat)

                async def update(i: int) -> None:
                    batch = [{"crmId": c, "title": f"VP {i}", "leadScore": i} for c in created]
                    r = await client.put("/contacts", json={"contacts": batch})
                    assert r.status_code == 200 and all(x["success"] for x in r.json()["results"])

                bare_ids = [f"bulk-{1 + j}" for j in range(BATCH)]

                # The new leadScore merged into the JSON column in SQL (no read first).
                if pg:
                    merged = sa.func.coalesce(bare.c.extra, sa.text("'{}'::jsonb")).op("||")(
                        sa.bindparam("b_extra", type_=postgresql.JSONB())
                    )
                else:
                    merged = sa.func.json_patch(
                        sa.func.coalesce(bare.c.extra, "{}"),
                        sa.bindparam("b_extra", type_=sa.JSON()),
                    )
                bare_update_stmt = (
                    sa.update(bare)
                    .where(bare.c.id == sa.bindparam("b_id"))
                    .values(
                        title=sa.bindparam("b_title"),
                        extra=merged,
                        updated_at=sa.bindparam("b_now"),
                    )
                )

                async def bare_update(i: int) -> None:
                    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
                    async with engine.begin() as conn:
                        await conn.execute(
                            bare_update_stmt,
                            [
                                {
                                    "b_id": c,
                                    "b_title": f"VP {i}",
                                    "b_extra": {"leadScore": i},
                                    "b_now": now,
                                }
                                for c in bare_ids
                            ],
                        )

                out["update"] = await paired_ms(update, bare_update, repeat)
        return out
    finally:
        await engine.dispose()
        await drop(url, prefix)


async def measure_front(repeat: int, workdir: Path) -> dict[str, float]:
    """The same requests on the memory driver: what HTTP and the front cost without a
    database (the floor under the adapter's figures)."""
    out: dict[str, float] = {}
    with serve(None, "memory", workdir) as base:
        async with httpx.AsyncClient(
            base_url=base, headers={"X-API-Key": KEY}, timeout=60
        ) as client:
            for start in range(1, 1001, BATCH):  # the same 1,000 stored contacts
                batch = [
                    {"externalId": f"ext-bulk-{g}", "email": f"bulk{g}@example.com"}
                    for g in range(start, start + BATCH)
                ]
                await client.post("/contacts", json={"contacts": batch})
            created: list[str] = []

            async def create(i: int) -> None:
                r = await client.post(
                    "/contacts", json={"contacts": [new_contact(f"m{i}", j) for j in range(BATCH)]}
                )
                if not created:
                    created[:] = [x["crmId"] for x in r.json()["results"]]

            async def sync(i: int) -> None:
                r = await client.post("/contacts/sync", json={"contacts": sync_batch(1000, f"{i}")})
                assert len(r.json()["results"]) == 50, r.text

            async def update(i: int) -> None:
                batch = [{"crmId": c, "title": f"VP {i}", "leadScore": i} for c in created]
                await client.put("/contacts", json={"contacts": batch})

            async def nothing(i: int) -> None:
                return None

            for name, run in (("create", create), ("sync", sync), ("update", update)):
                out[name] = (await paired_ms(run, nothing, repeat))[0]
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        front = await measure_front(args.repeat, workdir)
        for name in args.databases.split(","):
            if name == "sqlite":
                small_url = f"sqlite+aiosqlite:///{workdir / 'small.db'}"
                large_url = f"sqlite+aiosqlite:///{workdir / 'large.db'}"
            else:
                small_url = large_url = POSTGRES_URL
            t0 = time.perf_counter()
            small = await measure(small_url, 1_000, args.repeat, workdir, full=True)
            t1 = time.perf_counter()
            large = await measure(large_url, args.rows, args.repeat, workdir, full=False)
            t2 = time.perf_counter()
            for op, label in (
                ("create", "POST /contacts (100 new)"),
                ("sync", "POST /contacts/sync (100, half match)"),
                ("update", "PUT /contacts (100 updates)"),
            ):
                ours, bare = small[op]
                lines.append(
                    f"{name:<9} {label:<38} {ours:>9.1f} {bare:>9.1f} {ours / bare:>6.2f}  ≤ 3"
                    f"   {front[op]:>7.1f} {(ours - front[op]) / bare:>8.2f}"
                )
            s1, s2 = small["sync"][0], large["sync"][0]
            lines.append(
                f"{name:<9} {'sync @1k vs @' + format(args.rows, ',') + ' stored':<38} "
                f"{s1:>9.1f} {s2:>9.1f} {s2 / s1:>6.2f}  ≤ 1.5 (ms @1k, ms @large)"
            )
            print(
                f"# {name}: 1k scenario {t1 - t0:.0f}s, {args.rows:,}-row scenario "
                f"{t2 - t1:.0f}s (incl. load)",
                file=sys.stderr,
            )
    print(
        f"{'database':<9} {'operation':<38} {'adapter':>9} {'bare':>9} {'ratio':>6}  target"
        f"   {'front':>7} {'(a-f)/b':>8}"
    )
    print(f"{'':<9} {'':<38} {'ms p50':>9} {'ms p50':>9} {'':>6}  {'':6}   {'ms p50':>7}")
    for line in lines:
        print(line)


if __name__ == "__main__":
    asyncio.run(main())
