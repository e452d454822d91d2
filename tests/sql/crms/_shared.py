"""What the five CRM fixtures share: a throw-away database per use, and the shapes their
"screen" queries answer in.

Every fixture creates a database of its own with a unique name on the server it is given
(other engineers share these servers), builds the CRM's tables in it with the CRM's own DDL,
seeds it, and drops the whole database afterwards. When the server does not answer, it skips
(or fails under ``ENGINY_REQUIRE_DATABASES=1``) exactly like ``tests/sql/conftest.py``.

The screen rows below are deliberately CRM-neutral, so one test can ask any of the five
"would your own contacts list show this person, with this email?".
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ..conftest import MYSQL_URL, POSTGRES_URL, require_server

__all__ = [
    "MYSQL_URL",
    "POSTGRES_URL",
    "CompanyDetail",
    "ContactDetail",
    "CrmDatabase",
    "Email",
    "ListedCompany",
    "ListedContact",
    "ListedUser",
    "OpenTask",
    "Seed",
    "TimelineEntry",
    "column_facts",
    "fresh_database",
    "rows",
    "table_facts",
]

Dialect = Literal["postgresql", "mysql"]


@dataclass(frozen=True)
class Email:
    address: str
    primary: bool


@dataclass(frozen=True)
class ListedContact:
    """One line of the CRM's people list."""

    id: str
    name: str
    email: str | None
    company: str | None


@dataclass(frozen=True)
class ContactDetail:
    """What the CRM's contact page shows of the fields Enginy writes."""

    id: str
    first_name: str | None
    last_name: str | None
    name: str
    title: str | None
    emails: tuple[Email, ...]
    company_id: str | None
    company: str | None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def primary_email(self) -> str | None:
        return next((e.address for e in self.emails if e.primary), None)


@dataclass(frozen=True)
class ListedCompany:
    """One line of the CRM's companies list."""

    id: str
    name: str
    website: str | None


@dataclass(frozen=True)
class CompanyDetail:
    id: str
    name: str
    website: str | None
    contact_ids: tuple[str, ...]
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TimelineEntry:
    """One item of the contact's history (notes, logged activities, messages)."""

    id: str
    kind: str
    subject: str | None
    body: str | None
    at: datetime | date | None


@dataclass(frozen=True)
class OpenTask:
    """One task the contact's page lists as still to do."""

    id: str
    title: str | None
    status: str | None
    due: datetime | date | None
    assignee_id: str | None


@dataclass(frozen=True)
class ListedUser:
    """One entry of the CRM's owner / assigned-user picker."""

    id: str
    name: str
    email: str | None


@dataclass(frozen=True)
class Seed:
    """The ids and stored values of the rows every fixture seeds, as the CRM wrote them.

    ``contact``: a visible person with a primary email, linked to ``company``;
    ``deleted_contact``: the same kind of person, soft-deleted the CRM's way (its email is
    still in the tables: a faithful adapter must not find it by email);
    ``company``: a visible company whose website is stored with a scheme or ``www.``
    (``company_website``), i.e. not as the bare ``company_domain`` Enginy sends;
    ``other_company``: a second visible company; ``user``: an active user.
    """

    contact_id: str
    contact_email: str
    deleted_contact_id: str
    deleted_contact_email: str
    company_id: str
    company_name: str
    company_website: str
    company_domain: str
    other_company_id: str
    user_id: str


class CrmDatabase(Protocol):
    """What every CRM fixture is: a live database with the CRM's tables, and its screens."""

    #: ``"suitecrm"``, ``"espocrm"``, ``"odoo"``, ``"civicrm"`` or ``"twenty"``
    key: str
    #: SQLAlchemy async URL of the fixture's own database (what a preset's DATABASE_URL is)
    url: str
    engine: AsyncEngine
    seed: Seed

    async def contacts(self) -> list[ListedContact]: ...
    async def contact(self, contact_id: str) -> ContactDetail | None: ...
    async def companies(self) -> list[ListedCompany]: ...
    async def company(self, company_id: str) -> CompanyDetail | None: ...
    async def timeline(self, contact_id: str) -> list[TimelineEntry]: ...
    async def open_tasks(self, contact_id: str) -> list[OpenTask]: ...
    async def users(self) -> list[ListedUser]: ...


def _dialect(url: str) -> Dialect:
    backend = make_url(url).get_backend_name()
    if backend == "postgresql":
        return "postgresql"
    if backend in ("mysql", "mariadb"):
        return "mysql"
    raise ValueError(f"CRM fixtures run on PostgreSQL or MariaDB, not {backend!r}")


@asynccontextmanager
async def fresh_database(
    server_url: str, crm: str, statements: Sequence[str]
) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """Create a uniquely named database on ``server_url``'s server, run ``statements`` (the
    CRM's DDL) in it, yield ``(its URL, an engine on it)``, and drop it afterwards.

    The database is created as an administrator would, with a plain ``CREATE DATABASE`` (the
    server's default character set and collation); each CRM's tables carry their own.
    """
    dialect = _dialect(server_url)
    label = "PostgreSQL" if dialect == "postgresql" else "MariaDB/MySQL"
    require_server(server_url, label)
    name = f"crm_{crm}_{uuid.uuid4().hex[:10]}"
    server = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    quote = '"' if dialect == "postgresql" else "`"
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        async with server.connect() as conn:
            await conn.execute(sa.text(f"CREATE DATABASE {quote}{name}{quote}"))
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                for statement in statements:
                    await conn.execute(sa.text(statement))
            yield url, engine
        finally:
            await engine.dispose()
            async with server.connect() as conn:
                force = " WITH (FORCE)" if dialect == "postgresql" else ""
                await conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quote}{name}{quote}{force}"))
    finally:
        await server.dispose()


async def rows(
    source: AsyncEngine | AsyncConnection, sql: str, **params: Any
) -> list[dict[str, Any]]:
    """Run one SELECT and return its rows as dicts."""
    if isinstance(source, AsyncConnection):
        result = await source.execute(sa.text(sql), params)
        return [dict(r) for r in result.mappings()]
    async with source.connect() as conn:
        result = await conn.execute(sa.text(sql), params)
        return [dict(r) for r in result.mappings()]


def text_id(value: object) -> str:
    """Ids as the adapter reports them: the key's value as a string."""
    return str(value)


@dataclass(frozen=True)
class ColumnFacts:
    """A column as the database reports it (``information_schema.columns``)."""

    type: str
    nullable: bool
    default: str | None
    collation: str | None
    generated: bool


async def column_facts(
    engine: AsyncEngine, table: str, schema: str | None = None
) -> dict[str, ColumnFacts]:
    """Every column of ``table`` with its type (MariaDB ``COLUMN_TYPE``, PostgreSQL
    ``data_type`` or, for user-defined types, the type name), nullability, default,
    collation and whether it is generated."""
    if engine.dialect.name == "postgresql":
        found = await rows(
            engine,
            """SELECT column_name AS name,
                      CASE WHEN data_type = 'USER-DEFINED' THEN udt_name ELSE data_type END
                        AS type,
                      is_nullable, column_default AS "default", collation_name AS collation,
                      is_generated = 'ALWAYS' AS generated
               FROM information_schema.columns
               WHERE table_schema = :schema AND table_name = :table""",
            schema=schema or "public",
            table=table,
        )
    else:
        found = await rows(
            engine,
            """SELECT COLUMN_NAME AS name, COLUMN_TYPE AS type, IS_NULLABLE AS is_nullable,
                      COLUMN_DEFAULT AS `default`, COLLATION_NAME AS collation,
                      EXTRA LIKE '%GENERATED%' AS generated
               FROM information_schema.COLUMNS
               WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :table""",
            table=table,
        )
    return {
        r["name"]: ColumnFacts(
            type=str(r["type"]),
            nullable=r["is_nullable"] == "YES",
            default=None if r["default"] is None else str(r["default"]),
            collation=r["collation"],
            generated=bool(r["generated"]),
        )
        for r in found
    }


async def table_facts(engine: AsyncEngine, table: str) -> dict[str, str]:
    """MariaDB: the table's ``ENGINE`` and default ``TABLE_COLLATION``."""
    found = await rows(
        engine,
        """SELECT ENGINE AS engine, TABLE_COLLATION AS collation FROM information_schema.TABLES
           WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :table""",
        table=table,
    )
    return {k: str(v) for k, v in found[0].items()} if found else {}
