"""SQL driver: contacts and companies in SQLite, PostgreSQL or MySQL/MariaDB.

Connects to: any database SQLAlchemy 2 reaches asynchronously through ``sqlite+aiosqlite``,
``postgresql+asyncpg`` or ``mysql+aiomysql`` (chosen by the URL).

Capabilities: associations, activities, tasks, browse; users only when ``users`` names a table
(either mode; the managed ``<prefix>users`` table when named there). Without one ``GET /users``
answers 501, so Enginy turns owner selection off instead of offering an empty picker.

Options: see :class:`backends.sql.options.SQLOptions` (url, password, mode managed|mapped,
table_prefix, pool_size, max_overflow, pool_timeout, connect_timeout, statement_timeout,
contacts, companies, associations, users).

How it writes: every batch is one transaction with a constant number of statements (multi-row
inserts, ``IN`` lookups, one executemany ``UPDATE``) up to 1,000 items; larger batches are cut
into 1,000-item chunks so no database parameter limit is reached (:mod:`backends.sql.batching`;
:mod:`backends.sql.writes`); managed records on PostgreSQL and SQLite take the batch as JSON
parameters of statements whose text never changes: a create is one ``WITH ... INSERT``
(SQLite: two ``INSERT ... SELECT``), an update one ``UPDATE ... FROM ... RETURNING`` merging
the JSON column in SQL (see :mod:`backends.sql.fastwrites`). On SQLite those batches run as one
function on the connection's own thread, transaction included (:mod:`backends.sql.sqlitebatch`).

Creates are idempotent under concurrency through a unique external id (``ON CONFLICT DO
NOTHING`` / ``ON DUPLICATE KEY UPDATE``): on the managed record row itself, or, in mapped mode,
*claimed* in ``<prefix>links`` before the customer's row is inserted; only the transaction
whose row or claim survived creates the record.

Limits and quirks:

* Values are checked against the column types and lengths before writing; when the database
  still rejects a batch, it is replayed row by row in savepoints so only the guilty record
  fails. SQLite does not enforce ``VARCHAR(n)``: the up-front check is what catches it there.
* Mapped mode with ``id_strategy: database`` needs ``INSERT ... RETURNING`` to stay a constant
  number of statements (SQLite ≥ 3.35, PostgreSQL, MariaDB ≥ 10.5); on MySQL it inserts row by
  row.
* Mapped mode finds records the adapter did not create by comparing ``lower(column)`` with the
  normalised value: exact for e-mails, best effort for URLs (stored URLs with a scheme or
  ``www.`` are only found through the adapter's own key table).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from backends.base import (
    EXTERNAL_ID,
    AssociationPair,
    Backend,
    BackendError,
    Capability,
    Entity,
    ItemResult,
    MatchKey,
    NotFound,
    SetupReport,
    StoredRecord,
    Unavailable,
)

from .batching import chunked
from .engagement import EngagementMixin
from .engine import make_engine
from .errors import db_errors, is_retryable_conflict
from .mapped import (
    RecordStore,
    check_mapping,
    column_is_text,
    managed_store,
    mapped_store,
)
from .options import SQLOptions
from .schema import KEY_VALUE_LENGTH, ManagedTables, build_tables, migrate
from .sqlitebatch import SQLiteBatches, usable
from .sqlitepaths import SQLitePathsMixin
from .writes import RecordWritesMixin, utcnow

__all__ = ["SQLBackend"]

T = TypeVar("T")
logger = logging.getLogger(__name__)
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


def _replayable(exc: BaseException) -> bool:
    """A transaction that failed this way may simply run again (see ``SQLBackend._retrying``)."""
    if not isinstance(exc, Unavailable):
        return False
    cause = exc.__cause__
    stale = isinstance(cause, sa_exc.DBAPIError) and cause.connection_invalidated
    return stale or is_retryable_conflict(cause)


class SQLBackend(RecordWritesMixin, EngagementMixin, SQLitePathsMixin, Backend):
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
        self._reflected: dict[str, sa.Table] = {}
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

    async def open(self) -> None:
        """Connect, create or migrate the adapter's tables, reflect mapped tables.

        Raises :class:`Unavailable` / :class:`AuthFailed` when the database cannot be used, and
        :class:`BackendError` (code ``schema_mismatch``) when a mapped table lacks what the
        configuration names (the same problems :meth:`check_schema` lists).
        """
        self._engine = make_engine(self.options)
        self._lite = SQLiteBatches(self._engine, self._secrets) if usable(self._engine) else None
        try:
            with db_errors(f"open {self.options.safe_url}", self._secrets):
                async with self.engine.connect() as conn:
                    await conn.execution_options(enginy_write=True)
                    async with conn.begin():
                        version = await migrate(
                            conn, self.tables, mapped=self._mapped, now=utcnow()
                        )
                    if self._reflects:
                        await self._reflect(conn)
            if self._reflects:
                problems = check_mapping(self.options, self._reflected)
                if problems:
                    raise BackendError(
                        "mapped schema problems: " + "; ".join(problems), code="schema_mismatch"
                    )
            self._build_stores()
            # The URL is logged with its password masked, never as configured.
            logger.info(
                "sql backend ready: %s, %s schema, adapter tables %s* at version %d",
                self.options.safe_url,
                self.options.mode,
                self.options.table_prefix,
                version,
            )
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Dispose of the pool. Never raises."""
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

    async def check_setup(self, field_maps: Mapping[Entity, Mapping[str, str]]) -> SetupReport:
        """The interface's set-up check: :meth:`check_schema`'s problems, and where data goes."""
        problems = await self.check_schema(field_maps)
        mode = "mapped (customer tables)" if self._mapped else "managed (adapter tables)"
        note = f"database {self.options.safe_url}, schema {mode}"
        return SetupReport(problems=tuple(problems), notes=(note,))

    async def check_schema(
        self, field_maps: Mapping[Entity, Mapping[str, str]] | None = None
    ) -> list[str]:
        """Problems that would stop the configured schema from working (empty: none).

        Mapped mode: missing tables and columns, incompatible column types for the mapped
        Enginy fields (``field_maps``: Enginy name → column, per entity), NOT NULL columns no
        field fills. Managed mode: a database schema newer than this adapter. Works on a
        backend that is not open (it connects for the check). Raises :class:`Unavailable` /
        :class:`AuthFailed` when the database cannot be reached.
        """
        own = self._engine is None
        engine = make_engine(self.options) if own else self.engine
        try:
            with db_errors(f"check {self.options.safe_url}", self._secrets):
                async with engine.connect() as conn:
                    if self._mapped:
                        await self._reflect(conn)
                        return check_mapping(self.options, self._reflected, field_maps)
                    problems: list[str] = []
                    if self.options.users is not None:
                        await self._reflect(conn)
                        problems = check_mapping(self.options, self._reflected)
                    sv = self.tables.schema_version
                    exists = await conn.run_sync(lambda c: sa.inspect(c).has_table(sv.name))
                    if not exists:
                        return problems
                    version = (await conn.execute(sa.select(sv.c.version))).scalar() or 0
                    from .schema import SCHEMA_VERSION

                    if version > SCHEMA_VERSION:
                        problems.append(
                            f"database schema version {version} is newer than this "
                            f"adapter's {SCHEMA_VERSION}"
                        )
                    return problems
        finally:
            if own:
                await engine.dispose()

    @property
    def _mapped(self) -> bool:
        return self.options.mode == "mapped"

    @property
    def _reflects(self) -> bool:
        """Whether open() reflects configured tables: mapped mode, or a users table."""
        return self._mapped or self.options.users is not None

    async def _reflect(self, conn: AsyncConnection) -> None:
        o = self.options
        names = {t.table for t in (o.contacts, o.companies) if t is not None}
        if o.associations is not None and o.associations.table is not None:
            names.add(o.associations.table)
        if o.users is not None:
            names.add(o.users.table)

        def reflect(sync: sa.Connection) -> dict[str, sa.Table]:
            md = sa.MetaData()
            inspector = sa.inspect(sync)
            return {n: sa.Table(n, md, autoload_with=sync) for n in names if inspector.has_table(n)}

        self._reflected = await conn.run_sync(reflect)

    def _build_stores(self) -> None:
        o = self.options
        # Statements built for the previous tables (a re-open reflects them again).
        self._find_statements.clear()
        self._patch_statements.clear()
        self._create_statements.clear()
        self._sqlite_create_statements.clear()
        if self._mapped:
            assert o.contacts is not None and o.companies is not None
            self._stores = {
                Entity.CONTACT: mapped_store(
                    Entity.CONTACT, self._reflected[o.contacts.table], o.contacts
                ),
                Entity.COMPANY: mapped_store(
                    Entity.COMPANY, self._reflected[o.companies.table], o.companies
                ),
            }
        else:
            self._stores = {e: managed_store(e, self.tables) for e in Entity}
        if self.engine.dialect.name in _NUL_REFUSED:
            for store in self._stores.values():
                store.rejects_nul = True

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
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(3),
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

    # -- loading --------------------------------------------------------------------------

    def _links_on(self, store: RecordStore, *, from_links: bool) -> Any:
        """Join condition records ↔ ``<prefix>links``, indexable from the driving side.

        Integer keys of a mapped table are compared to the text ``crm_id`` through a cast on
        the side that is *not* looked up by index, so both directions stay index lookups.
        """
        links = self.tables.links
        if not store.int_ids:
            cond = links.c.crm_id == store.pk
        elif from_links:
            cond = store.pk == sa.cast(links.c.crm_id, store.pk.type)
        else:
            cond = links.c.crm_id == sa.cast(store.pk, links.c.crm_id.type)
        return sa.and_(links.c.entity == store.entity.value, cond)

    def _with_ext(self, store: RecordStore, *extra: Any) -> sa.Select[Any]:
        """``SELECT`` of whole records plus their external id as ``_enginy_ext`` (joined from
        ``<prefix>links`` in mapped mode)."""
        if store.ext_col is not None:
            return sa.select(store.table, store.ext_col.label("_enginy_ext"), *extra)
        links = self.tables.links
        return sa.select(store.table, links.c.external_id.label("_enginy_ext"), *extra).select_from(
            store.table.outerjoin(links, self._links_on(store, from_links=False))
        )

    def _record_rows(
        self, store: RecordStore, rows: sa.CursorResult[Any], value_label: str | None = None
    ) -> list[tuple[Any, Any, StoredRecord]]:
        """``(matched value, order value, record)`` per result row (see ``_load``) of a
        ``SELECT <table>, <labels>``: read by position."""
        names = list(rows.keys())
        ext_at = names.index("_enginy_ext")
        value_at = names.index(value_label) if value_label else None
        pk_at, order_at = store.positions[store.pk.name], store.positions[store.order.name]
        fmt, fields_at = store.format_id, store.fields_at
        return [
            (
                row[value_at] if value_at is not None else None,
                row[order_at],
                StoredRecord(fmt(row[pk_at]), row[ext_at], fields_at(row)),
            )
            for row in rows
        ]

    async def _load(
        self, conn: AsyncConnection, store: RecordStore, crm_ids: Iterable[str]
    ) -> dict[str, tuple[Any, StoredRecord]]:
        """``{crm_id: (order value, record)}`` for the ids that exist: one statement."""
        pks = {pk for c in set(crm_ids) if (pk := store.parse_id(c)) is not None}
        loaded: dict[str, tuple[Any, StoredRecord]] = {}
        for part in chunked(pks):
            stmt = self._with_ext(store).where(store.pk.in_(part))
            rows = self._record_rows(store, await conn.execute(stmt))
            loaded.update((r.crm_id, (order, r)) for _, order, r in rows)
        return loaded

    # -- contacts and companies -----------------------------------------------------------

    def _wanted(self, expr: Any) -> Any:
        """``expr IN :wanted``. PostgreSQL: ``= ANY(:wanted)`` with an array, so the statement
        text (and asyncpg's prepared statement) is the same whatever the number of values."""
        name = self.engine.dialect.name
        if name == "postgresql":
            return expr == sa.any_(sa.bindparam("wanted", type_=postgresql.ARRAY(sa.String())))
        if name == "sqlite":
            # The values as one JSON array: no per-call rendering of an IN list.
            values = sa.func.json_each(sa.bindparam("wanted", type_=sa.JSON())).table_valued(
                "value"
            )
            return expr.in_(sa.select(values.c.value))
        return expr.in_(sa.bindparam("wanted", expanding=True))

    def _find_statement(self, store: RecordStore, name: str, *, fallback: bool) -> Any:
        """The lookup of :meth:`find_records` for key ``name`` (or, ``fallback``, of mapped
        column ``name`` itself), built once: values come as the ``wanted`` parameter."""
        cache_key = (store.entity, name, fallback)
        stmt = self._find_statements.get(cache_key)
        if stmt is not None:
            return stmt
        entity = store.entity
        links, mk = self.tables.links, self.tables.match_keys
        if fallback:
            expr = sa.func.lower(sa.func.trim(store.table.c[name]))
            stmt = (
                sa.select(
                    store.table,
                    links.c.external_id.label("_enginy_ext"),
                    expr.label("_enginy_value"),
                )
                .select_from(store.table.outerjoin(links, self._links_on(store, from_links=False)))
                .where(self._wanted(expr))
            )
        elif name == EXTERNAL_ID and store.ext_col is not None:
            stmt = self._with_ext(store, store.ext_col.label("_enginy_value")).where(
                self._wanted(store.ext_col)
            )
        elif name == EXTERNAL_ID:
            stmt = (
                sa.select(
                    store.table,
                    links.c.external_id.label("_enginy_ext"),
                    links.c.external_id.label("_enginy_value"),
                )
                .select_from(links.join(store.table, self._links_on(store, from_links=True)))
                .where(links.c.entity == entity.value, self._wanted(links.c.external_id))
            )
        else:
            on_record = (
                store.pk == sa.cast(mk.c.crm_id, store.pk.type)
                if store.int_ids
                else store.pk == mk.c.crm_id
            )
            joined = mk.join(store.table, on_record)
            if store.ext_col is not None:
                ext = store.ext_col.label("_enginy_ext")
            else:
                on_link = sa.and_(links.c.entity == entity.value, links.c.crm_id == mk.c.crm_id)
                joined = joined.outerjoin(links, on_link)
                ext = links.c.external_id.label("_enginy_ext")
            stmt = (
                sa.select(store.table, ext, mk.c.value.label("_enginy_value"))
                .select_from(joined)
                .where(
                    mk.c.entity == entity.value,
                    mk.c.key_name == name,
                    self._wanted(mk.c.value),
                )
            )
        self._find_statements[cache_key] = stmt
        return stmt

    async def find_records(
        self, entity: Entity, key: MatchKey, values: Sequence[str]
    ) -> dict[str, StoredRecord]:
        """Find records by external id or by a normalised match key: one indexed ``IN``
        lookup joined to the records (mapped mode: a second one on the column itself for the
        values not found). The oldest record wins when several hold a value."""
        store = self._store(entity)
        # A value PostgreSQL cannot store (NUL) cannot match anything.
        wanted = list({v for v in values if v and len(v) <= KEY_VALUE_LENGTH and self._storable(v)})
        if not wanted:
            return {}
        hits: list[tuple[Any, Any, StoredRecord]] = []
        if self._lite_ok(store):
            hits = await self._lite_find(store, key.name, wanted)
            return self._best(hits)
        async with self._tx(f"find {entity.plural}", write=False) as conn:
            stmt = self._find_statement(store, key.name, fallback=False)
            for part in chunked(wanted):  # one statement unless the batch is huge
                found = await conn.execute(stmt, {"wanted": part})
                hits += self._record_rows(store, found, "_enginy_value")
            column = store.columns.get(key.field or "") if key.name != EXTERNAL_ID else None
            rest = list(set(wanted) - {value for value, _, _ in hits})
            if not store.managed and column is not None and rest and column_is_text(column):
                # Rows the adapter did not write have no key rows: compare the column itself.
                stmt = self._find_statement(store, column.name, fallback=True)
                for part in chunked(rest):
                    found = await conn.execute(stmt, {"wanted": part})
                    hits += self._record_rows(store, found, "_enginy_value")
        return self._best(hits)

    @staticmethod
    def _best(hits: Iterable[tuple[Any, Any, StoredRecord]]) -> dict[str, StoredRecord]:
        """``{value: record}``: the oldest record (lowest order value) holding each value."""
        best: dict[str, tuple[Any, StoredRecord]] = {}
        for value, order, record in hits:
            if value not in best or order < best[value][0]:
                best[value] = (order, record)
        return {value: record for value, (_, record) in best.items()}

    async def get_records(self, entity: Entity, crm_ids: Sequence[str]) -> dict[str, StoredRecord]:
        """``{crm_id: record}`` for the ids that exist. Read-only."""
        store = self._store(entity)
        async with self._tx(f"get {entity.plural}", write=False) as conn:
            loaded = await self._load(conn, store, crm_ids)
        return {crm_id: record for crm_id, (_, record) in loaded.items()}

    # -- associations -----------------------------------------------------------------------

    async def create_associations(self, pairs: Sequence[AssociationPair]) -> list[ItemResult]:
        """Link contacts to companies in one transaction; existing links succeed silently.
        An unknown contact or company → that pair's ``NotFound``."""
        contacts, companies = self._store(Entity.CONTACT), self._store(Entity.COMPANY)
        assoc = self.options.associations
        async with self._tx("create associations") as conn:
            have_contacts = await self._existing(conn, contacts, [p.contact_id for p in pairs])
            have_companies = await self._existing(conn, companies, [p.company_id for p in pairs])
            results: list[ItemResult] = []
            good: dict[tuple[str, str], None] = {}
            for p in pairs:
                if p.contact_id not in have_contacts:
                    results.append(
                        ItemResult(error=NotFound(f"No contact exists with ID: {p.contact_id}"))
                    )
                elif p.company_id not in have_companies:
                    results.append(
                        ItemResult(error=NotFound(f"No company exists with ID: {p.company_id}"))
                    )
                else:
                    good[(p.contact_id, p.company_id)] = None
                    results.append(ItemResult(crm_id=p.contact_id))
            if not good:
                return results
            if assoc is None:
                table = self.tables.associations
                now = utcnow()
                await conn.execute(
                    self._insert_ignore(table, "contact_id", "company_id"),
                    [{"contact_id": c, "company_id": k, "created_at": now} for c, k in good],
                )
            elif assoc.table is not None:
                table = self._reflected[assoc.table]
                ccol, kcol = table.c[assoc.contact_column], table.c[assoc.company_column]
                wanted = {(contacts.parse_id(c), companies.parse_id(k)) for c, k in good}
                there: set[tuple[Any, ...]] = set()
                for part in chunked(wanted):
                    stmt = sa.select(ccol, kcol).where(
                        ccol.in_({c for c, _ in part}), kcol.in_({k for _, k in part})
                    )
                    there.update(tuple(r) for r in (await conn.execute(stmt)).all())
                missing = [{ccol.name: c, kcol.name: k} for c, k in wanted if (c, k) not in there]
                if missing:
                    await conn.execute(sa.insert(table), missing)
            else:
                assert assoc.fk_column is not None
                await self._write(
                    conn,
                    contacts.table,
                    contacts.pk,
                    {
                        contacts.parse_id(c): {assoc.fk_column: companies.parse_id(k)}
                        for c, k in good
                    },
                )
        return results

    async def _existing(
        self, conn: AsyncConnection, store: RecordStore, crm_ids: Iterable[str]
    ) -> set[str]:
        pks = {pk for c in set(crm_ids) if c and (pk := store.parse_id(c)) is not None}
        found: set[str] = set()
        for part in chunked(pks):
            rows = await conn.execute(sa.select(store.pk).where(store.pk.in_(part)))
            found.update(store.format_id(pk) for pk in rows.scalars())
        return found
