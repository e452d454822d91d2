"""The ``outbox:`` section: the durable queue for writes Enginy does not wait on.

Pure data, used by :mod:`adapter.outbox`. Off by default. Where the queue lives is an
SQLAlchemy URL: an SQLite file (the default, for one host) or PostgreSQL (several replicas
sharing one queue). Never the CRM's own database: when that is down, so would be the queue.
"""

from __future__ import annotations

import re
from typing import Final

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import URL, make_url

from backends.sql.options import SQLOptions

__all__ = ["DEFAULT_OUTBOX_URL", "OUTBOX_DIALECTS", "OutboxBackoff", "OutboxConfig"]

#: The default queue: an SQLite file in the working directory, beside the embedded store.
DEFAULT_OUTBOX_URL: Final = "sqlite+aiosqlite:///./enginy-outbox.db"

#: The stores the queue can live in, by URL scheme.
OUTBOX_DIALECTS: Final = {"sqlite+aiosqlite": "sqlite", "postgresql+asyncpg": "postgresql"}

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class OutboxBackoff(BaseModel):
    """``outbox.backoff``: the wait before delivering an item again after a transient failure:
    ``first`` seconds, times ``factor`` per failed attempt, at most ``cap`` seconds, plus up to
    ``jitter`` seconds at random (replicas do not retry in step)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    first: float = Field(default=1.0, gt=0)
    factor: float = Field(default=2.0, ge=1)
    cap: float = Field(default=60.0, gt=0)
    jitter: float = Field(default=1.0, ge=0)


class OutboxConfig(BaseModel):
    """The ``outbox:`` section of the YAML."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Queue writes that fail for a passing reason instead of answering 503.
    enabled: bool = False
    #: Where the queue lives: ``sqlite+aiosqlite:///path`` or ``postgresql+asyncpg://...``.
    url: str = Field(default=DEFAULT_OUTBOX_URL, repr=False)
    #: The PostgreSQL password (``${OUTBOX_DB_PASSWORD}``); never logged.
    password: SecretStr | None = None
    #: The queue's table (created when missing).
    table: str = "enginy_outbox"
    #: Items delivered per round (at most one per record at a time).
    batch_size: int = Field(default=100, ge=1, le=1000)
    #: Single-item deliveries (activities, tasks) running at once.
    concurrency: int = Field(default=4, ge=1, le=64)
    #: Seconds between looks at the queue when nothing woke the deliverer (other replicas'
    #: writes are seen this late at most).
    poll_seconds: float = Field(default=1.0, gt=0, le=60)
    #: While the backend is down: seconds between two checks (``ping``) that it is back.
    #: When it is, every item waiting on the outage is due at once.
    probe_seconds: float = Field(default=2.0, gt=0, le=300)
    backoff: OutboxBackoff = OutboxBackoff()
    #: An item still undelivered this long after it was queued becomes a dead letter (kept,
    #: for ``enginy-adapter outbox retry``). ``null``: retried until delivered.
    max_age_seconds: float | None = Field(default=7 * 24 * 3600.0, gt=0)
    #: Connections to the queue's database (PostgreSQL).
    pool_size: int = Field(default=5, ge=1, le=100)
    #: Seconds to connect to the queue's database (SQLite: to wait for its lock).
    connect_timeout: float = Field(default=10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        try:
            # The SQL driver's own checks: a parsable URL, its DBAPI installed, no raw '@'.
            SQLOptions.model_validate({"url": value})
        except ValidationError as exc:
            raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
        url = make_url(value)
        if url.drivername not in OUTBOX_DIALECTS:
            raise ValueError(
                "the outbox lives in SQLite or PostgreSQL: use "
                + " or ".join(f"{scheme}://..." for scheme in OUTBOX_DIALECTS)
            )
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            raise ValueError("an in-memory SQLite queue is lost on restart: give a file path")
        return value

    @field_validator("table")
    @classmethod
    def _check_table(cls, value: str) -> str:
        if not _TABLE.match(value):
            raise ValueError("letters, digits and _ only, starting with a letter or _")
        return value

    @model_validator(mode="after")
    def _one_password(self) -> OutboxConfig:
        if self.password is not None and make_url(self.url).password is not None:
            raise ValueError("give the password either inside 'url' or as 'password', not both")
        return self

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return OUTBOX_DIALECTS[make_url(self.url).drivername]

    def sql_options(self) -> SQLOptions:
        """The queue's database as the SQL driver's options, for its engine, its URL
        rendering and its password scrubbing (``engine_url``, ``safe_url``, ``secrets``)."""
        return SQLOptions(
            url=self.url,
            password=self.password,
            pool_size=self.pool_size,
            connect_timeout=self.connect_timeout,
            # The queue's writes are small rows: SQLite's own checkpoints (in the commit that
            # grows the log past 1,000 pages) suit it; the driver's background task is not run.
            checkpoint_interval=None,
        )

    @property
    def engine_url(self) -> URL:
        """The URL to connect to, password included: never log it."""
        return self.sql_options().engine_url

    @property
    def safe_url(self) -> str:
        """The URL with its password masked, for messages."""
        return self.sql_options().safe_url

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every spelling of the password, for scrubbing messages."""
        return self.sql_options().secrets
