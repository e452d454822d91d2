"""Typed options of the SQL driver (``backend.options`` in the YAML).

Two schema modes:

* ``managed`` (default): the adapter creates and migrates its own tables, named
  ``<table_prefix>contacts``, ``<table_prefix>companies``, ... .
* ``mapped``: contacts and companies live in the customer's existing tables, named here with
  their primary key and id strategy. Field names reaching the driver are column names (the YAML
  field mapping renames Enginy's names to them). The adapter never alters these tables; what it
  needs besides (external id links, normalised match keys, activities, tasks) lives in
  adapter-owned side tables under ``table_prefix``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from backends.base import DriverOptions

__all__ = [
    "DEFAULT_URL",
    "AssociationsMapping",
    "MappedTable",
    "SQLOptions",
    "UsersTable",
    "safe_url",
]

#: The embedded default: an SQLite file in the working directory.
DEFAULT_URL = "sqlite+aiosqlite:///./enginy-adapter.db"

#: Async drivers we support, by URL scheme (``dialect+driver``).
SUPPORTED_SCHEMES = {
    "sqlite+aiosqlite": "sqlite",
    "postgresql+asyncpg": "postgresql",
    "mysql+aiomysql": "mysql",
    "mariadb+aiomysql": "mysql",
}

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


def _identifier(value: str) -> str:
    # Identifiers are quoted by SQLAlchemy anyway; refusing odd characters keeps error messages
    # and index names predictable across the three databases.
    if not _IDENT.match(value) or len(value) > 63:
        raise ValueError(f"{value!r} is not a plain SQL identifier (letters, digits, _; ≤63 chars)")
    return value


def safe_url(url: str) -> str:
    """``url`` with its password masked, for logs and error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable database URL>"


class MappedTable(DriverOptions):
    """A customer table holding contacts or companies (mapped mode)."""

    table: str
    #: The primary-key column; its value (as a string) is the record's ``crmId``.
    primary_key: str = "id"
    #: ``database``: the database makes the id (identity, sequence, autoincrement or a default);
    #: ``uuid``: the adapter makes a UUID string and inserts it.
    id_strategy: Literal["database", "uuid"] = "database"
    #: Optional JSON (or text) column receiving fields that have no column of their own. Without
    #: it such a field is a per-record ``invalid_record`` error.
    json_column: str | None = None

    @field_validator("table", "primary_key", "json_column")
    @classmethod
    def _check_identifier(cls, value: str | None) -> str | None:
        return value if value is None else _identifier(value)


class AssociationsMapping(DriverOptions):
    """Where contact → company links go in mapped mode: a link table, or a foreign-key column
    of the contacts table (then a contact has at most one company; the last link wins)."""

    table: str | None = None
    contact_column: str = "contact_id"
    company_column: str = "company_id"
    #: Column of the contacts table holding the company's primary key.
    fk_column: str | None = None

    @model_validator(mode="after")
    def _one_place(self) -> AssociationsMapping:
        if (self.table is None) == (self.fk_column is None):
            raise ValueError("set exactly one of 'table' (a link table) or 'fk_column'")
        for name in (self.table, self.contact_column, self.company_column, self.fk_column):
            if name is not None:
                _identifier(name)
        return self


class UsersTable(DriverOptions):
    """A table listing the CRM's users (``GET /users``)."""

    table: str
    id_column: str = "id"
    name_column: str = "name"
    email_column: str | None = "email"


class SQLOptions(DriverOptions):
    """Options of :class:`backends.sql.SQLBackend`."""

    #: SQLAlchemy async URL; put the password in an environment variable: ``${DB_PASSWORD}``.
    url: str = Field(default=DEFAULT_URL, repr=False)
    mode: Literal["managed", "mapped"] = "managed"
    #: Prefix of every table the adapter owns (managed tables and mapped-mode side tables).
    table_prefix: str = "enginy_"
    pool_size: int = Field(default=5, ge=1, le=200)
    max_overflow: int = Field(default=5, ge=0, le=200)
    #: Seconds to wait for a free pooled connection before answering 503.
    pool_timeout: float = Field(default=10.0, gt=0)
    #: Seconds to establish a connection (SQLite: how long to wait for a locked database).
    connect_timeout: float = Field(default=10.0, gt=0)
    #: Seconds one statement may run (PostgreSQL, MariaDB); ``null`` for no limit.
    statement_timeout: float | None = Field(default=30.0, gt=0)
    #: Mapped mode: the customer's tables.
    contacts: MappedTable | None = None
    companies: MappedTable | None = None
    associations: AssociationsMapping | None = None
    #: Users table (either mode). In managed mode the adapter's own ``<prefix>users`` table is
    #: used when this is not set.
    users: UsersTable | None = None

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "not a database URL (e.g. postgresql+asyncpg://user@host/db)"
            ) from None
        if url.drivername not in SUPPORTED_SCHEMES:
            raise ValueError(
                f"unsupported driver {url.drivername!r}; use one of "
                + ", ".join(sorted(SUPPORTED_SCHEMES))
            )
        return value

    @field_validator("table_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,23}$", value):
            raise ValueError("letters, digits and _ only, starting with a letter or _, ≤24 chars")
        return value

    @model_validator(mode="after")
    def _mapped_needs_tables(self) -> SQLOptions:
        if self.mode == "mapped" and (self.contacts is None or self.companies is None):
            raise ValueError("mode 'mapped' needs 'contacts' and 'companies' tables")
        if self.mode == "managed" and (self.contacts or self.companies or self.associations):
            raise ValueError("'contacts', 'companies' and 'associations' apply to mode 'mapped'")
        return self

    @property
    def dialect(self) -> str:
        """``sqlite``, ``postgresql`` or ``mysql``."""
        return SUPPORTED_SCHEMES[make_url(self.url).drivername]

    @property
    def safe_url(self) -> str:
        """The URL with its password masked."""
        return safe_url(self.url)
