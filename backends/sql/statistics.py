"""SQLite: the statistics of the adapter's own tables kept current, when they have any.

SQLite plans from ``sqlite_stat1`` once someone has run ``ANALYZE`` (an operator, a maintenance
script, a database browser), and never refreshes it itself. Statistics taken when the tables
were small and kept while they grew make the planner take a large table for a small one: an
update of 100 contacts then scanned the whole table once per contact (measured: 3.7 s instead
of under a millisecond on 100,000 contacts), and a lookup driven by its values still scanned
when the statistics claimed one or two rows. Without statistics SQLite assumes large tables
and searches the indexes, which is what the adapter's statements are written for; with them,
they must be current.

:class:`TableStatistics` therefore does nothing on a database without statistics for the
adapter's tables, and otherwise:

* refreshes them when the driver opens (``ANALYZE`` of each such table, sampling at most
  :data:`ANALYSIS_LIMIT` rows per index: milliseconds, whatever the size);
* refreshes them again, from a background task, once the rows the driver created since the
  last refresh reach the table's recorded size (so the statistics are never more than about
  twice off), at least :data:`MIN_GROWTH` rows; a table without statistics is looked at
  again every :data:`PROBE_ROWS` created rows (one query), in case someone ran ``ANALYZE``
  meanwhile;
* makes every connection read them again: a connection reads the statistics when it loads
  the schema, and keeps planning with what it read, so the refresh also creates and drops an
  empty table in its transaction; that changes the schema's version, and each connection
  reloads schema and statistics before its next statement (its cached statements are
  prepared again).

Only the adapter's own tables are analysed; a customer's tables (mapped mode) are their
administrator's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from backends.base import BackendError

from .sqlitebatch import Batch, SQLiteBatches, json_text

__all__ = ["ANALYSIS_LIMIT", "MIN_GROWTH", "PROBE_ROWS", "TableStatistics"]

logger = logging.getLogger("enginy.backends.sql")

#: ``PRAGMA analysis_limit`` of a refresh: rows sampled per index.
ANALYSIS_LIMIT = 1000
#: The fewest created rows that make a table's statistics worth refreshing.
MIN_GROWTH = 100
#: Created rows after which a table without statistics is looked at again (someone may have
#: run ``ANALYZE`` while the driver was running).
PROBE_ROWS = 1000


class TableStatistics:
    """Keeps the statistics of ``tables`` current, if they have any (see the module)."""

    def __init__(
        self, engine: AsyncEngine, batches: SQLiteBatches, tables: Sequence[str], reload: str
    ) -> None:
        """``tables``: the adapter's tables; ``reload``: the name of the empty table a refresh
        creates and drops (one of the adapter's, never committed)."""
        self._batches = batches
        self._tables = tuple(tables)
        quote = engine.dialect.identifier_preparer.quote
        self._analyze = {name: f"ANALYZE {quote(name)}" for name in self._tables}
        self._reload = (f"CREATE TABLE {quote(reload)} (x)", f"DROP TABLE {quote(reload)}")
        #: The tables with statistics and the row count each records (none: not analysed).
        self.recorded: dict[str, int] = {}
        self._grown: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        #: Refreshes run so far (for tests and the curious).
        self.refreshes = 0

    async def refresh(self) -> dict[str, int]:
        """``ANALYZE`` those of the tables that have statistics, in one transaction that every
        connection sees as a schema change; returns :attr:`recorded`. Nothing happens (no
        statistics are created) for tables that have none."""
        self.recorded = await self._batches.run("refresh statistics", self._analyse, write=True)
        self._grown = {}
        self.refreshes += 1
        return self.recorded

    def _analyse(self, batch: Batch) -> dict[str, int]:
        exists = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
        if not batch.rows(exists):
            return {}
        wanted = {"names": json_text(list(self._tables))}
        read = (
            "SELECT tbl, max(CAST(stat AS INTEGER)) FROM sqlite_stat1 "
            "WHERE tbl IN (SELECT value FROM json_each(:names)) GROUP BY tbl"
        )
        analysed = [name for name, _ in batch.rows(read, wanted)]
        if not analysed:
            return {}
        batch.execute(f"PRAGMA analysis_limit = {ANALYSIS_LIMIT}")
        try:
            for name in analysed:
                batch.execute(self._analyze[name])
        finally:
            batch.execute("PRAGMA analysis_limit = 0")
        for statement in self._reload:
            batch.execute(statement)
        return {name: int(rows or 0) for name, rows in batch.rows(read, wanted)}

    def added(self, table: str, rows: int) -> None:
        """``rows`` were inserted into ``table``: refresh in the background once a table with
        statistics has grown by its recorded size (at least :data:`MIN_GROWTH` rows), and
        look again for statistics someone took meanwhile every :data:`PROBE_ROWS` rows."""
        if rows <= 0:
            return
        grown = self._grown[table] = self._grown.get(table, 0) + rows
        recorded = self.recorded.get(table)
        due = PROBE_ROWS if recorded is None else max(recorded, MIN_GROWTH)
        if grown >= due and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(
                self._refresh_quietly(), name="enginy-sqlite-statistics"
            )

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh()
        except (BackendError, sa.exc.SQLAlchemyError, OSError) as exc:
            # The next growth step tries again; plans meanwhile are what they were.
            logger.warning("sqlite statistics refresh failed (%s)", type(exc).__name__)

    async def settled(self) -> None:
        """Wait for a background refresh under way, if any (never raises)."""
        task = self._task
        if task is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(task)

    async def stop(self) -> None:
        """Cancel a background refresh under way (never raises)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
