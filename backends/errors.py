"""The errors a driver raises or reports: one root, :class:`BackendError`, and its few kinds.

A driver translates its backend's failures into these at one choke point (an HTTP status
table, a database-exception context manager); the front maps each class to one HTTP status.
``retryable`` says whether the same call may succeed later (the front then answers 503).
Part of the driver interface: :mod:`backends.base` exports every name.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AuthFailed",
    "BackendError",
    "Conflict",
    "InvalidRecord",
    "NotFound",
    "RateLimited",
    "SchemaError",
    "Unavailable",
    "Unsupported",
]


class BackendError(Exception):
    """Root of every error a driver raises or reports.

    ``code`` is the short machine-readable code the front puts in ``{"error": ...}``. The
    message must be good enough to debug from one log line and must never contain a secret
    (token, password, connection string with credentials).
    """

    code: ClassVar[str] = "backend_error"
    #: Whether retrying the same call later may succeed (the front answers 503).
    retryable: ClassVar[bool] = False

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)
        self.message = message or (self.__class__.__doc__ or self.code).strip().splitlines()[0]
        if code is not None:
            self.code = code  # type: ignore[misc]

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class NotFound(BackendError):
    """The record, task or object does not exist."""

    code = "not_found"


class Conflict(BackendError):
    """The write conflicts with an existing record (for example a unique value)."""

    code = "conflict"


class InvalidRecord(BackendError):
    """The backend rejected this record's values (too long, wrong type, unknown field...)."""

    code = "invalid_record"


class Unsupported(BackendError):
    """The driver does not implement this operation."""

    code = "not_implemented"


class SchemaError(BackendError):
    """The backend's schema or the driver's configuration does not allow the operation (a
    missing table or column, a type or collation the statement cannot use): retrying will
    fail the same way until an operator changes the schema or the configuration."""

    code = "backend_schema_error"


class AuthFailed(BackendError):
    """The backend refused the adapter's own credentials (token, password)."""

    code = "backend_auth_failed"
    retryable = True  # an operator can fix it; Enginy should come back later


class Unavailable(BackendError):
    """The backend cannot be reached or failed transiently (retry later)."""

    code = "backend_unavailable"
    retryable = True

    def __init__(
        self, message: str = "", *, retry_after: float | None = None, code: str | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class RateLimited(Unavailable):
    """The backend's rate limit was hit and retries did not get through in time."""

    code = "backend_rate_limited"
