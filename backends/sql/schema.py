"""The adapter's own tables and their versioned migrations.

Every table name starts with the configured ``table_prefix`` (default ``enginy_``):

=====================  ==========================================================================
``<p>schema_version``  one row: the schema version this database is at
``<p>links``           mapped mode: external id ↔ crm id, unique per entity (idempotent creates)
``<p>extra_fields``    mapped mode: fields without a column (``extra_fields: side_table``), as JSON
``<p>match_keys``      normalised match keys ``(entity, key_name, value) → crm_id``, indexed
``<p>contacts``        managed mode: contacts (unique external id, typed common columns +
                       ``extra`` JSON)
``<p>companies``       managed mode: companies (same)
``<p>associations``    contact ↔ company links (unless mapped onto the customer's tables)
``<p>activities``      activities, unique on their idempotency key
``<p>tasks``           tasks
``<p>users``           managed mode: users listed by ``GET /users`` (filled by the operator)
=====================  ==========================================================================

In mapped mode only the side tables are created (not contacts, companies, users).

Migrations are a short ordered list of :class:`Step` (version, description, function). At
``open()`` the driver reads ``<p>schema_version`` and runs, in order, every step above it, each
in its own transaction together with the version bump, under a database lock (PostgreSQL
advisory lock, MySQL ``GET_LOCK``, SQLite ``BEGIN IMMEDIATE``) so two processes starting at once
do not both migrate. To change the schema: append a ``Step(N + 1, ...)`` that alters the tables
(``op``-style DDL through ``conn.execute``), and update the table definitions below to the new
shape. Never edit a released step. (On MySQL DDL commits implicitly, so a step there must be
safe to re-run.)
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "ManagedTables",
    "Step",
    "build_tables",
    "migrate",
]

#: Timestamps keep microseconds everywhere (MySQL's DATETIME defaults to whole seconds). They
#: are stored as naive UTC and returned as aware UTC.
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
#: SQLite only auto-increments an ``INTEGER PRIMARY KEY``.
Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
CrmId = sa.String(64)
#: Match-key values longer than this are not indexed (the driver skips them).
KEY_VALUE_LENGTH = 512


def _seq() -> sa.Column[int]:
    return sa.Column("seq", Seq, primary_key=True, autoincrement=True)


@dataclass(frozen=True)
class ManagedTables:
    """The adapter's tables for one prefix."""

    metadata: sa.MetaData
    prefix: str
    schema_version: sa.Table
    links: sa.Table
    extra_fields: sa.Table
    match_keys: sa.Table
    contacts: sa.Table
    companies: sa.Table
    associations: sa.Table
    activities: sa.Table
    tasks: sa.Table
    users: sa.Table

    def side_tables(self) -> list[sa.Table]:
        """The tables mapped mode needs besides the customer's."""
        return [
            self.schema_version,
            self.links,
            self.extra_fields,
            self.match_keys,
            self.associations,
            self.activities,
            self.tasks,
        ]

    def all_tables(self) -> list[sa.Table]:
        return [*self.side_tables(), self.contacts, self.companies, self.users]


#: Managed record tables: typed columns for the contract's common fields (field → column).
CONTACT_COLUMNS: dict[str, tuple[str, Any]] = {
    "email": ("email", sa.Text()),
    "firstName": ("first_name", sa.Text()),
    "lastName": ("last_name", sa.Text()),
    "phone": ("phone", sa.Text()),
    "company": ("company", sa.Text()),
    "title": ("title", sa.Text()),
    "linkedinUrl": ("linkedin_url", sa.Text()),
    "ownerId": ("owner_id", sa.Text()),
}
COMPANY_COLUMNS: dict[str, tuple[str, Any]] = {
    "name": ("name", sa.Text()),
    "domain": ("domain", sa.Text()),
    "industry": ("industry", sa.Text()),
    "numberOfEmployees": ("number_of_employees", sa.BigInteger()),
    "linkedinUrl": ("linkedin_url", sa.Text()),
    "ownerId": ("owner_id", sa.Text()),
}


def _record_table(md: sa.MetaData, name: str, columns: dict[str, tuple[str, Any]]) -> sa.Table:
    return sa.Table(
        name,
        md,
        _seq(),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        # Unique: what makes creates idempotent in managed mode (mapped mode keeps the
        # external ids in <prefix>links instead, since it cannot add a column).
        sa.Column("external_id", sa.String(255), nullable=False, unique=True),
        *(sa.Column(col, type_) for col, type_ in columns.values()),
        sa.Column("extra", Json, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
    )


def build_tables(prefix: str, collation: str | None = None) -> ManagedTables:
    """Table definitions (current version) for ``prefix``. ``collation`` (MariaDB/MySQL): the
    collation of every table, so that their text ids compare with the mapped tables' keys."""
    tables = _build(prefix)
    if collation is not None:
        # MySQL table options; the other databases ignore them.
        for table in tables.metadata.tables.values():
            table.dialect_kwargs["mysql_charset"] = collation.split("_", 1)[0]
            table.dialect_kwargs["mysql_collate"] = collation
    return tables


def _build(prefix: str) -> ManagedTables:
    md = sa.MetaData()
    p = prefix
    return ManagedTables(
        metadata=md,
        prefix=prefix,
        **_key_tables(md, p),
        contacts=_record_table(md, f"{p}contacts", CONTACT_COLUMNS),
        companies=_record_table(md, f"{p}companies", COMPANY_COLUMNS),
        **_engagement_tables(md, p),
    )


def _key_tables(md: sa.MetaData, p: str) -> dict[str, sa.Table]:
    """The schema's version, the links and extra fields of mapped mode, the match keys."""
    schema_version = sa.Table(
        f"{p}schema_version",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("applied_at", Timestamp, nullable=False),
    )
    links = sa.Table(
        f"{p}links",
        md,
        # The primary key is the unique (entity, external_id): one index fewer to
        # maintain per created record than a surrogate key plus a unique constraint.
        sa.Column("entity", sa.String(16), primary_key=True),
        sa.Column("external_id", sa.String(255), primary_key=True),
        sa.Column("crm_id", CrmId, nullable=True),
        # A random token per claiming transaction: whoever's claim survives creates the row.
        sa.Column("claim", sa.String(36), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Index(f"{p}links_crm_ix", "entity", "crm_id"),
    )
    extra_fields = sa.Table(
        f"{p}extra_fields",
        md,
        sa.Column("entity", sa.String(16), primary_key=True),
        sa.Column("crm_id", CrmId, primary_key=True),
        sa.Column("data", Json, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
    )
    match_keys = sa.Table(
        f"{p}match_keys",
        md,
        # The lookup index is the primary key (a record holds a value of a key once).
        sa.Column("entity", sa.String(16), primary_key=True),
        sa.Column("key_name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(KEY_VALUE_LENGTH), primary_key=True),
        sa.Column("crm_id", CrmId, primary_key=True),
        sa.Index(f"{p}keys_crm_ix", "entity", "crm_id"),
        # SQLite: the rows are the primary key's b-tree, with no rowid table beside it:
        # one b-tree fewer to write per key (two keys per created contact).
        sqlite_with_rowid=False,
    )
    return {
        "schema_version": schema_version,
        "links": links,
        "extra_fields": extra_fields,
        "match_keys": match_keys,
    }


def _engagement_tables(md: sa.MetaData, p: str) -> dict[str, sa.Table]:
    """Associations, activities, tasks and users."""
    associations = sa.Table(
        f"{p}associations",
        md,
        sa.Column("contact_id", CrmId, primary_key=True),
        sa.Column("company_id", CrmId, primary_key=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Index(f"{p}assoc_company_ix", "company_id"),
    )
    activities = sa.Table(
        f"{p}activities",
        md,
        _seq(),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("direction", sa.Text),
        sa.Column("subject", sa.Text),
        sa.Column("body", sa.Text),
        sa.Column("owner_id", sa.Text),
        sa.Column("occurred_at", Timestamp),
        sa.Column("contact_id", CrmId),
        sa.Column("company_id", CrmId),
        sa.Column("metadata", Json),
        sa.Column("extra", Json),
        sa.Column("idempotency_key", sa.String(255), unique=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Index(f"{p}act_contact_ix", "contact_id"),
        sa.Index(f"{p}act_company_ix", "company_id"),
    )
    tasks = sa.Table(
        f"{p}tasks",
        md,
        _seq(),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("type", sa.Text),
        sa.Column("owner_id", sa.Text),
        sa.Column("due_date", Timestamp),
        sa.Column("contact_id", CrmId),
        sa.Column("company_id", CrmId),
        sa.Column("completed", sa.Boolean, nullable=False, default=False),
        sa.Column("completed_at", Timestamp),
        sa.Column("extra", Json),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.Index(f"{p}task_contact_ix", "contact_id"),
        sa.Index(f"{p}task_company_ix", "company_id"),
    )
    users = sa.Table(
        f"{p}users",
        md,
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("email", sa.Text),
    )
    return {"associations": associations, "activities": activities, "tasks": tasks, "users": users}


@dataclass(frozen=True)
class Step:
    """One migration: bring the schema from ``version - 1`` to ``version``."""

    version: int
    description: str
    run: Callable[[sa.Connection, ManagedTables, bool], None]  # (conn, tables, mapped)


def _v1_create(conn: sa.Connection, tables: ManagedTables, mapped: bool) -> None:
    wanted = tables.side_tables() if mapped else tables.all_tables()
    tables.metadata.create_all(conn, tables=wanted, checkfirst=True)


def _v2_extra_fields(conn: sa.Connection, tables: ManagedTables, mapped: bool) -> None:
    if mapped:
        tables.metadata.create_all(conn, tables=[tables.extra_fields], checkfirst=True)


def _v3_match_keys_without_rowid(conn: sa.Connection, tables: ManagedTables, mapped: bool) -> None:
    """SQLite: rebuild ``<prefix>match_keys`` as a ``WITHOUT ROWID`` table (its rows kept).
    The other databases have no rowid: nothing to do there."""
    if conn.dialect.name != "sqlite":
        return
    mk = tables.match_keys
    found = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (mk.name,)
    ).scalar()
    if found is None or "WITHOUT ROWID" in " ".join(str(found).upper().split()):
        return  # created at version 3 already (or not at all)
    quote = conn.dialect.identifier_preparer.quote
    old = f"{mk.name}_v2"
    # The index moves with a renamed table: dropped first, so that its name is free.
    for index in mk.indexes:
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {quote(str(index.name))}")
    conn.exec_driver_sql(f"ALTER TABLE {quote(mk.name)} RENAME TO {quote(old)}")
    mk.create(conn)
    columns = ", ".join(quote(c.name) for c in mk.c)
    conn.exec_driver_sql(
        f"INSERT INTO {quote(mk.name)} ({columns}) SELECT {columns} FROM {quote(old)}"
    )
    conn.exec_driver_sql(f"DROP TABLE {quote(old)}")


MIGRATIONS: tuple[Step, ...] = (
    Step(1, "create the adapter's tables", _v1_create),
    Step(2, "mapped mode: <prefix>extra_fields for fields without a column", _v2_extra_fields),
    Step(3, "SQLite: <prefix>match_keys without a rowid", _v3_match_keys_without_rowid),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


async def _lock(conn: AsyncConnection, prefix: str) -> None:
    name = conn.dialect.name
    if name == "postgresql":
        key = zlib.crc32(f"enginy-migrate:{prefix}".encode())
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
    elif name in ("mysql", "mariadb"):
        await conn.execute(sa.text("SELECT GET_LOCK(:n, 30)"), {"n": f"enginy-migrate:{prefix}"})


async def _unlock(conn: AsyncConnection, prefix: str) -> None:
    if conn.dialect.name in ("mysql", "mariadb"):
        await conn.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": f"enginy-migrate:{prefix}"})


async def migrate(
    conn: AsyncConnection, tables: ManagedTables, *, mapped: bool, now: object
) -> int:
    """Run the pending steps; return the version reached. ``conn`` is in a transaction."""
    await _lock(conn, tables.prefix)
    try:
        await conn.run_sync(
            lambda c: tables.metadata.create_all(c, tables=[tables.schema_version], checkfirst=True)
        )
        sv = tables.schema_version
        current = (await conn.execute(sa.select(sv.c.version).where(sv.c.id == 1))).scalar()
        version = int(current or 0)
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"database schema is at version {version}, newer than this adapter's "
                f"{SCHEMA_VERSION}; upgrade the adapter"
            )
        for step in MIGRATIONS:
            if step.version <= version:
                continue
            await conn.run_sync(lambda c, s=step: s.run(c, tables, mapped))  # type: ignore[misc]
            if version == 0:
                await conn.execute(sv.insert().values(id=1, version=step.version, applied_at=now))
            else:
                await conn.execute(
                    sv.update().where(sv.c.id == 1).values(version=step.version, applied_at=now)
                )
            version = step.version
        return version
    finally:
        await _unlock(conn, tables.prefix)


async def table_collations(conn: AsyncConnection, names: list[str]) -> dict[str, str]:
    """MariaDB/MySQL: ``{table: collation}`` of the existing tables among ``names`` (in the
    connection's database)."""
    if conn.dialect.name not in ("mysql", "mariadb") or not names:
        return {}
    rows = await conn.execute(
        sa.text(
            "SELECT TABLE_NAME, TABLE_COLLATION FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN :names"
        ).bindparams(sa.bindparam("names", expanding=True)),
        {"names": names},
    )
    return {str(name): str(collation) for name, collation in rows}


async def align_collation(
    conn: AsyncConnection, tables: ManagedTables, collation: str
) -> list[str]:
    """MariaDB/MySQL: convert the adapter's existing tables to ``collation`` (only its own
    tables; a mapped table is never altered). Returns the tables converted."""
    names = [t.name for t in tables.metadata.tables.values()]
    found = await table_collations(conn, names)
    converted = []
    charset = collation.split("_", 1)[0]
    quote = conn.dialect.identifier_preparer.quote
    for name, current in sorted(found.items()):
        if current != collation:
            await conn.execute(
                sa.text(
                    f"ALTER TABLE {quote(name)} CONVERT TO CHARACTER SET {charset} "
                    f"COLLATE {collation}"
                )
            )
            converted.append(name)
    return converted
