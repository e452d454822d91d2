"""Engine construction: pool, timeouts and per-dialect session settings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, pool
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .checkpoint import SAFETY_NET_PAGES
from .options import SQLOptions

__all__ = ["make_engine"]


def make_engine(options: SQLOptions) -> AsyncEngine:
    """An async engine for ``options.url`` with the pool and timeout options applied."""
    url = options.engine_url
    dialect = options.dialect
    connect_args: dict[str, Any] = {}
    kwargs: dict[str, Any] = {}
    if dialect == "sqlite":
        # sqlite3's timeout is its busy timeout: how long a writer waits for the file lock.
        connect_args["timeout"] = options.connect_timeout
        if url.database in (None, "", ":memory:"):
            # Every connection to ":memory:" is a new, empty database; share one.
            kwargs["poolclass"] = pool.StaticPool
        else:
            kwargs.update(
                pool_size=options.pool_size,
                max_overflow=options.max_overflow,
                pool_timeout=options.pool_timeout,
            )
    else:
        kwargs.update(
            pool_size=options.pool_size,
            max_overflow=options.max_overflow,
            pool_timeout=options.pool_timeout,
            # No pool_pre_ping: it costs a round trip per request. A connection that died in
            # the pool (database restart) fails its first statement and the driver replays
            # the whole transaction on a fresh one (SQLBackend._retrying).
            # Under READ COMMITTED a create that waited on another transaction's claim of the
            # same external id sees that claim once it commits (MySQL defaults to REPEATABLE
            # READ, whose snapshot would hide it).
            isolation_level="READ COMMITTED",
        )
        if dialect == "postgresql":
            connect_args["timeout"] = options.connect_timeout
            settings = {"application_name": "enginy-crm-adapter"}
            if options.statement_timeout is not None:
                settings["statement_timeout"] = str(int(options.statement_timeout * 1000))
            connect_args["server_settings"] = settings
        else:
            connect_args["connect_timeout"] = max(1, int(options.connect_timeout))
    engine = create_async_engine(url, connect_args=connect_args, **kwargs)
    if dialect == "sqlite":
        background = options.checkpoint_interval is not None
        _sqlite_session(engine, in_memory="poolclass" in kwargs, background_checkpoints=background)
    elif dialect == "mysql" and options.statement_timeout is not None:
        _mysql_session(engine, options.statement_timeout)
    return engine


def _sqlite_session(engine: AsyncEngine, *, in_memory: bool, background_checkpoints: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (below): pysqlite's implicit transactions break
        # SAVEPOINT, which per-row error isolation needs.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        if not in_memory:
            # WAL: readers never block the writer; NORMAL sync is durable across app crashes.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            if background_checkpoints:
                # The driver's Checkpointer copies the log back; commits only as a safety net.
                cursor.execute(f"PRAGMA wal_autocheckpoint={SAFETY_NET_PAGES}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    dialect = engine.sync_engine.dialect
    rollback = dialect.do_rollback

    def do_rollback(dbapi_conn: Any) -> None:
        # A read runs without BEGIN (sqlite3 in autocommit mode), so the rollback that ends it
        # has nothing to undo; aiosqlite would still spend a round trip to its thread on it.
        # in_transaction is a plain attribute read, safe from the event loop's thread.
        if dbapi_conn.driver_connection.in_transaction:
            rollback(dbapi_conn)

    dialect.do_rollback = do_rollback  # type: ignore[method-assign,assignment]

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        # Writers take the lock up front: two deferred transactions that both read then write
        # would otherwise fail with "database is locked" instead of queueing.
        # Reads run without BEGIN (each statement is its own implicit transaction).
        if conn.get_execution_options().get("enginy_write", False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def _mysql_session(engine: AsyncEngine, timeout: float) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        try:
            # MariaDB's per-statement limit (seconds); MySQL has max_execution_time (ms,
            # SELECT only) instead.
            cursor.execute(f"SET SESSION max_statement_time = {float(timeout)}")
        except Exception:
            cursor.execute(f"SET SESSION max_execution_time = {int(timeout * 1000)}")
        finally:
            cursor.close()
