"""Opening the SQL driver and checking its schema: reflection of the customer's tables, the
adapter's own tables (created, migrated, converted to the mapped keys' collation), the indexes
lookups were allowed to create, and ``check``'s report.

``open()`` changes the database only when the driver is not :attr:`read_only` (``serve``,
``check --migrate``): then it runs the adapter's migrations, creates missing side tables,
converts its own tables to the mapped keys' collation (MariaDB/MySQL) and creates the lookup
indexes the configuration asks for. Read-only (``check``), it only reflects and reports.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.schema import CreateIndex

from backends.base import BackendError, Entity, SchemaError, SetupReport

from .check import (
    Reflected,
    check_report,
    configured_tables,
    key_collation,
    text_key_columns,
)
from .checkpoint import Checkpointer
from .coerce import column_is_text
from .crm_engagement import EngagementStore
from .engine import make_engine
from .errors import db_errors
from .fastwrites import utcnow
from .mapped import RecordStore, managed_store, mapped_store
from .mapped_options import Lookup
from .options import SQLOptions
from .schema import (
    SCHEMA_VERSION,
    ManagedTables,
    align_collation,
    build_tables,
    migrate,
    table_collations,
)
from .sqlitebatch import SQLiteBatches, usable
from .statistics import TableStatistics
from .values import resolve_lookups

__all__ = ["SchemaSetupMixin"]

logger = logging.getLogger("backends.sql.driver")

#: Enginy's default match keys per entity (the fields whose lookups ``check`` looks at).
_KEY_FIELDS = {Entity.CONTACT: ("email", "linkedinUrl"), Entity.COMPANY: ("domain", "name")}


class SchemaSetupMixin:
    """``open`` / ``check_setup`` / ``check_schema``. Mixed into :class:`SQLBackend`."""

    if TYPE_CHECKING:
        options: SQLOptions
        tables: ManagedTables
        read_only: bool
        _engine: AsyncEngine | None
        _lite: SQLiteBatches | None
        _checkpointer: Checkpointer | None
        _statistics: TableStatistics | None
        _secrets: tuple[str, ...]
        _stores: dict[Entity, RecordStore]
        _engagement: dict[str, EngagementStore]
        _reflection: Reflected
        _find_statements: dict[Any, Any]
        _patch_statements: dict[Any, Any]
        _create_statements: dict[Any, Any]
        _sqlite_create_statements: dict[Any, Any]

        @property
        def engine(self) -> AsyncEngine: ...
        async def close(self) -> None: ...

    @property
    def _mapped(self) -> bool:
        return self.options.mode == "mapped"

    @property
    def _reflects(self) -> bool:
        """Whether open() reflects configured tables: mapped mode, or a users table."""
        return self._mapped or self.options.users is not None

    def _table(self, name: str, schema: str | None) -> sa.Table:
        """A reflected customer table (it exists: ``open`` checked)."""
        table = self._reflection.get(name, schema)
        if table is None:
            raise SchemaError(f"table '{name}' was not found when the backend opened")
        return table

    def _start_checkpoints(self) -> None:
        """SQLite file: WAL checkpoints from a task of the driver (backends/sql/checkpoint.py)."""
        # A file in WAL mode only: an in-memory database has no log.
        url, interval = self.options.engine_url, self.options.checkpoint_interval
        if self.options.dialect != "sqlite" or interval is None:
            return
        if url.database in (None, "", ":memory:"):
            return
        self._checkpointer = Checkpointer(self.engine, interval)
        self._checkpointer.start()

    async def _refresh_statistics(self) -> None:
        """SQLite: the adapter's tables' statistics brought up to date, if someone took any
        (backends/sql/statistics.py). Best effort: plans without it are what they were."""
        if self._lite is None:
            return
        names = [table.name for table in self.tables.metadata.tables.values()]
        reload = f"{self.tables.prefix}statistics_reload"
        self._statistics = TableStatistics(self.engine, self._lite, names, reload)
        try:
            await self._statistics.refresh()
        except BackendError as exc:
            logger.warning("sqlite statistics refresh failed: %s", exc.message)

    async def open(self) -> None:
        """Connect, reflect the customer's tables, create or migrate the adapter's tables
        (unless :attr:`read_only`).

        Raises :class:`Unavailable` / :class:`AuthFailed` when the database cannot be used, and
        :class:`SchemaError` (code ``schema_mismatch``) when the customer's tables lack what
        the configuration names (the same problems :meth:`check_schema` lists).
        """
        self._engine = make_engine(self.options)
        self._lite = SQLiteBatches(self._engine, self._secrets) if usable(self._engine) else None
        try:
            with db_errors(f"open {self.options.safe_url}", self._secrets):
                async with self.engine.connect() as conn:
                    if self._mapped:
                        # First: the side tables take the mapped keys' collation.
                        await self._reflect(conn)
                        collation = self._side_collation()
                        self.tables = build_tables(self.options.table_prefix, collation)
                    version = await self._prepare_tables(conn)
                    wanted = configured_tables(self.options)
                    if self._reflects and not wanted <= set(self._reflection.tables):
                        # The users table may be one of the adapter's own, created just now.
                        await self._reflect(conn)
                    problems = check_report(self.options, self._reflection).problems
                    if not problems:
                        problems = await resolve_lookups(conn, self.options, self._table)
                        await conn.rollback()
                    if problems:
                        raise SchemaError(
                            "mapped schema problems: " + "; ".join(problems),
                            code="schema_mismatch",
                        )
            self._build_stores()
            if not self.read_only:
                self._start_checkpoints()
                await self._refresh_statistics()
            # The URL is logged with its password masked, never as configured.
            logger.info(
                "sql backend ready: %s, %s schema, adapter tables %s* at version %d%s",
                self.options.safe_url,
                self.options.mode,
                self.options.table_prefix,
                version,
                " (read-only)" if self.read_only else "",
            )
        except BaseException:
            await self.close()
            raise

    async def _prepare_tables(self, conn: AsyncConnection) -> int:
        """Migrate (not read-only) and return the adapter schema's version."""
        sv = self.tables.schema_version
        if self.read_only:
            exists = await conn.run_sync(lambda c: sa.inspect(c).has_table(sv.name))
            version = (await conn.execute(sa.select(sv.c.version))).scalar() if exists else 0
            await conn.rollback()
            return int(version or 0)
        await conn.execution_options(enginy_write=True)
        async with conn.begin():
            version = await migrate(conn, self.tables, mapped=self._mapped, now=utcnow())
        if self._mapped:
            async with conn.begin():
                # Tables a later version added, when this database was migrated in managed
                # mode; then the adapter's tables in the mapped keys' collation.
                await conn.run_sync(
                    lambda c: self.tables.metadata.create_all(
                        c, tables=self.tables.side_tables(), checkfirst=True
                    )
                )
                collation = self._side_collation()
                if collation is not None:
                    for name in await align_collation(conn, self.tables, collation):
                        logger.warning("converted the adapter's table %s to %s", name, collation)
            await self._create_lookup_indexes(conn)
        return version

    def _side_collation(self) -> str | None:
        """MariaDB/MySQL: the collation of the adapter's tables (see ``collation``)."""
        if self.options.collation is not None or self.options.dialect != "mysql":
            return self.options.collation
        for column in text_key_columns(self.options, self._reflection):
            chosen = key_collation(column)
            if chosen:
                return chosen
        return None

    async def _reflect(self, conn: AsyncConnection) -> None:
        names = configured_tables(self.options)

        def reflect(sync: sa.Connection) -> Reflected:
            found = Reflected(dialect=sync.dialect.name)
            if found.dialect == "mariadb":
                found.dialect = "mysql"
            inspector = sa.inspect(sync)
            md = sa.MetaData()
            with warnings.catch_warnings():
                # Types SQLAlchemy does not know (a CRM's own enum or domain types) reflect as
                # NullType with a warning; check reports them if a field is mapped there.
                warnings.simplefilter("ignore", sa_exc.SAWarning)
                for schema, name in sorted(names, key=str):
                    if not inspector.has_table(name, schema=schema):
                        continue
                    table = sa.Table(name, md, schema=schema, autoload_with=sync)
                    found.tables[(schema, name)] = table
                    found.indexes[(schema, name)] = _indexes(inspector, table, sync)
            if found.dialect == "mysql":
                found.default_collation = sync.exec_driver_sql(
                    "SELECT @@collation_database"
                ).scalar()
            return found

        self._reflection = await conn.run_sync(reflect)
        # Reflection began a transaction; end it so that migrations can begin theirs.
        await conn.rollback()

    def _build_stores(self) -> None:
        o = self.options
        # Statements built for the previous tables (a re-open reflects them again).
        self._find_statements.clear()
        self._patch_statements.clear()
        self._create_statements.clear()
        self._sqlite_create_statements.clear()
        if self._mapped:
            assert o.contacts is not None and o.companies is not None
            dialect = self._reflection.dialect
            collation = self._reflection.default_collation
            self._stores = {
                entity: mapped_store(
                    entity, config, self._table, dialect=dialect, default_collation=collation
                )
                for entity, config in ((Entity.CONTACT, o.contacts), (Entity.COMPANY, o.companies))
            }
        else:
            self._stores = {e: managed_store(e, self.tables) for e in Entity}
        self._engagement = {}
        for kind, config in (("activities", o.activities), ("tasks", o.tasks)):
            if config is None:
                continue
            targets = config.targets
            self._engagement[kind] = EngagementStore(
                config=config,
                table=self._table(config.table, config.db_schema),
                targets=self._table(targets.table, targets.db_schema) if targets else None,
                contacts=self._stores[Entity.CONTACT],
                companies=self._stores[Entity.COMPANY],
            )
        if self.engine.dialect.name in ("postgresql", "sqlite"):
            for store in self._stores.values():
                store.rejects_nul = True

    # -- lookup indexes ----------------------------------------------------------------------

    def _lookup_targets(self) -> list[tuple[str, sa.Column[Any], Lookup, bool]]:
        """``(field, column compared, lookup, compared directly)`` of every mapped lookup."""
        out = []
        for store in self._stores.values():
            for name, child in store.children.items():
                out.append(
                    (name, child.comparison.column, child.config.lookup, child.comparison.direct)
                )
            for name, column in store.columns.items():
                lookup = store.lookups.get(name, Lookup())
                target = store.table.c[lookup.column] if lookup.column else column
                if column_is_text(target):
                    direct = lookup.stored != "as_is" or target.name in store.case_insensitive
                    out.append((name, target, lookup, direct))
        return out

    async def _create_lookup_indexes(self, conn: AsyncConnection) -> None:
        """The indexes ``lookups.<field>.create_index`` asks for (only those)."""
        self._build_stores()
        dialect = conn.dialect.name
        for _, column, lookup, direct in self._lookup_targets():
            if not lookup.create_index or _has_index(self._reflection, column, direct):
                continue
            table = column.table
            name = f"{self.options.table_prefix}lk_{table.name}_{column.name}"[:63]
            expression: Any = column if direct else sa.func.lower(column)
            if dialect in ("mysql", "mariadb") and not direct:
                logger.warning(
                    "lookups: cannot create an index on lower(%s.%s) on MariaDB/MySQL; give the "
                    "column a case-insensitive collation or set stored: lower/upper",
                    table.name,
                    column.name,
                )
                continue
            index = sa.Index(name, expression)
            index._set_parent(table)  # bind the index to the reflected table for DDL only
            # IF NOT EXISTS where the database has it (MySQL has not; MariaDB, PostgreSQL and
            # SQLite have): SQLite's expression indexes do not reflect, so they are not known.
            ddl = CreateIndex(index, if_not_exists=not self._is_mysql(conn))
            async with conn.begin():
                await conn.execute(ddl)
            table.indexes.discard(index)
            logger.warning("created index %s on %s for sync lookups", name, table.name)

    @staticmethod
    def _is_mysql(conn: AsyncConnection) -> bool:
        dialect = conn.dialect
        return dialect.name in ("mysql", "mariadb") and not getattr(dialect, "is_mariadb", False)

    # -- check -------------------------------------------------------------------------------

    async def check_setup(self, field_maps: Mapping[Entity, Mapping[str, str]]) -> SetupReport:
        """The interface's set-up check: :meth:`check_schema`'s problems, where data goes, and
        notes an administrator should read (lookups that scan, tables not yet created)."""
        problems, notes = await self._check(field_maps)
        mode = "mapped (customer tables)" if self._mapped else "managed (adapter tables)"
        note = f"database {self.options.safe_url}, schema {mode}"
        return SetupReport(problems=tuple(problems), notes=(note, *notes))

    async def check_schema(
        self, field_maps: Mapping[Entity, Mapping[str, str]] | None = None
    ) -> list[str]:
        """Problems that would stop the configured schema from working (empty: none).

        Mapped mode: see :mod:`backends.sql.check`. Managed mode: a database schema newer than
        this adapter. Read-only; works on a backend that is not open (it connects for the
        check). Raises :class:`Unavailable` / :class:`AuthFailed` when the database cannot be
        reached.
        """
        return (await self._check(field_maps))[0]

    async def _check(
        self, field_maps: Mapping[Entity, Mapping[str, str]] | None
    ) -> tuple[list[str], list[str]]:
        own = self._engine is None
        engine = make_engine(self.options) if own else self.engine
        try:
            with db_errors(f"check {self.options.safe_url}", self._secrets):
                async with engine.connect() as conn:
                    problems: list[str] = []
                    notes: list[str] = []
                    if self._reflects:
                        await self._reflect(conn)
                        report = check_report(self.options, self._reflection, field_maps)
                        problems += report.problems
                        notes += report.notes
                        if not report.problems:
                            problems += await resolve_lookups(conn, self.options, self._table)
                    notes += await self._side_notes(conn)
                    if self._mapped and not problems:
                        notes += self._index_notes(field_maps or {})
                    sv = self.tables.schema_version
                    exists = await conn.run_sync(lambda c: sa.inspect(c).has_table(sv.name))
                    if exists:
                        version = (await conn.execute(sa.select(sv.c.version))).scalar() or 0
                        if version > SCHEMA_VERSION:
                            problems.append(
                                f"database schema version {version} is newer than this "
                                f"adapter's {SCHEMA_VERSION}"
                            )
                    return problems, notes
        finally:
            if own:
                await engine.dispose()

    async def _side_notes(self, conn: AsyncConnection) -> list[str]:
        """The adapter's own tables: missing ones, and (MariaDB/MySQL) collations that
        ``serve`` / ``check --migrate`` would convert."""
        wanted = self.tables.side_tables() if self._mapped else self.tables.all_tables()
        names = [t.name for t in wanted]
        present = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
        notes = []
        missing = [n for n in names if n not in present]
        if missing:
            notes.append(
                f"the adapter's tables {', '.join(missing)} do not exist yet: `serve` (or "
                "`check --migrate`) creates them"
            )
        collation = self._side_collation() if self._mapped else None
        if collation is not None:
            found = await table_collations(conn, [n for n in names if n in present])
            clash = sorted(n for n, c in found.items() if c != collation)
            if clash:
                notes.append(
                    f"the adapter's tables {', '.join(clash)} are not in {collation}, the "
                    "collation of the mapped keys (joins would fail with 'Illegal mix of "
                    "collations'): `serve` (or `check --migrate`) converts them"
                )
        return notes

    def _index_notes(self, field_maps: Mapping[Entity, Mapping[str, str]]) -> list[str]:
        notes = []
        if not self._stores:
            self._build_stores_for_check()
        targets = {
            (id(c), name): (c, lookup, direct) for name, c, lookup, direct in self._lookup_targets()
        }
        for entity, fields in _KEY_FIELDS.items():
            store = self._stores.get(entity)
            if store is None:
                continue
            for enginy in fields:
                backend = field_maps.get(entity, {}).get(enginy)
                if backend is None:
                    continue
                for (_, name), (column, lookup, direct) in targets.items():
                    if name != backend or column.table.name not in _tables_of(store):
                        continue
                    if lookup.create_index or _has_index(self._reflection, column, direct):
                        continue
                    expression = column.name if direct else f"lower({column.name})"
                    notes.append(
                        f"{entity.plural}: sync by {enginy} compares {expression} of "
                        f"'{column.table.name}' without an index, so finding rows the adapter "
                        "did not write reads the whole table; index it, or set "
                        f"lookups.{backend}.create_index: true"
                    )
        return notes

    def _build_stores_for_check(self) -> None:
        o = self.options
        if not self._mapped or o.contacts is None or o.companies is None:
            return
        self._stores = {
            entity: mapped_store(
                entity,
                config,
                self._table,
                dialect=self._reflection.dialect,
                default_collation=self._reflection.default_collation,
            )
            for entity, config in ((Entity.CONTACT, o.contacts), (Entity.COMPANY, o.companies))
        }


def _tables_of(store: RecordStore) -> set[str]:
    return {store.table.name, *(c.table.name for c in store.children.values())}


def _indexes(
    inspector: Any, table: sa.Table, sync: sa.Connection
) -> list[tuple[str | None, str | None]]:
    """``(first column, first expression)`` of every index and unique key of ``table``."""
    out: list[tuple[str | None, str | None]] = []
    if sync.dialect.name == "sqlite":
        # SQLAlchemy does not reflect SQLite's expression indexes: read their DDL.
        rows = sync.exec_driver_sql(
            "SELECT sql FROM sqlite_master "
            "WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
            (table.name,),
        )
        out += [(None, str(sql).split("(", 1)[-1]) for (sql,) in rows]
    pk = inspector.get_pk_constraint(table.name, schema=table.schema)
    if pk and pk.get("constrained_columns"):
        out.append((pk["constrained_columns"][0], None))
    for index in inspector.get_indexes(table.name, schema=table.schema):
        columns = index.get("column_names") or [None]
        expressions = index.get("expressions") or [None]
        out.append((columns[0], expressions[0]))
    for unique in inspector.get_unique_constraints(table.name, schema=table.schema):
        columns = unique.get("column_names") or [None]
        out.append((columns[0], None))
    return out


def _has_index(reflected: Reflected, column: sa.Column[Any], direct: bool) -> bool:
    """Whether an index serves comparing ``column`` (``direct``) or ``lower(column)``."""
    table = column.table
    for first, expression in reflected.indexes.get((table.schema, table.name), []):
        if direct and first == column.name:
            return True
        text = (expression or "").lower().replace('"', "").replace("`", "")
        if not direct and "lower(" in text and column.name.lower() in text:
            return True
    return False
