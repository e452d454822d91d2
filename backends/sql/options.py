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

import importlib.util
import re
from typing import Any, Literal
from urllib.parse import quote, unquote

from pydantic import Field, SecretStr, field_validator, model_validator
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from backends.base import DriverOptions
from backends.registry import install_hint

from .mapped_options import MappedTable
from .related_options import (
    ACTIVITY_ATTRIBUTES,
    TASK_ATTRIBUTES,
    AssociationsMapping,
    EngagementTable,
    UsersTable,
)

__all__ = [
    "DEFAULT_URL",
    "AssociationsMapping",
    "EngagementTable",
    "MappedTable",
    "SQLOptions",
    "UsersTable",
    "safe_url",
    "url_secrets",
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

_QUERY_SECRET = re.compile(r"([?&][^=&#]*(?:pass|secret|token)[^=&#]*=)[^&#]*", re.IGNORECASE)


def _split_credentials(url: str) -> tuple[str, str, str, str] | None:
    """``(scheme://, user, password, rest)`` when ``url`` has an ``@`` after ``://``.

    The credentials end at the **last** ``@`` of the URL: a password holding a raw ``@``,
    ``/``, ``?`` or ``#`` then stays on the masked side, whereas SQLAlchemy's parser ends the
    password at the first ``@``. (An ``@`` in the query string makes more than the credentials
    masked: harmless.)
    """
    scheme, sep, rest = url.partition("://")
    if not sep or rest.startswith("/"):  # no authority (an SQLite path)
        return None
    at = rest.rfind("@")
    if at < 0:
        return None
    user, colon, password = rest[:at].partition(":")
    if not colon and any(c in user for c in "/?#"):
        # Not a plain user name: the split point is not trustworthy; show nothing of it.
        user, password = "", user
    return scheme + sep, user, password, rest[at + 1 :]


def safe_url(url: str, *, password: bool = False) -> str:
    """``url`` with its password masked, for logs and error messages: SQLAlchemy's own
    rendering with ``hide_password`` (``***``).

    The credentials are cut off at the last ``@`` first (see :func:`_split_credentials`) and
    only the user name is handed back to SQLAlchemy, so a password that is not
    percent-encoded cannot leak through SQLAlchemy's parse, which ends it at the first ``@``.
    ``password``: a password is configured separately (the ``password`` option); show it
    masked too. A password passed as a query argument (``?password=...``) is masked as well.
    """
    parts = _split_credentials(url)
    try:
        parsed = make_url(url if parts is None else parts[0] + parts[3])
    except (ArgumentError, ValueError):
        return "<unparsable database URL>"
    if parts is not None:
        user, secret = unquote(parts[1]), parts[2]
        parsed = parsed.set(username=user, password="***" if secret or password else None)
    elif password and parsed.host is not None:
        parsed = parsed.set(username=parsed.username or "", password="***")
    shown = parsed.render_as_string(hide_password=True)
    return _QUERY_SECRET.sub(r"\g<1>***", shown)


def url_secrets(url: str, password: str | None = None) -> tuple[str, ...]:
    """Every spelling of the password(s) in ``url`` (raw, percent-decoded, as SQLAlchemy
    parsed it) and ``password``: what error messages must never contain."""
    found: set[str] = set()
    if password:
        found.add(password)
    parts = _split_credentials(url)
    if parts is not None and parts[2]:
        found.add(parts[2])
    try:
        parsed = make_url(url).password
    except (ArgumentError, ValueError):
        parsed = None
    if parsed:
        found.add(str(parsed))
    found.update(m.group(0).split("=", 1)[1] for m in _QUERY_SECRET.finditer(url))
    for value in list(found):
        found.update({unquote(value), quote(value, safe="")})
    # Very short values (a one-letter password parsed from a bad URL) would mask every word.
    return tuple(sorted((v for v in found if len(v) >= 3), key=len, reverse=True))


def _check_dbapi(module: str) -> None:
    """Refuse, at validation time, a URL whose DBAPI module is not installed, with the
    ``pip install`` line that installs it (asyncpg and aiomysql are optional extras)."""
    # Looked up through the module attribute so that tests can monkeypatch it.
    if importlib.util.find_spec(module) is not None:
        return
    hint = install_hint(ModuleNotFoundError(f"No module named {module!r}", name=module))
    raise ValueError(
        f"the Python package {module!r} this URL needs is not installed; "
        + (f"run: {hint}" if hint else f"pip install {module}")
    )


class SQLOptions(DriverOptions):
    """Options of :class:`backends.sql.SQLBackend`."""

    #: SQLAlchemy async URL. A password written inside it must be URL-safe or
    #: percent-encoded (``@`` → ``%40``); better leave it out and use ``password``.
    url: str = Field(default=DEFAULT_URL, repr=False)
    #: The database password (``${DB_PASSWORD}``), set on the parsed URL as is: any
    #: character works, no encoding needed. Never logged.
    password: SecretStr | None = None
    mode: Literal["managed", "mapped"] = "managed"
    #: Mapped mode: the database schema of the customer's tables (PostgreSQL schema, MySQL
    #: database) wherever a table does not name its own; the adapter's tables stay in the
    #: connection's default schema.
    db_schema: str | None = Field(default=None, alias="schema")
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
    #: SQLite file: seconds between background WAL checkpoints (backends/sql/checkpoint.py);
    #: ``null`` leaves them to SQLite, inside the commits that grow the log past 1,000 pages.
    checkpoint_interval: float | None = Field(default=0.5, gt=0, le=3600)
    #: Mapped mode: the customer's tables.
    contacts: MappedTable | None = None
    companies: MappedTable | None = None
    associations: AssociationsMapping | None = None
    #: Users table (either mode) for ``GET /users``; without it the users capability is off
    #: (501, Enginy turns owner selection off). The adapter's own ``<prefix>users`` table may
    #: be named here, to fill it yourself.
    users: UsersTable | None = None
    #: Mapped mode: activities and tasks into the CRM's own tables (besides the adapter's
    #: copy in ``<prefix>activities`` / ``<prefix>tasks``); without them they stay in the
    #: adapter's tables only.
    activities: EngagementTable | None = None
    tasks: EngagementTable | None = None
    #: MariaDB/MySQL: the collation of the tables the adapter creates. Default: the one of
    #: the mapped contacts table's key (a different one makes joins fail with "Illegal mix
    #: of collations"), else the database's.
    collation: str | None = None

    model_config = DriverOptions.model_config | {"populate_by_name": True}

    @model_validator(mode="before")
    @classmethod
    def _default_schema(cls, data: Any) -> Any:
        """``schema`` applies to every customer table that does not name its own."""
        if not isinstance(data, dict) or not data.get("schema"):
            return data
        schema = data["schema"]

        def own(node: Any) -> Any:
            if isinstance(node, dict) and "schema" not in node:
                return {**node, "schema": schema}
            return node

        def lookups(node: Any) -> Any:
            # ``lookup: {table, ...}`` values read tables of the customer's schema too.
            if isinstance(node, dict):
                return {k: own(v) if k == "lookup" else lookups(v) for k, v in node.items()}
            if isinstance(node, list):
                return [lookups(v) for v in node]
            return node

        out = dict(data)
        for name in ("contacts", "companies", "associations", "users", "activities", "tasks"):
            section = out.get(name)
            if not isinstance(section, dict):
                continue
            section = lookups(own(section))
            for nested in ("targets", "join"):
                if isinstance(section.get(nested), dict):
                    section[nested] = own(section[nested])
            out[name] = section
        return out

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except (ArgumentError, ValueError):  # ValueError: a port that is not a number
            raise ValueError(
                "not a database URL (e.g. postgresql+asyncpg://user@host/db)"
            ) from None
        if url.drivername not in SUPPORTED_SCHEMES:
            raise ValueError(
                f"unsupported driver {url.drivername!r}; use one of "
                + ", ".join(sorted(SUPPORTED_SCHEMES))
            )
        _check_dbapi(url.get_driver_name())
        # SQLAlchemy ends the password at the first "@": a raw "@" in it moves the rest into
        # the host name (the wrong server would be contacted, the password shown as a host).
        if url.get_backend_name() != "sqlite" and "@" in f"{url.host or ''}{url.database or ''}":
            raise ValueError(
                "the URL holds an '@' after its credentials: a password containing '@' must be "
                "percent-encoded (%40), or given in the 'password' option instead"
            )
        return value

    @field_validator("password", mode="before")
    @classmethod
    def _empty_password(cls, value: Any) -> Any:
        # ``password: ${DB_PASSWORD:-}`` with the variable unset: no password option.
        return None if value == "" else value

    @field_validator("table_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,23}$", value):
            raise ValueError("letters, digits and _ only, starting with a letter or _, ≤24 chars")
        return value

    @model_validator(mode="after")
    def _one_password(self) -> SQLOptions:
        if self.password is not None and make_url(self.url).password is not None:
            raise ValueError("give the password either inside 'url' or as 'password', not both")
        return self

    @model_validator(mode="after")
    def _mapped_needs_tables(self) -> SQLOptions:
        if self.mode == "mapped" and (self.contacts is None or self.companies is None):
            raise ValueError("mode 'mapped' needs 'contacts' and 'companies' tables")
        mapped_only = ("contacts", "companies", "associations", "activities", "tasks")
        if self.mode == "managed" and any(getattr(self, name) for name in mapped_only):
            raise ValueError(
                "'contacts', 'companies', 'associations', 'activities' and 'tasks' apply to "
                "mode 'mapped'"
            )
        return self

    @field_validator("activities")
    @classmethod
    def _activity_columns(cls, value: EngagementTable | None) -> EngagementTable | None:
        if value is not None:
            value.check_attributes(ACTIVITY_ATTRIBUTES, "activities")
            if value.completed is not None:
                raise ValueError("'completed' describes tasks, not activities")
        return value

    @field_validator("tasks")
    @classmethod
    def _task_columns(cls, value: EngagementTable | None) -> EngagementTable | None:
        if value is not None:
            value.check_attributes(TASK_ATTRIBUTES, "tasks")
        return value

    @field_validator("collation")
    @classmethod
    def _check_collation(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[A-Za-z0-9_]{1,64}$", value):
            raise ValueError("a collation name: letters, digits and _")
        return value

    @property
    def dialect(self) -> str:
        """``sqlite``, ``postgresql`` or ``mysql``."""
        return SUPPORTED_SCHEMES[make_url(self.url).drivername]

    @property
    def safe_url(self) -> str:
        """The URL with its password masked (also a ``password`` given as an option)."""
        return safe_url(self.url, password=self.password is not None)

    @property
    def engine_url(self) -> URL:
        """The URL to connect to: ``url`` with the ``password`` option set on it (no
        percent-encoding involved). Never log it: it holds the password."""
        url = make_url(self.url)
        if self.password is not None:
            url = url.set(password=self.password.get_secret_value())
        return url

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every spelling of the password, for scrubbing messages (see :func:`url_secrets`)."""
        password = self.password.get_secret_value() if self.password is not None else None
        return url_secrets(self.url, password)
