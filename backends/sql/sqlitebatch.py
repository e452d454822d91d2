"""SQLite: a whole batch in one trip to the connection's thread.

aiosqlite gives every connection a thread of its own and sends each call there: a statement
costs a ``cursor()``, an ``execute``, a ``fetchall`` and a ``close``, each a hand-over between
the event loop and that thread, and SQLAlchemy's execution machinery around each. For a create
of 100 contacts (``BEGIN IMMEDIATE``, two inserts, a ``COMMIT``) that was a dozen hand-overs
and most of the driver's time. :class:`SQLiteBatches` instead checks a connection out of the
same SQLAlchemy pool (so ``pool_size`` and ``pool_timeout`` apply as everywhere else) and runs a
plain function with the connection's ``sqlite3`` handle *on its own thread*: the whole batch,
transaction included, is one hand-over.

SQLAlchemy stays the source of the statements: they are SQLAlchemy constructs or ``text()``,
compiled once per statement (:func:`compile_sqlite`, named parameters) and run with the
standard ``sqlite3`` module. What the dialect would do to values is done by the callers: JSON
travels as text, timestamps in SQLAlchemy's SQLite format (:func:`sqlite_timestamp`).

Behaviour kept from the statement-by-statement path:

* writers take the lock up front (``BEGIN IMMEDIATE``) and wait up to the busy timeout
  (``connect_timeout``) for another process; within one process, writers queue on an
  ``asyncio.Lock`` first, so they never sleep in SQLite's busy handler against each other
  (its back-off sleeps up to 100 ms at a time);
* any exception inside the batch rolls the transaction back before it leaves the thread, and
  ``sqlite3`` errors become SQLAlchemy's exception classes, so :func:`~.errors.db_errors`
  classifies them as before (a constraint violation is the record's error, anything else is
  ``Unavailable``).

Only the managed hot paths use it (creates, syncs, updates, activities); everything else keeps
SQLAlchemy's async execution, and with it SQLAlchemy's cursor events: the batches run past
them. :attr:`SQLiteBatches.trace`, when set, is called with each statement's SQL and parameters
before it runs, on the connection's thread (tests count statements with it, and an exception it
raises fails the batch as a failing statement would).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from sqlite3 import Cursor
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ClauseElement
from sqlalchemy.util import greenlet_spawn

from .errors import db_errors

__all__ = [
    "Batch",
    "Positional",
    "SQLiteBatches",
    "Statement",
    "compile_positional",
    "compile_sqlite",
    "json_text",
    "sqlite_timestamp",
    "usable",
]

T = TypeVar("T")
_NONE: Mapping[str, Any] = {}
#: ``trace(sql, parameters)``: see :attr:`SQLiteBatches.trace`.
Trace = Callable[[str, Mapping[str, Any]], None]

#: The SQLite dialect rendering ``:name`` parameters, which ``sqlite3`` binds from a dict.
_NAMED = sqlite.dialect(paramstyle="named")
#: The same rendering ``?`` parameters, bound from tuples: no lookup by name per value.
_QMARK = sqlite.dialect(paramstyle="qmark")


class Statement(NamedTuple):
    """A statement compiled for ``sqlite3``: its text (``:name`` parameters) and the values of
    the parameters the construct itself holds (``entity = 'contact'``)."""

    sql: str
    fixed: dict[str, Any]


def compile_sqlite(statement: ClauseElement) -> Statement:
    """``statement`` compiled once for :class:`Batch` (see :class:`Statement`)."""
    compiled = statement.compile(dialect=_NAMED)
    fixed = {k: v for k, v in compiled.params.items() if v is not None}
    return Statement(str(compiled), fixed)


class Positional(NamedTuple):
    """A statement compiled for ``sqlite3`` with ``?`` parameters, for :meth:`Batch.many` on
    many rows: its text and the names of its parameters, in the order a row's tuple gives
    them."""

    sql: str
    names: tuple[str, ...]


def compile_positional(statement: ClauseElement) -> Positional:
    """``statement`` compiled once with positional parameters (see :class:`Positional`); it
    must have no fixed values of its own."""
    compiled: Any = statement.compile(dialect=_QMARK)  # a SQLCompiler: positiontup
    names = tuple(compiled.positiontup or ())
    if any(compiled.params.get(name) is not None for name in names):
        raise ValueError("a positional statement takes every value from its rows")
    return Positional(str(compiled), names)


def _json_text_encoder() -> Callable[[Any], str]:
    # json.dumps builds a new C encoder for every call, which costs more than encoding a
    # record's small ``extra`` object; this one is built once, with json.dumps's own settings
    # (so the text is the same as SQLAlchemy's JSON type writes), without the circular-
    # reference check that a value parsed from JSON never needs.
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython without its C accelerator
        return json.dumps
    encoder = json.JSONEncoder()
    one = make(
        None,
        encoder.default,
        json.encoder.encode_basestring_ascii,
        None,
        ": ",
        ", ",
        False,
        False,
        True,
    )

    def encode(value: Any) -> str:
        if value is None:
            return "null"
        return "".join(one(value, 0))

    return encode


#: ``json.dumps(value)``, faster on small values (see :func:`_json_text_encoder`).
json_text = _json_text_encoder()


def sqlite_timestamp(moment: dt.datetime) -> str:
    """A naive UTC timestamp as SQLAlchemy's SQLite ``DateTime`` stores it (so both paths
    write, compare and read back the same text)."""
    return moment.isoformat(" ", "microseconds")


def usable(engine: AsyncEngine) -> bool:
    """Whether ``engine`` is SQLite through aiosqlite with the hook this module needs (a
    connection's ``_execute``: run a function on its thread)."""
    if engine.dialect.name != "sqlite" or engine.dialect.driver != "aiosqlite":
        return False
    try:
        import aiosqlite
    except ImportError:  # pragma: no cover - the dialect imports it
        return False
    return callable(getattr(aiosqlite.Connection, "_execute", None))


class Batch:
    """What a batch function gets: statements run on the connection, on its thread."""

    __slots__ = ("_db", "_trace")

    def __init__(self, db: sqlite3.Connection, trace: Trace | None) -> None:
        self._db = db
        self._trace = trace

    def execute(self, statement: Statement | str, params: Mapping[str, Any] = _NONE) -> Cursor:
        """Run one statement (``params`` completes its fixed ones)."""
        if isinstance(statement, Statement):
            sql = statement.sql
            if statement.fixed:
                params = {**statement.fixed, **params}
        else:
            sql = statement
        if self._trace is not None:
            self._trace(sql, params)
        return self._db.execute(sql, params)

    def rows(self, statement: Statement | str, params: Mapping[str, Any] = _NONE) -> list[Any]:
        """Run one statement and fetch all its rows (plain tuples, values as SQLite has them)."""
        return self.execute(statement, params).fetchall()

    def many(
        self,
        statement: Statement | Positional,
        params: Sequence[Mapping[str, Any]] | Sequence[tuple[Any, ...]],
    ) -> int:
        """Run one statement once per parameter set (``executemany``: the loop runs in C, no
        rows come back); return how many rows it inserted, updated or deleted. A
        :class:`Positional` statement takes tuples, a :class:`Statement` mappings."""
        if isinstance(statement, Statement) and statement.fixed:
            params = [{**statement.fixed, **p} for p in params]  # type: ignore[dict-item]
        if self._trace is not None:
            self._trace(statement.sql, {"executemany": len(params)})
        before = self._db.total_changes
        self._db.executemany(statement.sql, params)
        return self._db.total_changes - before


def _in_thread(
    db: sqlite3.Connection,
    work: Callable[[Batch], T],
    atomic: bool,
    trace: Trace | None,
) -> T:
    batch = Batch(db, trace)
    if atomic:
        batch.execute("BEGIN IMMEDIATE")
    try:
        result = work(batch)
        if atomic:
            batch.execute("COMMIT")
        return result
    except BaseException:
        if db.in_transaction:
            db.rollback()
        raise


class SQLiteBatches:
    """Runs batch functions on pooled SQLite connections' own threads (see the module)."""

    def __init__(self, engine: AsyncEngine, secrets: Sequence[str]) -> None:
        self._engine = engine
        self._secrets = tuple(secrets)
        self._writers: asyncio.Lock | None = None
        #: Called with each statement's SQL and parameters before it runs (on the connection's
        #: thread).
        self.trace: Trace | None = None

    async def run(
        self, what: str, work: Callable[[Batch], T], *, write: bool, atomic: bool | None = None
    ) -> T:
        """``work(batch)`` on a pooled connection's thread; errors as :func:`db_errors` maps
        them (``what`` starts their message).

        ``write``: the batch writes, so it queues behind this process's other writers.
        ``atomic`` (default: ``write``): inside ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back
        if it raises; a writer of one statement, atomic by itself, may leave it out.
        """
        atomic = write if atomic is None else atomic
        with db_errors(what, self._secrets):
            if not write:
                return await self._run(work, atomic)
            if self._writers is None:
                self._writers = asyncio.Lock()
            async with self._writers:
                return await self._run(work, atomic)

    async def _run(self, work: Callable[[Batch], T], atomic: bool) -> T:
        # The pool's raw connection: a quarter of the cost of an AsyncConnection around it.
        raw = await self._engine.raw_connection()
        try:
            handle: Any = raw.driver_connection  # the aiosqlite.Connection
            result: T = await handle._execute(_in_thread, handle._conn, work, atomic, self.trace)
        except sqlite3.Error as exc:
            raise sa_exc.DBAPIError.instance(
                None, None, exc, sqlite3.Error, dialect=self._engine.dialect
            ) from exc
        finally:
            # Back to the pool; its reset may talk to the connection (greenlet context).
            await greenlet_spawn(raw.close)
        return result
