"""Our own errors: each one answered to Enginy as-is, with its status, code and a safe message."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from adapter.errors.backend import public_message, retry_after_header
from adapter.errors.validation import format_validation_error
from backends.base import BackendError

__all__ = [
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
]


class ApiError(Exception):
    """An error answered to Enginy as-is: ``status``, ``code`` and a safe ``message``."""

    status: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        #: What the message leaves out on purpose (a backend's own words): logged, not sent.
        self.detail = detail
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})


class BadRequest(ApiError):
    """400: the request is well-formed JSON but cannot be served as sent."""


class InvalidJson(ApiError):
    """400: the body is not valid JSON."""

    code = "invalid_json"


class ValidationFailed(ApiError):
    """400: wrong shape, wrong type or a missing required field (the message names it)."""

    code = "invalid_request"

    @classmethod
    def from_pydantic(cls, exc: ValidationError) -> ApiError:
        errors = exc.errors(include_url=False, include_input=False)
        if any(e["type"] == "json_invalid" for e in errors):
            detail = next(e for e in errors if e["type"] == "json_invalid")
            reason = str(detail.get("ctx", {}).get("error", "")) or "cannot be parsed"
            return InvalidJson(f"malformed JSON body: {reason}")
        return cls(format_validation_error(errors))


class Unauthorized(ApiError):
    """401: missing or wrong API key (A.2). The message never repeats the key."""

    status = 401
    code = "unauthorized"


class TaskNotFound(ApiError):
    """404: no task with this id (A.10)."""

    status = 404
    code = "task_not_found"

    def __init__(self, task_id: str) -> None:
        shown = task_id if len(task_id) <= 200 else task_id[:200] + "..."
        super().__init__(f"No task exists with ID: {shown}")


class PayloadTooLarge(ApiError):
    """413: the body is over ``server.max_body_bytes``."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    """415: the body is not declared as JSON."""

    status = 415
    code = "unsupported_media_type"


class BatchFailed(ApiError):
    """400: every record of a create batch failed for a permanent reason (A.5)."""

    code = "batch_failed"

    def __init__(self, errors: Sequence[Mapping[str, Any]]) -> None:
        super().__init__(
            f"all {len(errors)} records failed; see errors",
            extra={"results": [], "errors": list(errors)},
        )


class HealthUnavailable(ApiError):
    """503 from ``/health``: ``{"status": "unavailable", "error", "message"}`` (A.12). The
    message is the fixed one of the error's class; the driver's own goes to the log."""

    status = 503

    def __init__(self, error: BackendError) -> None:
        super().__init__(
            public_message(error),
            code=error.code,
            extra={"status": "unavailable"},
            headers=retry_after_header(error),
            detail=str(error),
        )


class ClientDisconnected(ApiError):
    """The client went away before its request was read: nobody receives this answer. The
    status is nginx's 499 ("client closed request"), so that logs and metrics count it apart
    from both the service's errors (5xx) and the client's mistakes (4xx)."""

    status = 499
    code = "client_disconnected"
