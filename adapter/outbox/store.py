"""The queue's table, in SQLite or PostgreSQL, through SQLAlchemy async.

One table (``outbox.table``, default ``enginy_outbox``; its shape is in
:mod:`adapter.outbox.rows`), created when missing. A row is one queued driver call
(:mod:`adapter.outbox.items`): ``pending`` until delivered (then deleted) or ``dead`` (kept
until an operator retries or drops it). ``id`` is the arrival order.

**Claiming.** A deliverer takes the *heads* of the queue: pending, due items with no earlier
pending item of the same key, oldest first. So a record's writes go out one at a time, in
order, and a later write can never overtake an earlier one, even with several deliverers:

* **PostgreSQL** (several replicas sharing one queue): the heads are selected ``FOR UPDATE SKIP
  LOCKED`` in a transaction held while they are delivered. Another replica skips them; an
  item behind one of them is not a head while it is pending. A replica that dies mid-delivery
  drops its connection, the transaction rolls back, and the items are claimable again.
* **SQLite** (one host): one process delivers, the one holding an exclusive ``flock`` on
  ``<database>.deliver-lock`` (released by the kernel when the process dies, ``kill -9``
  included); other worker processes only enqueue. No transaction is held during delivery, so
  enqueueing never waits on a slow backend.

An item delivered but not yet deleted when the process died is delivered again: every
queued call is idempotent (updates set values, associations are upserts, activities carry
an idempotency key, task updates are idempotent by the interface's contract).

SQLite runs in WAL mode with ``synchronous=FULL``: a queued write survives a crash of the
process and of the machine once the answer has been sent.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapter.config import OutboxConfig
from adapter.outbox.items import OutboxItem, State, Write
from adapter.outbox.rows import (
    MAX_TEXT,
    Claim,
    OutboxStats,
    build_table,
    finish_claim,
    heads_query,
    item_from_row,
)
from backends.base import BackendError, Unavailable
from backends.sql.engine import make_engine
from backends.sql.errors import db_errors

__all__ = ["OutboxStore", "OutboxUnavailable"]


class OutboxUnavailable(Unavailable):
    """The queue's own database cannot be used (the message says why)."""

    code = "outbox_unavailable"


def _sqlite_durable(engine: AsyncEngine) -> None:
    # Runs after the SQL driver's own connect hook (WAL, synchronous=NORMAL): an acknowledged
    # queued write must survive a power loss too, not only a crash of the process.
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()


class OutboxStore:
    """The queue's table: enqueue, claim heads, finish, list, retry, drop.

    ``clock`` gives seconds since the epoch (the rows' timestamps).
    """

    def __init__(self, config: OutboxConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.table = build_table(config.table)
        self.dialect = config.dialect
        self._secrets = config.secrets
        self._engine: AsyncEngine | None = None
        self._lock_fd: int | None = None

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def where(self) -> str:
        """The queue's location, password masked."""
        return f"{self.config.safe_url} (table {self.config.table})"

    def sqlite_path(self) -> Path | None:
        """The SQLite file (``None`` on PostgreSQL)."""
        if self.dialect != "sqlite":
            return None
        return Path(sa.make_url(self.config.url).database or "")

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise OutboxUnavailable("the outbox is not open")
        return self._engine

    async def open(self, *, create: bool = True) -> None:
        """Connect and create the table when missing. With ``create=False`` nothing is
        created: a missing SQLite file or table raises :class:`OutboxUnavailable`.

        Raises :class:`OutboxUnavailable` when the database cannot be used."""
        path = self.sqlite_path()
        if not create and path is not None and not path.is_file():
            raise OutboxUnavailable(f"no outbox database at {path}")
        if path is not None and not path.resolve().parent.is_dir():
            raise OutboxUnavailable(f"no directory {path.resolve().parent} for the outbox database")
        engine = make_engine(self.config.sql_options())
        if self.dialect == "sqlite":
            _sqlite_durable(engine)
        self._engine = engine
        try:
            with self._errors("open"):
                async with self._write() as conn:
                    if self.dialect == "postgresql":
                        # Replicas starting together must not race to create the table.
                        key = zlib.crc32(f"enginy-outbox:{self.config.table}".encode())
                        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
                    exists = await conn.run_sync(
                        lambda c: sa.inspect(c).has_table(self.config.table)
                    )
                    if not exists and not create:
                        raise OutboxUnavailable(f"no outbox table in {self.where}")
                    if not exists:
                        await conn.run_sync(lambda c: self.table.metadata.create_all(c))
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Release the delivery lock and the connections. Never raises."""
        self.release_delivery()
        engine, self._engine = self._engine, None
        if engine is not None:
            with contextlib.suppress(Exception):
                await engine.dispose()

    def try_acquire_delivery(self) -> bool:
        """Whether this process may deliver. PostgreSQL: always (rows are locked one by one).
        SQLite: only the holder of the file lock; ``True`` once taken, until :meth:`close`."""
        path = self.sqlite_path()
        if path is None or self._lock_fd is not None:
            return True
        import fcntl  # POSIX; the adapter runs on Linux (the Docker image) and macOS

        fd = os.open(f"{path}.deliver-lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    @property
    def holds_delivery(self) -> bool:
        """Whether this process delivers (always on PostgreSQL)."""
        return self.dialect != "sqlite" or self._lock_fd is not None

    def release_delivery(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the flock

    # -- writes on the request path -------------------------------------------------------------

    async def enqueue(self, writes: Sequence[Write], reason: str) -> list[str]:
        """Queue ``writes`` in one transaction (all or none); returns each one's ``uid``, in
        order. A write whose ``dedupe`` matches a pending item of its kind is not queued
        again: that item's ``uid`` is returned. ``reason`` is kept as the last error.
        Raises :class:`OutboxUnavailable`."""
        if not writes:
            return []
        t = self.table
        now = self.clock()
        with self._errors("enqueue"):
            async with self._write() as conn:
                known: dict[tuple[str, str], str] = {}
                dedupes = list({w.dedupe for w in writes if w.dedupe is not None})
                if dedupes:
                    query = sa.select(t.c.kind, t.c.dedupe, t.c.uid).where(
                        t.c.dedupe.in_(dedupes), t.c.state == State.PENDING
                    )
                    for kind, dedupe, uid in (await conn.execute(query)).all():
                        known[(kind, dedupe)] = uid
                uids: list[str] = []
                rows: list[dict[str, Any]] = []
                for write in writes:
                    mark = (write.kind.value, write.dedupe) if write.dedupe is not None else None
                    if mark is not None and mark in known:
                        uids.append(known[mark])
                        continue
                    uid = uuid.uuid4().hex
                    if mark is not None:
                        known[mark] = uid
                    uids.append(uid)
                    rows.append(
                        {
                            "uid": uid,
                            "kind": write.kind.value,
                            "key": write.key,
                            "payload": json.dumps(write.payload, separators=(",", ":")),
                            "state": State.PENDING.value,
                            "attempts": 0,
                            "created_at": now,
                            "since": now,
                            "next_attempt_at": now,
                            "last_error": reason[:MAX_TEXT],
                            "dedupe": write.dedupe,
                        }
                    )
                if rows:
                    await conn.execute(sa.insert(t), rows)
        return uids

    async def pending_keys(self, keys: Collection[str]) -> set[str]:
        """Those of ``keys`` that have a pending item (a new write for them must queue behind
        it). Raises :class:`OutboxUnavailable`."""
        wanted = list(set(keys))
        if not wanted:
            return set()
        t = self.table
        query = sa.select(t.c.key).where(t.c.state == State.PENDING, t.c.key.in_(wanted)).distinct()
        with self._errors("look up queued writes"):
            async with self.engine.connect() as conn:
                return set((await conn.execute(query)).scalars())

    # -- delivery -------------------------------------------------------------------------------

    @asynccontextmanager
    async def claim(self, limit: int, due_before: float | None = None) -> AsyncIterator[Claim]:
        """Take up to ``limit`` heads due by ``due_before`` (default now) and yield them as a
        :class:`Claim`; the outcomes recorded on it are written when the block ends normally.
        If the block raises (or is cancelled), nothing is written: the items stay pending.
        Raises :class:`OutboxUnavailable`."""
        query = heads_query(self.table, limit, self.clock() if due_before is None else due_before)
        if self.dialect == "postgresql":
            async with self._pg_claim(query.with_for_update(skip_locked=True)) as claim:
                yield claim
            return
        with self._errors("claim"):
            async with self.engine.connect() as conn:
                rows = (await conn.execute(query)).mappings().all()
        claim = Claim([item_from_row(row) for row in rows])
        yield claim
        if claim.delivered or claim.retries or claim.dead:
            with self._errors("record deliveries"):
                async with self._write() as conn:
                    await finish_claim(conn, self.table, claim)

    @asynccontextmanager
    async def _pg_claim(self, query: sa.Select[Any]) -> AsyncIterator[Claim]:
        # The row locks are held while the claim's items are delivered.
        with self._errors("claim"):
            conn = await self.engine.connect()
        try:
            with self._errors("claim"):
                transaction = await conn.begin()
                rows = (await conn.execute(query)).mappings().all()
            claim = Claim([item_from_row(row) for row in rows])
            try:
                yield claim
            except BaseException:
                with contextlib.suppress(Exception):
                    await transaction.rollback()
                raise
            with self._errors("record deliveries"):
                await finish_claim(conn, self.table, claim)
                await transaction.commit()
        finally:
            with contextlib.suppress(Exception):
                await conn.close()

    async def release_backoff(self, keep_codes: Collection[str] = ()) -> int:
        """Make every pending item that is waiting out a failure due now, except those whose
        last error code is in ``keep_codes`` (a rate limit keeps its wait). Returns how many."""
        t = self.table
        now = self.clock()
        statement = sa.update(t).where(t.c.state == State.PENDING, t.c.next_attempt_at > now)
        if keep_codes:
            statement = statement.where(
                sa.or_(t.c.error_code.is_(None), t.c.error_code.not_in(list(keep_codes)))
            )
        with self._errors("release backoff"):
            async with self._write() as conn:
                result = await conn.execute(statement.values(next_attempt_at=now))
        return int(result.rowcount or 0)

    # -- inspection and operator actions --------------------------------------------------------

    async def stats(self) -> OutboxStats:
        """Counts per state, the oldest pending item's time, the next due time."""
        t = self.table
        query = sa.select(
            t.c.state,
            sa.func.count(),
            sa.func.min(t.c.created_at),
            sa.func.min(t.c.next_attempt_at),
        ).group_by(t.c.state)
        with self._errors("read statistics"):
            async with self.engine.connect() as conn:
                rows = (await conn.execute(query)).all()
        pending = dead = 0
        oldest = due = None
        for state, count, created, next_at in rows:
            if state == State.PENDING:
                pending, oldest, due = int(count), created, next_at
            elif state == State.DEAD:
                dead = int(count)
        return OutboxStats(pending, dead, oldest, due)

    async def list_items(
        self, state: State | None = None, *, limit: int = 50, ids: Sequence[int] = ()
    ) -> list[OutboxItem]:
        """Items in arrival order, optionally of one ``state`` or with these ``ids``."""
        t = self.table
        query = sa.select(t).order_by(t.c.id).limit(limit)
        if state is not None:
            query = query.where(t.c.state == state.value)
        if ids:
            query = query.where(t.c.id.in_(list(ids)))
        with self._errors("list"):
            async with self.engine.connect() as conn:
                rows = (await conn.execute(query)).mappings().all()
        return [item_from_row(row) for row in rows]

    async def retry(self, ids: Sequence[int] = (), *, all_dead: bool = False) -> int:
        """Put dead letters back in the queue, due now, with a fresh age (``max_age_seconds``
        counts again from now): those with ``ids``, or every one with ``all_dead``. Returns
        how many. Items already pending are left alone."""
        t = self.table
        now = self.clock()
        statement = sa.update(t).where(t.c.state == State.DEAD.value)
        if not all_dead:
            if not ids:
                return 0
            statement = statement.where(t.c.id.in_(list(ids)))
        statement = statement.values(state=State.PENDING.value, next_attempt_at=now, since=now)
        with self._errors("retry"):
            async with self._write() as conn:
                result = await conn.execute(statement)
        return int(result.rowcount or 0)

    async def drop(self, ids: Sequence[int], *, pending_too: bool = False) -> list[OutboxItem]:
        """Delete the items with ``ids`` (dead letters only, unless ``pending_too``) and
        return what was deleted."""
        t = self.table
        where: list[sa.ColumnElement[bool]] = [t.c.id.in_(list(ids))]
        if not pending_too:
            where.append(t.c.state == State.DEAD.value)
        with self._errors("drop"):
            async with self._write() as conn:
                rows = (await conn.execute(sa.select(t).where(*where))).mappings().all()
                if rows:
                    await conn.execute(sa.delete(t).where(t.c.id.in_([r["id"] for r in rows])))
        return [item_from_row(row) for row in rows]

    # -- plumbing -------------------------------------------------------------------------------

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            # SQLite: BEGIN IMMEDIATE (the SQL driver's engine hook), so that two writers queue
            # for the lock instead of failing.
            await conn.execution_options(enginy_write=True)
            async with conn.begin():
                yield conn

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            with db_errors(f"outbox: {what}", self._secrets):
                yield
        except OutboxUnavailable:
            raise
        except BackendError as exc:
            raise OutboxUnavailable(exc.message) from exc
