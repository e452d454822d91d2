"""SQL driver: contacts and companies in SQLite, PostgreSQL or MySQL/MariaDB.

Connects to: any database SQLAlchemy 2 reaches asynchronously through ``sqlite+aiosqlite``,
``postgresql+asyncpg`` or ``mysql+aiomysql`` (chosen by the URL).

Capabilities: associations, activities, tasks, browse; users when a users table is configured
(mapped mode) or always in managed mode (the adapter's ``<prefix>users`` table).

Options: see :class:`backends.sql.options.SQLOptions` (url, mode managed|mapped, table_prefix,
pool_size, max_overflow, pool_timeout, connect_timeout, statement_timeout, contacts, companies,
associations, users).

How it writes: every batch is one transaction with a constant number of statements (multi-row
inserts, ``IN`` lookups, one ``UPDATE ... CASE`` per batch), whatever the batch size. Creates
are idempotent under concurrency: each external id is first *claimed* in ``<prefix>links``
(unique per entity) with ``ON CONFLICT DO NOTHING`` / ``ON DUPLICATE KEY UPDATE``; only the
transaction whose claim survived creates the record, the others return its id.

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
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backends.base import (
    EXTERNAL_ID,
    AssociationPair,
    Backend,
    BackendError,
    Capability,
    Conflict,
    Entity,
    InvalidRecord,
    ItemResult,
    MatchKey,
    NewRecord,
    NotFound,
    RecordUpdate,
    StoredRecord,
    Unavailable,
)

from .engagement import EngagementMixin
from .engine import make_engine
from .errors import db_errors, is_record_error, is_retryable_conflict, reason
from .mapped import (
    RecordStore,
    ValueRejected,
    check_mapping,
    coerce,
    column_is_text,
    fits_managed,
    managed_store,
    mapped_store,
)
from .options import SQLOptions
from .schema import KEY_VALUE_LENGTH, ManagedTables, build_tables, migrate

__all__ = ["SQLBackend"]

T = TypeVar("T")
logger = logging.getLogger(__name__)
_ALL = frozenset(
    {
        Capability.ASSOCIATIONS,
        Capability.ACTIVITIES,
        Capability.TASKS,
        Capability.USERS,
        Capability.BROWSE,
    }
)


def utcnow() -> dt.datetime:
    """Naive UTC, as every timestamp column stores it."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass
class _Claim:
    external_id: str
    crm_id: str | None
    claim: str


@dataclass
class _Prepared:
    index: int
    external_id: str
    row: dict[str, Any]
    keys: dict[str, str]


class SQLBackend(EngagementMixin, Backend):
    """Contacts, companies, associations, activities, tasks and users in a SQL database."""

    name = "sql"
    capabilities = _ALL
    Options = SQLOptions

    def __init__(self, options: SQLOptions | None = None) -> None:
        super().__init__(options)
        self.options: SQLOptions = self.options
        self.tables: ManagedTables = build_tables(self.options.table_prefix)
        self._engine: AsyncEngine | None = None
        self._stores: dict[Entity, RecordStore] = {}
        self._reflected: dict[str, sa.Table] = {}
        if self.options.mode == "mapped" and self.options.users is None:
            # Instance-level: whether users exist depends on the configuration.
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
        try:
            with db_errors(f"open {self.options.safe_url}"):
                async with self.engine.connect() as conn:
                    await conn.execution_options(enginy_write=True)
                    async with conn.begin():
                        version = await migrate(
                            conn, self.tables, mapped=self._mapped, now=utcnow()
                        )
                    if self._mapped:
                        await self._reflect(conn)
            if self._mapped:
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
        if engine is not None:
            # Closing a dead connection must not break shutdown.
            with contextlib.suppress(Exception):
                await engine.dispose()

    async def ping(self) -> None:
        """``SELECT 1``; raises :class:`Unavailable` or :class:`AuthFailed`."""
        with db_errors("ping"):
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))

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
            with db_errors(f"check {self.options.safe_url}"):
                async with engine.connect() as conn:
                    if self._mapped:
                        await self._reflect(conn)
                        return check_mapping(self.options, self._reflected, field_maps)
                    sv = self.tables.schema_version
                    exists = await conn.run_sync(lambda c: sa.inspect(c).has_table(sv.name))
                    if not exists:
                        return []
                    version = (await conn.execute(sa.select(sv.c.version))).scalar() or 0
                    from .schema import SCHEMA_VERSION

                    if version > SCHEMA_VERSION:
                        return [
                            f"database schema version {version} is newer than this "
                            f"adapter's {SCHEMA_VERSION}"
                        ]
                    return []
        finally:
            if own:
                await engine.dispose()

    @property
    def _mapped(self) -> bool:
        return self.options.mode == "mapped"

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
        with db_errors(what):
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
        transaction, rolled back on failure, so a replay cannot half-apply anything."""
        for attempt in range(3):
            try:
                return await run()
            except Unavailable as exc:
                cause = exc.__cause__
                stale = isinstance(cause, sa_exc.DBAPIError) and cause.connection_invalidated
                if attempt == 2 or not (stale or is_retryable_conflict(cause)):
                    raise
        raise AssertionError("unreachable")

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

    async def _write(
        self,
        conn: AsyncConnection,
        table: sa.Table,
        key: sa.Column[Any],
        changes: Mapping[Any, Mapping[str, Any]],
        *,
        current: Mapping[Any, Mapping[str, Any]] | None = None,
        where: Any = None,
    ) -> None:
        """Write per-row different values to the rows ``changes`` names, in one statement.

        SQLite and PostgreSQL: one executemany ``UPDATE ... WHERE key = ?`` (asyncpg pipelines
        it). Every row carries the union of the changed columns; a row that does not change a
        column writes back its ``current`` value (the caller holds the row locks), so the
        statement count does not depend on how the rows differ. MySQL: its driver runs an
        executemany UPDATE row by row, so there it is one ``UPDATE ... SET c = CASE key ...``.
        """
        if not changes:
            return
        if conn.dialect.name in ("mysql", "mariadb"):
            stmt = self._case_update(table, key, changes)
            if stmt is not None:
                await conn.execute(stmt if where is None else stmt.where(where))
            return
        union = sorted({c for row in changes.values() for c in row})
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for pk, row in changes.items():
            full = dict(row)
            if current is not None and pk in current:
                for col in union:
                    if col not in full:
                        full[col] = current[pk].get(col)
            params = {f"v_{c}": v for c, v in full.items()}
            params["k_key"] = pk
            groups.setdefault(tuple(sorted(full)), []).append(params)
        for cols, rows in groups.items():
            stmt = (
                sa.update(table)
                .where(key == sa.bindparam("k_key", type_=key.type))
                .values({c: sa.bindparam(f"v_{c}", type_=table.c[c].type) for c in cols})
            )
            if where is not None:
                stmt = stmt.where(where)
            await conn.execute(stmt, rows)

    @staticmethod
    def _case_update(
        table: sa.Table, key: sa.Column[Any], changes: Mapping[Any, Mapping[str, Any]]
    ) -> sa.Update | None:
        """One ``UPDATE ... SET col = CASE key WHEN ... END`` for per-row different values."""
        columns: dict[str, list[tuple[Any, Any]]] = {}
        for pk, row in changes.items():
            for col, value in row.items():
                columns.setdefault(col, []).append((pk, value))
        if not columns:
            return None
        values = {
            col: sa.case(
                *[
                    (key == sa.literal(pk, key.type), sa.literal(v, table.c[col].type))
                    for pk, v in pairs
                ],
                else_=table.c[col],
            )
            for col, pairs in columns.items()
        }
        return sa.update(table).where(key.in_(list(changes))).values(values)

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

    def _record_rows(
        self, store: RecordStore, rows: Iterable[Any], value_label: str | None = None
    ) -> list[tuple[Any, Any, StoredRecord]]:
        """``(matched value, order value, record)`` per result row (see ``_load``)."""
        out = []
        for row in rows:
            m = row._mapping
            crm_id = store.format_id(m[store.pk])
            fields = store.from_row({c.name: m[c] for c in store.table.c})
            record = StoredRecord(crm_id, m["_enginy_ext"], fields)
            out.append((m[value_label] if value_label else None, m[store.order], record))
        return out

    async def _load(
        self, conn: AsyncConnection, store: RecordStore, crm_ids: Iterable[str]
    ) -> dict[str, tuple[Any, StoredRecord]]:
        """``{crm_id: (order value, record)}`` for the ids that exist: one statement."""
        pks = {pk for c in set(crm_ids) if (pk := store.parse_id(c)) is not None}
        if not pks:
            return {}
        links = self.tables.links
        stmt = (
            sa.select(store.table, links.c.external_id.label("_enginy_ext"))
            .select_from(store.table.outerjoin(links, self._links_on(store, from_links=False)))
            .where(store.pk.in_(pks))
        )
        return {
            r.crm_id: (order, r)
            for _, order, r in self._record_rows(store, await conn.execute(stmt))
        }

    # -- contacts and companies -----------------------------------------------------------

    async def create_record(self, entity: Entity, record: NewRecord) -> ItemResult:
        """Create one record idempotently (see :meth:`create_records`)."""
        return (await self.create_records(entity, [record]))[0]

    async def create_records(
        self, entity: Entity, records: Sequence[NewRecord]
    ) -> list[ItemResult]:
        """Create records in one transaction, idempotently on ``external_id``.

        Returns one :class:`ItemResult` per input (``created=False`` for an external id that
        already had a record, or a repeat within the batch). A value the table rejects is that
        record's ``InvalidRecord``; the others land. Raises :class:`Unavailable` when the
        database fails (the transaction is rolled back: nothing is half-written).
        """
        store = self._store(entity)
        results: list[ItemResult | None] = [None] * len(records)
        first: dict[str, int] = {}
        repeats: list[tuple[int, int]] = []
        prepared: list[_Prepared] = []
        for i, record in enumerate(records):
            ext = record.external_id
            if ext in first:
                repeats.append((i, first[ext]))
                continue
            if not ext or len(ext) > 255:
                results[i] = ItemResult(error=InvalidRecord("externalId must be 1-255 characters"))
                continue
            try:
                row = store.to_row(record.fields)
            except ValueRejected as exc:
                results[i] = ItemResult(error=InvalidRecord(str(exc)))
                continue
            first[ext] = i
            keys = {k: v for k, v in record.match_keys.items() if v and len(v) <= KEY_VALUE_LENGTH}
            prepared.append(_Prepared(i, ext, row, keys))
        if prepared:
            what = f"create {entity.plural}"
            try:
                outcome = await self._retrying(lambda: self._create(what, store, prepared, False))
            except InvalidRecord:
                # Some row broke the batch statement: replay row by row to isolate it.
                outcome = await self._retrying(lambda: self._create(what, store, prepared, True))
            for index, result in outcome.items():
                results[index] = result
        for i, j in repeats:
            done = results[j]
            assert done is not None
            results[i] = ItemResult(crm_id=done.crm_id, error=done.error, created=False)
        return [r if r is not None else ItemResult(error=InvalidRecord()) for r in results]

    async def _create(
        self, what: str, store: RecordStore, prepared: list[_Prepared], careful: bool
    ) -> dict[int, ItemResult]:
        entity = store.entity.value
        links = self.tables.links
        now = utcnow()
        token = str(uuid.uuid4())
        new_ids = {p.external_id: store.new_id() if store.makes_ids else None for p in prepared}
        out: dict[int, ItemResult] = {}
        async with self._tx(what) as conn:
            # Sorted so that concurrent batches take their unique-index locks in one order.
            claims = [
                {
                    "entity": entity,
                    "external_id": ext,
                    "crm_id": new_ids[ext],
                    "claim": token,
                    "created_at": now,
                }
                for ext in sorted(new_ids)
            ]
            claim = self._insert_ignore(links, "entity", "external_id")
            held: dict[str, Any] = {}
            if conn.dialect.name in ("postgresql", "sqlite"):
                # RETURNING lists the claims that were inserted; only a conflict (an existing
                # or concurrently created external id) needs the extra read below. (MariaDB's
                # ON DUPLICATE KEY ... RETURNING also returns the duplicates: not usable.)
                got = await conn.execute(claim.returning(links.c.external_id), claims)
                held = {ext: _Claim(ext, new_ids[ext], token) for ext in got.scalars()}
            else:
                await conn.execute(claim, claims)
            others = [ext for ext in new_ids if ext not in held]
            if others:
                for r in await conn.execute(
                    sa.select(links.c.external_id, links.c.crm_id, links.c.claim).where(
                        links.c.entity == entity, links.c.external_id.in_(others)
                    )
                ):
                    held[r.external_id] = _Claim(r.external_id, r.crm_id, r.claim)
            mine: list[_Prepared] = []
            for p in prepared:
                link = held.get(p.external_id)
                if link is not None and link.claim == token:
                    mine.append(p)
                elif link is not None and link.crm_id is not None:
                    out[p.index] = ItemResult(crm_id=link.crm_id, created=False)
                else:
                    out[p.index] = ItemResult(
                        error=Conflict(f"externalId {p.external_id!r} is being created elsewhere")
                    )
            if not mine:
                return out
            stamps = {c: now for c in store.stamp_cols}
            rows = [
                {
                    **p.row,
                    **stamps,
                    **({store.pk.name: new_ids[p.external_id]} if store.makes_ids else {}),
                }
                for p in mine
            ]
            inserted = await self._insert_rows(conn, store, rows, careful)
            made: dict[str, str] = {}
            for p, (crm_id, why) in zip(mine, inserted, strict=True):
                if crm_id is None:
                    out[p.index] = ItemResult(error=InvalidRecord(why or "rejected"))
                else:
                    made[p.external_id] = crm_id
                    out[p.index] = ItemResult(crm_id=crm_id, created=True)
            gone = [p.external_id for p in mine if p.external_id not in made]
            if gone:
                await conn.execute(
                    sa.delete(links).where(
                        links.c.entity == entity,
                        links.c.external_id.in_(gone),
                        links.c.claim == token,
                    )
                )
            if not store.makes_ids and made:
                await self._write(
                    conn,
                    links,
                    links.c.external_id,
                    {ext: {"crm_id": crm_id} for ext, crm_id in made.items()},
                    where=links.c.entity == entity,
                )
            key_rows = [
                {"entity": entity, "key_name": k, "value": v, "crm_id": made[p.external_id]}
                for p in mine
                if p.external_id in made
                for k, v in p.keys.items()
            ]
            if key_rows:
                await conn.execute(sa.insert(self.tables.match_keys), key_rows)
        return out

    async def _insert_rows(
        self, conn: AsyncConnection, store: RecordStore, rows: list[dict[str, Any]], careful: bool
    ) -> list[tuple[str | None, str | None]]:
        """Insert ``rows``; return ``(crm_id, None)`` per row, or ``(None, reason)`` for a row
        the database rejected (only in ``careful`` mode, where each row has a savepoint)."""
        table = store.table
        returning = conn.dialect.insert_returning and conn.dialect.use_insertmanyvalues
        if not careful and (store.makes_ids or returning):
            # Rows with different column sets go in separate statements: an explicit NULL
            # would override a mapped column's database default.
            groups: dict[tuple[str, ...], list[int]] = {}
            for i, row in enumerate(rows):
                groups.setdefault(tuple(sorted(row)), []).append(i)
            ids: list[str | None] = [None] * len(rows)
            for positions in groups.values():
                batch = [rows[i] for i in positions]
                if store.makes_ids:
                    await conn.execute(sa.insert(table), batch)
                    for i in positions:
                        ids[i] = str(rows[i][store.pk.name])
                else:
                    stmt = sa.insert(table).returning(store.pk, sort_by_parameter_order=True)
                    result = await conn.execute(stmt, batch)
                    for i, pk in zip(positions, result.scalars().all(), strict=True):
                        ids[i] = store.format_id(pk)
            return [(i, None) for i in ids]
        # Row by row: the careful replay (each in a savepoint), or MySQL without RETURNING.
        out: list[tuple[str | None, str | None]] = []
        for row in rows:
            try:
                if careful:
                    async with conn.begin_nested():
                        result = await conn.execute(sa.insert(table).values(row))
                else:
                    result = await conn.execute(sa.insert(table).values(row))
            except sa_exc.DBAPIError as exc:
                if not (careful and is_record_error(exc)):
                    raise
                out.append((None, reason(exc)))
                continue
            if store.makes_ids:
                out.append((str(row[store.pk.name]), None))
            else:
                pk = result.inserted_primary_key
                assert pk is not None
                out.append((store.format_id(pk[0]), None))
        return out

    async def find_records(
        self, entity: Entity, key: MatchKey, values: Sequence[str]
    ) -> dict[str, StoredRecord]:
        """Find records by external id or by a normalised match key: one indexed ``IN``
        lookup joined to the records (mapped mode: a second one on the column itself for the
        values not found). The oldest record wins when several hold a value."""
        store = self._store(entity)
        wanted = list({v for v in values if v and len(v) <= KEY_VALUE_LENGTH})
        if not wanted:
            return {}
        links, mk = self.tables.links, self.tables.match_keys
        if key.name == EXTERNAL_ID:
            stmt = (
                sa.select(
                    store.table,
                    links.c.external_id.label("_enginy_ext"),
                    links.c.external_id.label("_enginy_value"),
                )
                .select_from(links.join(store.table, self._links_on(store, from_links=True)))
                .where(links.c.entity == entity.value, links.c.external_id.in_(wanted))
            )
        else:
            on_record = (
                store.pk == sa.cast(mk.c.crm_id, store.pk.type)
                if store.int_ids
                else store.pk == mk.c.crm_id
            )
            on_link = sa.and_(links.c.entity == entity.value, links.c.crm_id == mk.c.crm_id)
            stmt = (
                sa.select(
                    store.table,
                    links.c.external_id.label("_enginy_ext"),
                    mk.c.value.label("_enginy_value"),
                )
                .select_from(mk.join(store.table, on_record).outerjoin(links, on_link))
                .where(
                    mk.c.entity == entity.value, mk.c.key_name == key.name, mk.c.value.in_(wanted)
                )
            )
        async with self._tx(f"find {entity.plural}", write=False) as conn:
            hits = self._record_rows(store, await conn.execute(stmt), "_enginy_value")
            column = store.columns.get(key.field or "") if key.name != EXTERNAL_ID else None
            rest = list(set(wanted) - {value for value, _, _ in hits})
            if not store.managed and column is not None and rest and column_is_text(column):
                # Rows the adapter did not write have no key rows: compare the column itself.
                expr = sa.func.lower(sa.func.trim(column))
                fallback = (
                    sa.select(
                        store.table,
                        links.c.external_id.label("_enginy_ext"),
                        expr.label("_enginy_value"),
                    )
                    .select_from(
                        store.table.outerjoin(links, self._links_on(store, from_links=False))
                    )
                    .where(expr.in_(rest))
                )
                hits += self._record_rows(store, await conn.execute(fallback), "_enginy_value")
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

    async def update_record(self, entity: Entity, update: RecordUpdate) -> ItemResult:
        """Apply one partial update (see :meth:`update_records`)."""
        return (await self.update_records(entity, [update]))[0]

    async def update_records(
        self, entity: Entity, updates: Sequence[RecordUpdate]
    ) -> list[ItemResult]:
        """Apply partial updates in one transaction: the rows are read (locked), merged, and
        written back with one ``UPDATE ... CASE`` holding only the changed columns.

        Unknown ``crm_id`` → ``NotFound``; a rejected value → ``InvalidRecord`` for that
        update only. Idempotent.
        """
        store = self._store(entity)
        what = f"update {entity.plural}"
        try:
            return await self._retrying(lambda: self._update(what, store, updates, False))
        except InvalidRecord:
            return await self._retrying(lambda: self._update(what, store, updates, True))

    async def _update(
        self, what: str, store: RecordStore, updates: Sequence[RecordUpdate], careful: bool
    ) -> list[ItemResult]:
        results: list[ItemResult] = []
        pks = {u.crm_id: store.parse_id(u.crm_id) for u in updates}
        async with self._tx(what) as conn:
            wanted = {pk for pk in pks.values() if pk is not None}
            current: dict[Any, dict[str, Any]] = {}
            if wanted:
                rows = await conn.execute(
                    self._lock(sa.select(store.table).where(store.pk.in_(wanted)))
                )
                current = {r[store.pk.name]: dict(r) for r in rows.mappings()}
            changes: dict[Any, dict[str, Any]] = {}
            keys: dict[tuple[str, str], str | None] = {}
            for u in updates:
                pk = pks[u.crm_id]
                if pk is None or pk not in current:
                    results.append(
                        ItemResult(error=NotFound(f"No record exists with ID: {u.crm_id}"))
                    )
                    continue
                old = current[pk]
                try:
                    new = self._merge(store, old, u)
                except ValueRejected as exc:
                    results.append(ItemResult(error=InvalidRecord(str(exc))))
                    continue
                diff = {c: v for c, v in new.items() if old.get(c) != v}
                if diff and careful:
                    try:
                        async with conn.begin_nested():
                            await self._write(conn, store.table, store.pk, {pk: diff})
                    except sa_exc.DBAPIError as exc:
                        if not is_record_error(exc):
                            raise
                        results.append(ItemResult(error=InvalidRecord(reason(exc))))
                        continue
                elif diff:
                    changes.setdefault(pk, {}).update(diff)
                old.update(new)
                canonical = store.format_id(pk)
                for name, value in u.match_keys.items():
                    keys[(canonical, name)] = (
                        value if value and len(value) <= KEY_VALUE_LENGTH else None
                    )
                results.append(ItemResult(crm_id=canonical))
            if store.stamp_cols:
                now = utcnow()
                for row in changes.values():
                    row["updated_at"] = now
            await self._write(conn, store.table, store.pk, changes, current=current)
            if keys:
                mk = self.tables.match_keys
                await conn.execute(
                    sa.delete(mk).where(
                        mk.c.entity == store.entity.value,
                        mk.c.crm_id == sa.bindparam("c"),
                        mk.c.key_name == sa.bindparam("k"),
                    ),
                    [{"c": c, "k": k} for c, k in keys],
                )
                fresh = [
                    {"entity": store.entity.value, "key_name": k, "value": v, "crm_id": c}
                    for (c, k), v in keys.items()
                    if v is not None
                ]
                if fresh:
                    await conn.execute(sa.insert(mk), fresh)
        return results

    @staticmethod
    def _merge(store: RecordStore, old: Mapping[str, Any], update: RecordUpdate) -> dict[str, Any]:
        """The column values after ``update`` (only columns it may change)."""
        if store.managed:
            # Typed column when the value has the column's type, else the extra JSON (see
            # RecordStore.to_row); only the touched columns are returned.
            new: dict[str, Any] = {}
            extra = store.extra_of(old)
            touched = False
            for name, value in update.fields.items():
                column = store.columns.get(name)
                if column is not None and (value is None or fits_managed(column, value)):
                    new[column.name] = value
                    if name in extra:  # it was stored there when it had another type
                        del extra[name]
                        touched = True
                else:
                    if column is not None:
                        new[column.name] = None
                    extra[name] = value
                    touched = True
            for name in update.clear:
                column = store.columns.get(name)
                if column is not None:
                    new[column.name] = None
                if name in extra:
                    del extra[name]
                    touched = True
            if touched:
                new["extra"] = extra or None
            return new
        new = store.to_row(update.fields)
        json_col = store.json_col
        if (json_col is not None and json_col.name in new) or update.clear:
            extra = store.extra_of(old)
            if json_col is not None and json_col.name in new:
                extra.update(store.extra_of(new))
            for name in update.clear:
                column = store.columns.get(name)
                if column is not None:
                    new[column.name] = coerce(column, None)
                else:
                    extra.pop(name, None)
            if json_col is not None:
                new[json_col.name] = store._encode_json(extra) if extra else None
        return new

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
                there = set(
                    (
                        await conn.execute(
                            sa.select(ccol, kcol).where(
                                ccol.in_({c for c, _ in wanted}), kcol.in_({k for _, k in wanted})
                            )
                        )
                    ).all()
                )
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
        if not pks:
            return set()
        rows = await conn.execute(sa.select(store.pk).where(store.pk.in_(pks)))
        return {store.format_id(pk) for pk in rows.scalars()}
