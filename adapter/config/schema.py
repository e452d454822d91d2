"""The service's configuration as data: :class:`Settings` and its sections.

Shape (``config.example.yaml`` documents every option)::

    server:        {host, port, root_path, max_body_bytes, health_cache_seconds, workers, tls,
                    limits: {...}, ...}
    auth:          {header, keys}
    backend:       {driver, options}     # options validated by the driver's Options model
    mapping:       {contacts: {...}, companies: {...}}
    matching:      {contacts: [...], companies: [...]}
    users:         null | [{id, name, email}]
    observability: {metrics: {...}, logs: {...}}
    ui:            {enabled, password, listen, max_failed_logins, lockout_seconds, ...}
    outbox:        {enabled, url, password, table, batch_size, backoff, max_age_seconds, ...}

Every model rejects unknown keys, so a misspelt option fails at start-up instead of being
silently ignored; each option has one spelling. This module is pure data: loading the YAML is
:mod:`adapter.config.loading`, building the driver :mod:`adapter.config.driver`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from adapter.config.fields import MappingConfig, MatchingConfig, Section
from adapter.config.limits import LimitsConfig
from adapter.config.observability import TelemetryConfig, check_listen
from adapter.config.outbox import OutboxConfig
from adapter.config.tls import TLSConfig
from adapter.redaction import option_locations, option_secrets

__all__ = [
    "DEFAULT_BACKEND",
    "DEFAULT_MAX_BODY_BYTES",
    "AuthConfig",
    "BackendConfig",
    "ServerConfig",
    "Settings",
    "UIConfig",
    "UserConfig",
]

#: The embedded default backend: what ``serve`` runs on when the configuration names no driver.
#: The single place to change it. An SQLite file in the working directory, so data survives a
#: restart (the SQL driver's ``url`` option moves it).
DEFAULT_BACKEND: Final[Mapping[str, Any]] = MappingProxyType(
    {"driver": "sql", "options": {"url": "sqlite+aiosqlite:///./enginy-adapter.db"}}
)

DEFAULT_MAX_BODY_BYTES: Final = 10 * 1024 * 1024


class ServerConfig(Section):
    """``server:`` — where and how the HTTP front listens."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    #: Path prefix the service is served under (Enginy's ``baseUrl`` may carry one), e.g.
    #: ``/enginy``. Empty: served at the root.
    root_path: str = ""
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0)
    #: How long a ``/health`` backend check is reused, so probes never hammer the CRM.
    health_cache_seconds: float = Field(default=5.0, ge=0)
    #: Worker processes. More than one needs a backend shared between processes (SQL on a
    #: database server, HubSpot); the memory driver refuses (docs/operations.md).
    workers: int = Field(default=1, ge=1, le=64)
    #: After SIGTERM, seconds in-flight requests get to finish before connections are closed.
    graceful_shutdown_seconds: float = Field(default=25.0, ge=0)
    #: HTTPS: a certificate and its key (:mod:`adapter.config.tls`). ``null``: plain HTTP,
    #: for a service behind a reverse proxy that terminates TLS.
    tls: TLSConfig | None = None
    #: Time, connection and memory limits per process (:mod:`adapter.config.limits`).
    limits: LimitsConfig = Field(default_factory=LimitsConfig)

    @field_validator("limits", mode="before")
    @classmethod
    def _empty_limits(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("root_path")
    @classmethod
    def _check_root_path(cls, value: str) -> str:
        value = value.strip()
        if value in ("", "/"):
            return ""
        if not value.startswith("/"):
            raise ValueError("must start with '/' (for example /enginy)")
        if any(ch in value for ch in "?#") or any(ch.isspace() for ch in value):
            raise ValueError("must be a plain path without query, fragment or spaces")
        return value.rstrip("/")


_HEADER_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


class AuthConfig(Section):
    """``auth:`` — the API key(s) Enginy sends, and in which header."""

    #: Header name, matched case-insensitively (Enginy's ``apiKeyHeader``).
    header: str = "X-API-Key"
    #: Valid keys; several at once allow rotation. Empty values are ignored, so that
    #: ``${ENGINY_API_KEY:-}`` means "none configured" (then ``serve`` generates one).
    keys: list[SecretStr] = Field(default_factory=list)

    @field_validator("header")
    @classmethod
    def _check_header(cls, value: str) -> str:
        value = value.strip()
        if not _HEADER_TOKEN.match(value):
            raise ValueError("must be a valid HTTP header name (letters, digits, '-')")
        return value

    @field_validator("keys")
    @classmethod
    def _drop_empty_keys(cls, keys: list[SecretStr]) -> list[SecretStr]:
        kept: list[SecretStr] = []
        seen: set[str] = set()
        for key in keys:
            secret = key.get_secret_value().strip()
            if secret and secret not in seen:
                seen.add(secret)
                kept.append(SecretStr(secret))
        return kept


class BackendConfig(Section):
    """``backend:`` — the driver and its options (checked by the driver's ``Options`` model
    when the backend is built, see :func:`build_backend`)."""

    #: A built-in name (``memory``, ``sql``, ``hubspot``), an entry-point name, or
    #: ``package.module:Class``.
    driver: str = Field(default=DEFAULT_BACKEND["driver"], min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _embedded_default(cls, data: Any) -> Any:
        # The default options belong to the default driver only: ``backend: {driver: hubspot}``
        # must not inherit the embedded store's options.
        if isinstance(data, Mapping) and "driver" not in data:
            data = {"driver": DEFAULT_BACKEND["driver"], **data}
            data.setdefault("options", dict(DEFAULT_BACKEND["options"]))
        return data

    @field_validator("driver")
    @classmethod
    def _strip_driver(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must name a driver")
        return value

    @field_validator("options", mode="before")
    @classmethod
    def _null_options(cls, value: Any) -> Any:
        return {} if value is None else value


class UserConfig(Section):
    """One entry of the static ``users:`` list served by ``GET /users``."""

    id: str = Field(min_length=1)
    name: str
    email: str | None = None


class UIConfig(Section):
    """The ``ui:`` section of the YAML."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    #: Dashboard password (HTTP Basic, any username); never an API key. Unset: ``serve``
    #: generates one at start-up and prints it once (``ENGINY_ADAPTER_UI_PASSWORD`` sets it).
    password: SecretStr | None = None
    #: ``host:port`` of a listener of its own for the dashboard (e.g. ``127.0.0.1:8081``,
    #: reached through an SSH tunnel or a VPN). When set, ``/ui`` is not served on the main
    #: port. Needs ``server.workers: 1``.
    listen: str | None = None
    #: Failed logins allowed from one client address (an IPv6 /64) before it is refused with
    #: 429 until ``lockout_seconds`` have passed without a failure.
    max_failed_logins: int = Field(default=10, ge=1, le=1000)
    lockout_seconds: float = Field(default=300.0, gt=0, le=86_400)
    #: How many recent calls the dashboard keeps (a ring buffer in memory, per process).
    recent_calls: int = Field(default=200, ge=1, le=100_000)
    #: The URL Enginy reaches this service at (``https://crm-adapter.example.com/enginy``);
    #: used for the settings to paste and the record-link templates. Unset: taken from the
    #: request (fine when no proxy rewrites the host).
    public_base_url: str | None = None
    #: Records per page in the lists.
    page_size: int = Field(default=50, ge=1, le=1000)

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str | None) -> str | None:
        return check_listen(value, "127.0.0.1:8081")

    @field_validator("public_base_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class Settings(Section):
    """The whole configuration."""

    server: ServerConfig = Field(default_factory=ServerConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    backend: BackendConfig = Field(default_factory=BackendConfig)
    mapping: MappingConfig = Field(default_factory=MappingConfig)
    matching: MatchingConfig = Field(default_factory=MatchingConfig)
    #: ``null``: ``GET /users`` asks the backend (501 when it cannot list users).
    users: list[UserConfig] | None = None
    #: Metrics and request logs (``adapter/ops/telemetry.py``, ``adapter/ops/metrics.py``).
    observability: TelemetryConfig = Field(default_factory=TelemetryConfig)
    #: The dashboard at ``/ui`` (``adapter/http/dashboard.py``).
    ui: UIConfig = Field(default_factory=UIConfig)
    #: The durable queue for writes while the backend is down (``adapter/outbox/``).
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)

    @field_validator(
        "server",
        "auth",
        "backend",
        "mapping",
        "matching",
        "observability",
        "ui",
        "outbox",
        mode="before",
    )
    @classmethod
    def _empty_section(cls, value: Any) -> Any:
        # ``server:`` with nothing under it loads as None; treat it as "all defaults".
        return {} if value is None else value

    def secret_values(self) -> tuple[str, ...]:
        """Every configured secret, for :func:`adapter.redaction.redact`: the API keys, the
        dashboard password and the backend options that look secret (``password``, ``token``,
        any :class:`~pydantic.SecretStr`) and the outbox database's password."""
        values = [key.get_secret_value() for key in self.auth.keys]
        if self.ui.password is not None:
            values.append(self.ui.password.get_secret_value())
        tls = self.server.tls
        if tls is not None and tls.keyfile_password is not None:
            values.append(tls.keyfile_password.get_secret_value())
        values.extend(option_secrets(self.backend.options))
        values.extend(self.outbox.secrets)
        return tuple(dict.fromkeys(values))

    def location_values(self) -> tuple[str, ...]:
        """Where the backend lives (its host, user, database, file: see
        :func:`adapter.redaction.option_locations`), for masking in answers to callers: a
        driver's per-record message may quote them (MariaDB names the database in a failed
        constraint)."""
        return tuple(dict.fromkeys(option_locations(self.backend.options)))
