"""SQL driver behaviour beyond the shared suite: constant statement counts, concurrency,
failure mapping (nothing half-written), restart persistence."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from backends.base import (
    EXTERNAL_ID,
    Entity,
    MatchKey,
    NewRecord,
    RecordUpdate,
    Unavailable,
)
from backends.sql import SQLBackend, SQLOptions

from .conftest import OpenBackend, drop_adapter_tables, on_statements, unique_prefix

pytestmark = pytest.mark.anyio
C = Entity.CONTACT
EMAIL = MatchKey("email", field="email")

DATABASES = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", marks=pytest.mark.mysql),
]


@pytest.fixture(params=DATABASES)
def url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


def contacts(n: int, tag: str = "", start: int = 0) -> list[NewRecord]:
    return [
        NewRecord(
            f"lead{tag}-{i}",
            {"email": f"p{tag}{i}@example.com", "firstName": f"P{i}", "score": i},
            {"email": f"p{tag}{i}@example.com"},
        )
        for i in range(start, start + n)
    ]


@contextmanager
def statements(backend: SQLBackend) -> Iterator[list[str]]:
    """Collect every statement sent to the database (executemany counts once), but for the
    SQLite checkpoints the driver runs in the background every half second: not part of any
    batch, they land in the window whenever a batch is slow enough."""
    seen: list[str] = []

    def count(statement: str, *_args: Any) -> None:
        if statement.upper().startswith("PRAGMA WAL_CHECKPOINT"):
            return
        seen.append(statement.split(None, 1)[0].upper())

    with on_statements(backend, count):
        yield seen


async def test_batches_use_a_constant_number_of_statements(
    open_backend: OpenBackend, url: str
) -> None:
    async with open_backend(url) as backend:
        counts: dict[int, list[int]] = {}
        for size in (10, 100):
            tag = f"s{size}"
            records = contacts(size, tag)
            with statements(backend) as create:
                results = await backend.create_records(C, records)
            assert all(r.created for r in results)
            values = [r.match_keys["email"] for r in records]
            # a sync: half by external id, half by email (half of those unknown)
            with statements(backend) as sync:
                await backend.find_records(
                    C, MatchKey(EXTERNAL_ID), [r.external_id for r in records[: size // 2]]
                )
                hits = await backend.find_records(
                    C, EMAIL, values[size // 2 :] + [f"x{i}@nowhere" for i in range(size // 2)]
                )
            assert len(hits) == size // 2
            updates = [
                RecordUpdate(
                    r.crm_id or "",
                    {"firstName": f"Q{i}", "extra": i},
                    match_keys={"email": f"q{tag}{i}@example.com"},
                )
                for i, r in enumerate(results)
            ]
            with statements(backend) as update:
                outcome = await backend.update_records(C, updates)
            assert all(r.ok for r in outcome)
            counts[size] = [len(create), len(sync), len(update)]
        assert counts[10] == counts[100], counts
        create_n, sync_n, update_n = counts[100]
        # insert rows (ON CONFLICT DO NOTHING RETURNING), insert keys (+ MySQL's read-back of
        # the ids, SQLite's explicit BEGIN); PostgreSQL: both inserts in one statement
        assert create_n <= 4, create_n
        assert sync_n <= 7, sync_n
        # one UPDATE ... RETURNING (MySQL: lock-read rows, one CASE update), delete + insert
        # changed keys (+ BEGIN)
        assert update_n <= 5, update_n


async def test_two_engines_racing_on_the_same_external_ids_make_no_duplicates(url: str) -> None:
    prefix = unique_prefix()
    options = SQLOptions(url=url, table_prefix=prefix, pool_size=4)
    first, second = SQLBackend(options), SQLBackend(options)
    await first.open()
    await second.open()
    try:
        for round_ in range(3):
            records = contacts(100, f"r{round_}")
            outcomes: dict[str, list[Any]] = {}

            async def run(
                name: str, backend: SQLBackend, batch: list[NewRecord], sink: dict[str, Any]
            ) -> None:
                sink[name] = await backend.create_records(C, batch)

            async with anyio.create_task_group() as tg:
                tg.start_soon(run, "a", first, records, outcomes)
                tg.start_soon(run, "b", second, records[::-1], outcomes)
            a, b = outcomes["a"], outcomes["b"][::-1]
            assert all(r.ok for r in a + b)
            assert [r.crm_id for r in a] == [r.crm_id for r in b]
            assert sum(r.created for r in a + b) == 100  # each record created exactly once
        async with first.engine.connect() as conn:
            table = first.tables.contacts
            total = (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar()
            keys = first.tables.match_keys
            key_rows = (await conn.execute(sa.select(sa.func.count()).select_from(keys))).scalar()
        assert (total, key_rows) == (300, 300)
    finally:
        await first.close()
        await second.close()
        await drop_adapter_tables(first)


async def test_a_connection_lost_mid_batch_is_unavailable_and_writes_nothing(
    open_backend: OpenBackend, url: str
) -> None:
    async with open_backend(url) as backend:

        def drop(statement: str, *_args: Any) -> None:
            # (PostgreSQL sends the rows inside one WITH ... INSERT statement.)
            if f"INSERT INTO {backend.tables.prefix}CONTACTS".upper() in statement.upper():
                raise ConnectionResetError("connection reset by peer")

        with on_statements(backend, drop), pytest.raises(Unavailable) as caught:
            await backend.create_records(C, contacts(20))
        assert caught.value.retryable
        # the claims taken before the failure were rolled back with it
        assert await backend.find_records(C, MatchKey(EXTERNAL_ID), ["lead-0", "lead-19"]) == {}
        assert (await backend.counts())["contacts"] == 0
        # and Enginy's retry of the same batch succeeds
        assert all(r.created for r in await backend.create_records(C, contacts(20)))


async def test_pool_exhaustion_is_unavailable(open_backend: OpenBackend, url: str) -> None:
    async with open_backend(url, pool_size=1, max_overflow=0, pool_timeout=0.2) as backend:
        async with backend.engine.connect() as held:
            await held.execute(sa.text("SELECT 1"))
            with pytest.raises(Unavailable) as caught:
                await backend.create_records(C, contacts(1))
        assert "no database connection free" in caught.value.message


async def test_unreachable_server_is_unavailable_without_the_password() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = SQLBackend(
        SQLOptions(
            url=f"postgresql+asyncpg://enginy:s3cret-pw@127.0.0.1:{port}/crm", connect_timeout=2
        )
    )
    with pytest.raises(Unavailable) as caught:
        await backend.open()
    assert "s3cret-pw" not in str(caught.value)
    assert "***" in str(caught.value)
    assert "s3cret-pw" not in repr(backend.options)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_process(config: Path, port: int) -> Iterator[httpx.Client]:
    exe = Path(sys.executable).with_name("enginy-adapter")
    log = config.with_suffix(f".{port}.log")
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [
                str(exe),
                "serve",
                "--config",
                str(config),
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=sink,
            env={**os.environ},
        )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": "restart-key"})
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"serve did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield client
    finally:
        client.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.skipif(
    not Path(sys.executable).with_name("enginy-adapter").exists(),
    reason="the enginy-adapter script is not installed (pip install -e .)",
)
def test_records_survive_a_restart_of_serve(tmp_path: Path) -> None:
    """One ``serve`` process writes to an SQLite file; the next one finds the records."""
    database = tmp_path / "crm.db"
    config = tmp_path / "adapter.yaml"
    config.write_text(
        "auth:\n  keys: [restart-key]\n"
        "backend:\n  driver: sql\n"
        f"  options:\n    url: sqlite+aiosqlite:///{database}\n"
    )
    port = _free_port()
    with serve_process(config, port) as client:
        created = client.post(
            "/contacts",
            json={
                "contacts": [
                    {"externalId": "lead-1", "email": "Ada@Example.com", "firstName": "Ada"},
                    {"externalId": "lead-2", "email": "bob@example.com"},
                ]
            },
        )
        assert created.status_code == 200, created.text
        ids = {r["externalId"]: r["crmId"] for r in created.json()["results"]}
    assert database.exists()
    with serve_process(config, _free_port()) as client:
        synced = client.post(
            "/contacts/sync",
            json={
                "contacts": [
                    {"externalId": "lead-1"},
                    {"externalId": "lead-9", "email": "bob@example.com"},
                ]
            },
        )
        assert synced.status_code == 200, synced.text
        found = {r["externalId"]: r["crmId"] for r in synced.json()["results"]}
        assert found == {"lead-1": ids["lead-1"], "lead-9": ids["lead-2"]}
        again = client.post("/contacts", json={"contacts": [{"externalId": "lead-1"}]})
        assert again.json()["results"] == [{"externalId": "lead-1", "crmId": ids["lead-1"]}]


@pytest.mark.postgres
async def test_connections_killed_by_a_database_restart_are_replaced_transparently(
    open_backend: OpenBackend, postgres_url: str
) -> None:
    async with open_backend(postgres_url, pool_size=2) as backend:
        await backend.create_records(C, contacts(5, "a"))  # the pool now holds a connection
        async with backend.engine.connect() as conn:
            pid = (await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar()
        # What a server restart does to the pooled connections.
        killer = create_async_engine(postgres_url)
        async with killer.connect() as conn:
            killed = (
                await conn.execute(
                    sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = 'enginy-crm-adapter' AND pid = :pid"
                    ),
                    {"pid": pid},
                )
            ).scalar()
        await killer.dispose()
        assert killed == 1
        results = await backend.create_records(C, contacts(5, "b"))
        assert all(r.created for r in results)
        assert (await backend.counts())["contacts"] == 10


async def test_managed_values_keep_their_json_type_across_updates(
    open_backend: OpenBackend, url: str
) -> None:
    """A typed column holds a value only when it has the column's type; anything else goes to
    the JSON column, so every value reads back exactly as Enginy sent it."""
    K = Entity.COMPANY
    async with open_backend(url) as backend:
        [made] = await backend.create_records(
            K,
            [
                NewRecord(
                    "co-1", {"name": "Acme", "numberOfEmployees": "51-200", "tags": ["a", "b"]}
                )
            ],
        )
        assert made.crm_id
        steps: list[tuple[dict[str, Any], frozenset[str], dict[str, Any]]] = [
            (
                {"numberOfEmployees": 150},
                frozenset(),
                {"name": "Acme", "numberOfEmployees": 150, "tags": ["a", "b"]},
            ),
            (
                {"name": 7, "numberOfEmployees": "1k"},
                frozenset({"tags"}),
                {"name": 7, "numberOfEmployees": "1k"},
            ),
            ({"name": "Acme 2"}, frozenset({"numberOfEmployees"}), {"name": "Acme 2"}),
        ]
        for fields, clear, expected in steps:
            [result] = await backend.update_records(
                K, [RecordUpdate(made.crm_id, fields, clear=clear)]
            )
            assert result.ok, result.error
            stored = (await backend.get_records(K, [made.crm_id]))[made.crm_id]
            assert dict(stored.fields) == expected


@pytest.mark.postgres
async def test_the_password_never_reaches_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, postgres_url: str
) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url).set(password="s3cret-pw")  # trust auth ignores it
    backend = SQLBackend(
        SQLOptions(url=url.render_as_string(hide_password=False), table_prefix=unique_prefix())
    )
    with caplog.at_level("DEBUG"):
        await backend.open()
        await backend.close()
    await drop_adapter_tables(backend)
    assert "sql backend ready" in caplog.text
    assert "***" in caplog.text
    assert "s3cret-pw" not in caplog.text


@pytest.mark.parametrize(
    "server",
    [
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ],
)
async def test_statement_timeout_is_unavailable_and_rolls_back(
    open_backend: OpenBackend, request: pytest.FixtureRequest, server: str
) -> None:
    """A statement stuck behind another transaction's row lock is cut at statement_timeout."""
    url = str(request.getfixturevalue(f"{server}_url"))
    async with open_backend(url, statement_timeout=0.5) as backend:
        [made] = await backend.create_records(C, contacts(1))
        assert made.crm_id
        table = backend.tables.contacts
        blocker = create_async_engine(url)
        try:
            async with blocker.connect() as conn, conn.begin():
                await conn.execute(
                    sa.select(table.c.id).where(table.c.id == made.crm_id).with_for_update()
                )
                started = time.monotonic()
                with pytest.raises(Unavailable):
                    await backend.update_records(
                        C, [RecordUpdate(made.crm_id, {"firstName": "Late"})]
                    )
                assert time.monotonic() - started < 10
        finally:
            await blocker.dispose()
        stored = await backend.get_records(C, [made.crm_id])
        assert stored[made.crm_id].fields["firstName"] == "P0"
