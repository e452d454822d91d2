"""SQLite: write-ahead-log checkpoints in the background, off the requests' path.

In WAL mode every commit appends the pages it changed to ``<db>-wal``; a *checkpoint* copies
them back into the database file and, with ``synchronous=NORMAL``, is the only moment SQLite
calls ``fsync``. By default SQLite runs one inside whichever ``COMMIT`` pushes the log past
1,000 pages. A create of 100 contacts changes a few hundred pages (its rows, and one leaf page
of each index per random key: external ids, e-mails), so every third or fourth create paid a
checkpoint of the whole log and two ``fsync`` calls before Enginy got its answer: about half of
the wall time of a create on a file (docs/performance.md).

:class:`Checkpointer` runs them from a task of the driver instead, every
``checkpoint_interval`` seconds, as ``PRAGMA wal_checkpoint(PASSIVE)`` on a pooled connection
(on that connection's thread, like every other statement): a passive checkpoint never waits for
readers or writers and copies what it can; writers keep appending meanwhile. The connections'
own automatic checkpoint stays as a safety net, at :data:`SAFETY_NET_PAGES` (about 40 MB of
log), so the log stays bounded even if the task falls behind or stops (and SQLite itself
checkpoints when the last connection to the file closes). Durability is unchanged: a commit is
in the log before ``COMMIT`` returns, as before; only the copy into the main file moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["SAFETY_NET_PAGES", "Checkpointer"]

logger = logging.getLogger("enginy.backends.sql")

#: ``PRAGMA wal_autocheckpoint`` of the connections when checkpoints run in the background: the
#: log size (in pages, about 40 MB at SQLite's default 4 KiB page) at which a commit still
#: checkpoints by itself.
SAFETY_NET_PAGES = 10_000


class Checkpointer:
    """A task running passive WAL checkpoints every ``interval`` seconds (see the module)."""

    def __init__(self, engine: AsyncEngine, interval: float) -> None:
        self._engine = engine
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        #: Checkpoints run so far (for tests and the curious).
        self.runs = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._loop(), name="enginy-sqlite-checkpoint"
            )

    async def checkpoint(self, mode: str = "PASSIVE") -> tuple[int, int, int]:
        """One ``PRAGMA wal_checkpoint(mode)``: ``(busy, pages in the log, pages copied)``."""
        async with self._engine.connect() as conn:
            row: Any = (await conn.exec_driver_sql(f"PRAGMA wal_checkpoint({mode})")).one()
        self.runs += 1
        return int(row[0]), int(row[1]), int(row[2])

    async def _loop(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.checkpoint()
            except asyncio.CancelledError:
                raise
            except (sa.exc.SQLAlchemyError, OSError) as exc:
                # The safety net still bounds the log; say so once per failing stretch.
                if not failing:
                    logger.warning(
                        "sqlite checkpoint failed (%s); commits will checkpoint themselves",
                        type(exc).__name__,
                    )
                failing = True
            else:
                failing = False

    async def stop(self) -> None:
        """Stop the task (never raises)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
