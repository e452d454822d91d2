"""Our HTTP errors, and the one place where every error response is rendered (A.3).

Every error the service answers goes through :func:`error_response`: the Starlette
``exception_handlers`` built by :func:`exception_handlers` (API errors, driver errors, routing
404/405, unexpected exceptions) and the auth middleware, which runs before routing. The body is
always ``{"error": "<code>", "message": "<detail>"}`` (a few errors add documented keys, such as
``errors`` for a batch in which every record failed, or ``status`` for ``/health``).

Routes never catch driver errors: a :class:`backends.base.BackendError` escaping a route is
mapped here, by class, to its status code. An unexpected exception becomes a 500 whose body says
nothing about the cause; the detail goes to the server log only.

Nothing in an error body names the infrastructure behind the service: a 5xx never repeats the
driver's message (which may name a database host, user, port or file), only a fixed sentence
per error class. Every error body carries the request's id (``requestId``, also in the
``X-Request-ID`` header); the withheld detail is kept for the request's log line
(:func:`note_detail`), so an operator finds it from the id a caller reports.

The package, one module a job: :mod:`~adapter.errors.responses` renders a body and keeps what
it withholds for the log, :mod:`~adapter.errors.api` holds our own errors,
:mod:`~adapter.errors.validation` words a validation failure, :mod:`~adapter.errors.backend`
maps a driver's error to its status and public sentence, :mod:`~adapter.errors.handlers`
builds the exception handlers. Import the names from here.
"""

from __future__ import annotations

from adapter.errors.api import (
    ApiError,
    BadRequest,
    BatchFailed,
    ClientDisconnected,
    HealthUnavailable,
    InvalidJson,
    PayloadTooLarge,
    TaskNotFound,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)
from adapter.errors.backend import backend_status, is_backend_failure, public_message
from adapter.errors.handlers import exception_handlers
from adapter.errors.responses import (
    DETAIL_STATE,
    OUTCOME_STATE,
    OVERLOADED,
    REQUEST_ID_STATE,
    UNAUTHORIZED,
    UNAVAILABLE,
    error_response,
    note_detail,
    note_outcome,
    request_id_of,
)
from adapter.errors.validation import format_validation_error

__all__ = [
    "DETAIL_STATE",
    "OUTCOME_STATE",
    "OVERLOADED",
    "REQUEST_ID_STATE",
    "UNAUTHORIZED",
    "UNAVAILABLE",
    "ApiError",
    "BadRequest",
    "BatchFailed",
    "ClientDisconnected",
    "HealthUnavailable",
    "InvalidJson",
    "PayloadTooLarge",
    "TaskNotFound",
    "Unauthorized",
    "UnsupportedMediaType",
    "ValidationFailed",
    "backend_status",
    "error_response",
    "exception_handlers",
    "format_validation_error",
    "is_backend_failure",
    "note_detail",
    "note_outcome",
    "public_message",
    "request_id_of",
]
