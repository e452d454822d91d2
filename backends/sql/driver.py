"""SQL driver: contacts and companies in SQLite, PostgreSQL or MySQL/MariaDB.

Connects to: any database SQLAlchemy 2 reaches asynchronously through ``sqlite+aiosqlite``,
``postgresql+asyncpg`` or ``mysql+aiomysql`` (chosen by the URL).

Capabilities: associations, activities, tasks, browse; users only when ``users`` names a table
(either mode; the managed ``<prefix>users`` table when named there). Without one ``GET /users``
answers 501, so Enginy turns owner selection off instead of offering an empty picker.

Options: see :class:`backends.sql.options.SQLOptions` (url, password, mode managed|mapped,
table_prefix, pool and timeouts, collation) and, for mapped mode,
:mod:`backends.sql.mapped_options` (contacts, companies, associations, users, activities,
tasks: tables, id strategies, ``where`` filters, ``on_create`` / ``on_update`` values, child
tables, extension tables, lookups).

How it writes: every batch is one transaction with a constant number of statements (multi-row
inserts, ``IN`` lookups, one executemany ``UPDATE``) up to 1,000 items; larger batches are cut
into 1,000-item chunks so no database parameter limit is reached (:mod:`backends.sql.batching`;
:mod:`backends.sql.writes`, :mod:`backends.sql.mapped_writes`); managed records on PostgreSQL
and SQLite take the batch as JSON parameters of statements whose text never changes (see
:mod:`backends.sql.fastwrites`); on SQLite those batches run as one function on the
connection's own thread, transaction included (:mod:`backends.sql.sqlitebatch`).

Creates are idempotent under concurrency through a unique external id (``ON CONFLICT DO
NOTHING`` / ``ON DUPLICATE KEY UPDATE``): on the managed record row itself, or, in mapped mode,
*claimed* in ``<prefix>links`` before the customer's row is inserted; only the transaction
whose row or claim survived creates the record.

Limits and quirks:

* Values are checked against the column types and lengths before writing; when the database
  still rejects a batch, it is replayed record by record in savepoints so only the guilty
  record fails. SQLite does not enforce ``VARCHAR(n)``: the up-front check is what catches it
  there.
* Mapped mode with ``id_strategy: database`` needs ``INSERT ... RETURNING`` to stay a constant
  number of statements (SQLite ≥ 3.35, PostgreSQL, MariaDB ≥ 10.5); on MySQL it inserts row by
  row.
* Mapped mode finds rows the adapter did not write through their stored values, in one
  indexed ``IN`` of the forms a key's value can take (see :mod:`backends.sql.lookup`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from backends.base import Backend, Capability, Entity, Unavailable

from .associations import AssociationsMixin
from .check import Reflected
from .checkpoint import Checkpointer
from .crm_engagement import EngagementStore
from .engagement import EngagementMixin
from .errors import db_errors, is_retryable_conflict
from .mapped import RecordStore
from .options import SQLOptions
from .reads import RecordReadsMixin
from .schema import ManagedTables, build_tables
from .setup import SchemaSetupMixin
from .sqlitebatch import SQLiteBatches
from .sqlitepaths import SQLitePathsMixin
from .statistics import TableStatistics
from .writes import RecordWritesMixin

__all__ = ["SQLBackend"]

T = TypeVar("T")
#: Dialects where text holding a NUL character cannot be stored as sent (see ``_storable``).
_NUL_REFUSED = frozenset({"postgresql", "sqlite"})
_ALL = frozenset(
    {
        Capability.ASSOCIATIONS,
        Capability.ACTIVITIES,
        Capability.TASKS,
        Capability.USERS,
        Capability.BROWSE,
    }
)


#: Longest wait, in seconds, before a failed transaction's second attempt (the later ones wait
#: as tenacity's ``wait_random_exponential`` says).
_FIRST_WAIT = 0.02


def _replayable(exc: BaseException) -> bool:
    """A transaction that failed this way may simply run again (see ``SQLBackend._retrying``)."""
    if not isinstance(exc, Unavailable):
        return False
    cause = exc.__cause__
    stale = isinstance(cause, sa_exc.DBAPIError) and cause.connection_invalidated
    return stale or is_retryable_conflict(cause)


class SQLBackend(
    SchemaSetupMixin,
    RecordReadsMixin,
    RecordWritesMixin,
    AssociationsMixin,
    EngagementMixin,
    SQLitePathsMixin,
    Backend,
):
    """Contacts, companies, associations, activities, tasks and users in a SQL database."""

    name = "sql"
    capabilities = _ALL
    Options = SQLOptions

    def __init__(self, options: SQLOptions | None = None) -> None:
        super().__init__(options)
        self.options: SQLOptions = self.options
        self.tables: ManagedTables = build_tables(self.options.table_prefix)
        #: Every spelling of the password: scrubbed from the database's error messages.
        self._secrets: tuple[str, ...] = self.options.secrets
        self._engine: AsyncEngine | None = None
        self._stores: dict[Entity, RecordStore] = {}
        self._reflection = Reflected()
        #: Mapped mode: the CRM's activity and task tables, when configured.
        self._engagement: dict[str, EngagementStore] = {}
        #: One-statement update per entity (managed mode, PostgreSQL/SQLite), built on first use.
        self._patch_statements: dict[Entity, sa.TextClause] = {}
        #: One-statement create per entity (managed mode, PostgreSQL), built on first use.
        self._create_statements: dict[Entity, sa.TextClause] = {}
        self._sqlite_create_statements: dict[Entity, tuple[sa.TextClause, sa.TextClause]] = {}
        #: find_records' lookups by (entity, key or column name, fallback), built on first use.
        self._find_statements: dict[tuple[Entity, str, bool], Any] = {}
        #: SQLite through aiosqlite: the hot paths' batches, each one trip to the connection's
        #: thread (see sqlitebatch.py), and their compiled statements.
        self._lite: SQLiteBatches | None = None
        self._checkpointer: Checkpointer | None = None
        #: SQLite: the adapter's tables' statistics kept current, when they have any.
        self._statistics: TableStatistics | None = None
        self._lite_sql: dict[Any, Any] = {}
        if self.options.users is None:
            # Instance-level: whether users exist depends on the configuration. An empty
            # table would make Enginy offer an owner picker without owners.
            self.capabilities = _ALL - {Capability.USERS}  # type: ignore[misc]

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise Unavailable("the SQL backend is not open")
        return self._engine

    async def close(self) -> None:
        """Dispose of the pool. Never raises."""
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            await checkpointer.stop()
        statistics, self._statistics = self._statistics, None
        if statistics is not None:
            await statistics.stop()
        engine, self._engine = self._engine, None
        self._lite = None
        if engine is not None:
            # Closing a dead connection must not break shutdown.
            with contextlib.suppress(Exception):
                await engine.dispose()

    async def ping(self) -> None:
        """``SELECT 1``; raises :class:`Unavailable` or :class:`AuthFailed`."""
        with db_errors("ping", self._secrets):
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))

    def _storable(self, text: str) -> bool:
        """Whether the database can hold ``text`` at all. PostgreSQL text refuses NUL; SQLite's
        JSON functions, through which batches travel, cut a string at its NUL. An id or key
        it cannot hold names nothing: "not found", never a failed statement."""
        return "\x00" not in text or self.engine.dialect.name not in _NUL_REFUSED

    def _store(self, entity: Entity) -> RecordStore:
        if not self._stores:
            raise Unavailable("the SQL backend is not open")
        return self._stores[entity]

    # -- transactions ---------------------------------------------------------------------

    @asynccontextmanager
    async def _tx(self, what: str, *, write: bool = True) -> AsyncIterator[AsyncConnection]:
        """One transaction; database errors become backend errors (see ``errors.py``).

        Reads (``write=False``) skip the transaction where that saves round trips: PostgreSQL
        runs them in autocommit (no BEGIN/COMMIT), SQLite without an explicit BEGIN.
        """
        with db_errors(what, self._secrets):
            async with self.engine.connect() as conn:
                if write:
                    await conn.execution_options(enginy_write=True)
                    async with conn.begin():
                        yield conn
                    return
                if conn.dialect.name == "postgresql":
                    await conn.execution_options(isolation_level="AUTOCOMMIT")
                yield conn

    async def _retrying(self, run: Callable[[], Awaitable[T]]) -> T:
        """Run a whole transaction again after a deadlock, a serialization failure or a
        connection that died in the pool (a database restart): each attempt is a complete
        transaction, rolled back on failure, so a replay cannot half-apply anything. At most
        three attempts, a few jittered milliseconds apart so that two transactions that
        deadlocked do not collide again at once."""
        # The first attempt without the retry machinery (its set-up costs as much as a small
        # statement); only a failure worth replaying enters it, for the other two.
        try:
            return await run()
        except Exception as exc:
            if not _replayable(exc):
                raise
        await asyncio.sleep(random.uniform(0, _FIRST_WAIT))
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(2),
            wait=wait_random_exponential(multiplier=0.01, max=0.1),
            retry=retry_if_exception(_replayable),
            reraise=True,
        ):
            with attempt:
                return await run()
        raise AssertionError("unreachable")  # reraise=True: the last failure is raised

    def _insert_ignore(self, table: sa.Table, *keys: str) -> sa.Insert:
        """``INSERT`` that silently skips rows colliding on the unique ``keys``."""
        name = self.engine.dialect.name
        if name == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(keys))
        if name == "sqlite":
            return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(keys))
        stmt = mysql.insert(table)
        # A no-op assignment: unlike INSERT IGNORE, it does not also swallow data errors.
        return stmt.on_duplicate_key_update({keys[0]: table.c[keys[0]]})

    def _lock(self, stmt: sa.Select[Any]) -> sa.Select[Any]:
        # SQLite's BEGIN IMMEDIATE already serialises writers.
        return stmt if self.engine.dialect.name == "sqlite" else stmt.with_for_update()
