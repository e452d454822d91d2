"""The service's configuration: one YAML file, validated at start-up.

* :mod:`adapter.config.schema` — :class:`Settings` and its sections, pure data;
* :mod:`adapter.config.fields` — the ``mapping:`` and ``matching:`` sections and their
  vocabulary (policies, normaliser names, default match keys);
* :mod:`adapter.config.observability` — the ``observability:`` section;
* :mod:`adapter.config.tls` — ``server.tls`` (HTTPS), checked against the files it names;
* :mod:`adapter.config.outbox` — the ``outbox:`` section;
* :mod:`adapter.config.limits` — ``server.limits``: time, connection and memory limits;
* :mod:`adapter.config.loading` — reading the YAML, ``${VAR}`` interpolation, the
  ``ENGINY_ADAPTER_*`` environment variables;
* :mod:`adapter.config.driver` — resolving ``backend.driver`` and validating its options;
* :mod:`adapter.config.errors` — :class:`ConfigError`: every problem, with its YAML path and
  never a configured value, so that it is safe to print and to log.

This package is the bottom of the front's layers but for the wire contract and the errors
(``docs/architecture.md``): it imports nothing from the rest of ``adapter``.
"""

from __future__ import annotations

from adapter.config.driver import build_backend
from adapter.config.errors import ConfigError, format_validation_error
from adapter.config.fields import (
    DEFAULT_MATCH_KEYS,
    DEFAULT_NORMALISER_BY_FIELD,
    NORMALISER_NAMES,
    EntityMappingConfig,
    KeySpec,
    MappingConfig,
    MatchingConfig,
    MatchKeyConfig,
    NullPolicy,
    UnmappedPolicy,
)
from adapter.config.limits import LimitsConfig
from adapter.config.loading import (
    ENV_API_KEY,
    ENV_CONFIG,
    ENV_DRY_RUN,
    ENV_HOST,
    ENV_PORT,
    ENV_UI_PASSWORD,
    check_combinations,
    interpolate,
    load_settings,
)
from adapter.config.observability import (
    LogsConfig,
    MetricsConfig,
    TelemetryConfig,
    split_listen,
)
from adapter.config.outbox import DEFAULT_OUTBOX_URL, OutboxBackoff, OutboxConfig
from adapter.config.schema import (
    DEFAULT_BACKEND,
    DEFAULT_MAX_BODY_BYTES,
    AuthConfig,
    BackendConfig,
    ServerConfig,
    Settings,
    UIConfig,
    UserConfig,
)
from adapter.config.tls import TLSConfig

__all__ = [
    "DEFAULT_BACKEND",
    "DEFAULT_MATCH_KEYS",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_NORMALISER_BY_FIELD",
    "DEFAULT_OUTBOX_URL",
    "ENV_API_KEY",
    "ENV_CONFIG",
    "ENV_DRY_RUN",
    "ENV_HOST",
    "ENV_PORT",
    "ENV_UI_PASSWORD",
    "NORMALISER_NAMES",
    "AuthConfig",
    "BackendConfig",
    "ConfigError",
    "EntityMappingConfig",
    "KeySpec",
    "LimitsConfig",
    "LogsConfig",
    "MappingConfig",
    "MatchKeyConfig",
    "MatchingConfig",
    "MetricsConfig",
    "NullPolicy",
    "OutboxBackoff",
    "OutboxConfig",
    "ServerConfig",
    "Settings",
    "TLSConfig",
    "TelemetryConfig",
    "UIConfig",
    "UnmappedPolicy",
    "UserConfig",
    "build_backend",
    "check_combinations",
    "format_validation_error",
    "interpolate",
    "load_settings",
    "split_listen",
]
