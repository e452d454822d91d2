"""Database fixtures for the SQL driver's tests.

PostgreSQL and MariaDB tests use the servers named by ``ENGINY_TEST_POSTGRES_URL`` /
``ENGINY_TEST_MYSQL_URL`` (defaults: the local CI servers). When a server is unreachable the
test skips with the reason, unless ``ENGINY_REQUIRE_DATABASES=1`` (CI), where it fails. Every
backend a test opens gets its own table prefix and its tables are dropped afterwards, so runs
never collide.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from backends.sql import SQLBackend, SQLOptions

POSTGRES_URL = os.environ.get(
    "ENGINY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("ENGINY_TEST_MYSQL_URL", "mysql+aiomysql://root@127.0.0.1:3306/test")

OpenBackend = Callable[..., AbstractAsyncContextManager[SQLBackend]]


@cache
def _reachable(url: str) -> bool:
    parsed = make_url(url)
    default_port = 5432 if parsed.get_backend_name() == "postgresql" else 3306
    try:
        with socket.create_connection((parsed.host or "127.0.0.1", parsed.port or default_port), 2):
            return True
    except OSError:
        return False


def require_server(url: str, label: str) -> str:
    """``url`` when its server answers; otherwise skip (or fail in CI)."""
    if _reachable(url):
        return url
    where = make_url(url).render_as_string(hide_password=True)
    message = (
        f"{label} not reachable at {where}; set ENGINY_REQUIRE_DATABASES=1 to make this mandatory"
    )
    if os.environ.get("ENGINY_REQUIRE_DATABASES") == "1":
        pytest.fail(message.split(";")[0] + " (ENGINY_REQUIRE_DATABASES=1)")
    pytest.skip(message)


@pytest.fixture
def postgres_url() -> str:
    return require_server(POSTGRES_URL, "PostgreSQL")


@pytest.fixture
def mysql_url() -> str:
    return require_server(MYSQL_URL, "MariaDB/MySQL")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'enginy.db'}"


def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}_"


async def drop_adapter_tables(backend: SQLBackend) -> None:
    """Drop every table the backend's prefix owns (works on a closed backend)."""
    engine = create_async_engine(backend.options.engine_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: backend.tables.metadata.drop_all(c))
    finally:
        await engine.dispose()


@pytest.fixture
def open_backend() -> OpenBackend:
    """``async with open_backend(url, **options) as backend``: an opened backend on fresh
    tables (a unique prefix unless given), dropped on exit."""

    @asynccontextmanager
    async def opener(url: str, **options: Any) -> AsyncIterator[SQLBackend]:
        options.setdefault("table_prefix", unique_prefix())
        backend = SQLBackend(SQLOptions.model_validate({"url": url, **options}))
        await backend.open()
        try:
            yield backend
        finally:
            await backend.close()
            await drop_adapter_tables(backend)

    return opener


#: ``listener(statement, parameters, executemany)``, see :func:`on_statements`.
StatementListener = Callable[[str, Any, bool], None]


@contextmanager
def on_statements(backend: SQLBackend, listener: StatementListener) -> Iterator[None]:
    """Call ``listener`` before every statement ``backend`` sends: SQLAlchemy's cursor event,
    and the trace of the SQLite batches (which run ``sqlite3`` past SQLAlchemy's events). An
    exception the listener raises fails that statement."""

    def on_cursor(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, many: bool) -> None:
        listener(statement, params, many)

    def on_trace(statement: str, params: Any) -> None:
        listener(statement, params, False)

    lite = backend._lite
    event.listen(backend.engine.sync_engine, "before_cursor_execute", on_cursor)
    if lite is not None:
        lite.trace = on_trace
    try:
        yield
    finally:
        event.remove(backend.engine.sync_engine, "before_cursor_execute", on_cursor)
        if lite is not None:
            lite.trace = None
