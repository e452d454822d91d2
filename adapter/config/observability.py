"""The ``observability:`` section: metrics and request logs (used by :mod:`adapter.ops`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["LogsConfig", "MetricsConfig", "TelemetryConfig", "check_listen", "split_listen"]


def check_listen(value: str | None, example: str) -> str | None:
    """Validate a ``host:port`` listen address (``[::1]:9100`` for IPv6)."""
    if value is None:
        return None
    _host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"must be host:port, e.g. {example}")
    return value


def split_listen(value: str) -> tuple[str, int]:
    """``"[::1]:9100"`` → ``("::1", 9100)``."""
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


class MetricsConfig(BaseModel):
    """``observability.metrics``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    #: Path of the exposition endpoint on the main port (protected by the API key).
    path: str = "/metrics"
    #: ``host:port`` of a separate, unauthenticated listener for Prometheus (e.g. bound to a
    #: private interface). When set, ``path`` is NOT served on the main port.
    listen: str | None = None

    @field_validator("path")
    @classmethod
    def _path_starts_with_slash(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with '/'")
        return value

    @field_validator("listen")
    @classmethod
    def _listen_is_host_port(cls, value: str | None) -> str | None:
        return check_listen(value, "127.0.0.1:9100")


class LogsConfig(BaseModel):
    """``observability.logs``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: ``json``: one JSON object per line (for log shippers); ``text``: human-readable.
    format: Literal["json", "text"] = "json"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: Debug only: log request/response bodies, secrets redacted and e-mails masked.
    bodies: bool = False
    #: Longest body excerpt logged when ``bodies`` is on.
    max_body_chars: int = Field(default=4000, ge=0)


class TelemetryConfig(BaseModel):
    """The ``observability:`` section of the YAML."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metrics: MetricsConfig = MetricsConfig()
    logs: LogsConfig = LogsConfig()
