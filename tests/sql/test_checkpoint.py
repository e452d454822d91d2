"""SQLite write-ahead-log checkpoints run in the background (backends/sql/checkpoint.py): the
commits no longer copy the log back themselves (only past a safety net); a task of the driver
does."""

from __future__ import annotations

import anyio
import pytest
from pydantic import ValidationError

from backends.base import Entity, NewRecord
from backends.sql import SQLBackend, SQLOptions
from backends.sql.checkpoint import SAFETY_NET_PAGES

from .conftest import OpenBackend

pytestmark = pytest.mark.anyio


def records(n: int, tag: str) -> list[NewRecord]:
    return [
        NewRecord(f"{tag}-{i}", {"email": f"{tag}{i}@x.io"}, {"email": f"{tag}{i}@x.io"})
        for i in range(n)
    ]


async def autocheckpoint(backend: SQLBackend) -> int:
    async with backend.engine.connect() as conn:
        return int((await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar_one())


async def test_the_log_is_copied_back_by_the_driver_not_by_the_commits(
    open_backend: OpenBackend, sqlite_url: str
) -> None:
    async with open_backend(sqlite_url, checkpoint_interval=0.05) as backend:
        # Commits checkpoint by themselves only past the safety net (SQLite's default: 1,000).
        assert await autocheckpoint(backend) == SAFETY_NET_PAGES
        checkpointer = backend._checkpointer
        assert checkpointer is not None
        await backend.create_records(Entity.CONTACT, records(200, "a"))
        before = checkpointer.runs
        with anyio.fail_after(10):
            while checkpointer.runs <= before:
                await anyio.sleep(0.02)
        # Everything the log held is in the database file now.
        busy, in_log, copied = await checkpointer.checkpoint()
        assert busy == 0 and in_log == copied


async def test_without_an_interval_sqlite_checkpoints_as_usual(
    open_backend: OpenBackend, sqlite_url: str
) -> None:
    async with open_backend(sqlite_url, checkpoint_interval=None) as backend:
        assert backend._checkpointer is None
        assert await autocheckpoint(backend) == 1000


async def test_an_in_memory_database_has_no_checkpointer(open_backend: OpenBackend) -> None:
    async with open_backend("sqlite+aiosqlite://") as backend:
        assert backend._checkpointer is None


def test_the_interval_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="checkpoint_interval"):
        SQLOptions.model_validate({"checkpoint_interval": 0})
