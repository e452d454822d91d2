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
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from backends.base import (
    AuthFailed,
    BackendError,
    Conflict,
    InvalidRecord,
    NotFound,
    RateLimited,
    SchemaError,
    Unavailable,
    Unsupported,
)

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

logger = logging.getLogger("adapter.errors")

_JSON_HEADERS = {"content-type": "application/json"}

#: Key of ``scope["state"]`` holding the request's id (set by the telemetry middleware, the
#: outermost one, before anything can answer).
REQUEST_ID_STATE = "request_id"
#: Key of ``scope["state"]`` holding what an error body did not say (see :func:`note_detail`).
DETAIL_STATE = "error_detail"
#: Key of ``scope["state"]`` holding the outcome of a request answered before routing (see
#: :func:`note_outcome`): metrics and logs label it with that instead of a route.
OUTCOME_STATE = "outcome"

#: The outcomes a request can be answered with before routing, one fixed label each.
UNAUTHORIZED = "unauthorized"
UNAVAILABLE = "unavailable"
OVERLOADED = "overloaded"


def request_id_of(scope: Mapping[str, Any]) -> str | None:
    """The id of the request ``scope`` belongs to, if the telemetry middleware gave it one."""
    state = scope.get("state")
    value = state.get(REQUEST_ID_STATE) if isinstance(state, Mapping) else None
    return value if isinstance(value, str) else None


def note_detail(scope: Any, detail: str) -> None:
    """Keep ``detail`` (the cause an error body withholds) for the request's log line."""
    state = scope.setdefault("state", {})
    if isinstance(state, dict):
        state[DETAIL_STATE] = detail


def note_outcome(scope: Any, outcome: str) -> None:
    """Say that the request was answered before routing, with ``outcome`` (one of
    :data:`UNAUTHORIZED`, :data:`UNAVAILABLE`, :data:`OVERLOADED`)."""
    state = scope.setdefault("state", {})
    if isinstance(state, dict):
        state[OUTCOME_STATE] = outcome


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
) -> Response:
    """Render one error: ``{"error": code, "message": message, **extra}`` with ``status``,
    plus ``requestId`` when the request has one."""
    body: dict[str, Any] = {"error": code, "message": message}
    if extra:
        body.update(extra)
    if request_id is not None:
        body["requestId"] = request_id
    all_headers = dict(_JSON_HEADERS)
    if headers:
        all_headers.update(headers)
    content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(content, status_code=status, headers=all_headers)


# --------------------------------------------------------------------------------------------
# Our errors
# --------------------------------------------------------------------------------------------


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
            headers=_retry_after(error),
            detail=str(error),
        )


class ClientDisconnected(ApiError):
    """The client went away before its request was read: nobody receives this answer. The
    status is nginx's 499 ("client closed request"), so that logs and metrics count it apart
    from both the service's errors (5xx) and the client's mistakes (4xx)."""

    status = 499
    code = "client_disconnected"


# --------------------------------------------------------------------------------------------
# Validation messages
# --------------------------------------------------------------------------------------------

_PLAIN_MESSAGES = {
    "missing": "field required",
    "string_too_short": "must not be empty",
    "string_pattern_mismatch": "must not be blank",
    "model_type": "expected a JSON object",
    "model_attributes_type": "expected a JSON object",
    "dict_type": "expected a JSON object",
    "list_type": "expected a JSON array",
    "string_type": "expected a string",
    "bool_type": "expected a boolean",
    "bool_parsing": "expected a boolean",
}


def _format_loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


#: The branch names pydantic appends to the location of an error in a union: the identifiers
#: of ``adapter/contract.py`` are "a string or an integer", which is one field to Enginy.
_UNION_BRANCHES = frozenset({"str", "int", "constrained-str", "function-after[str(), int]"})


def _merge_union_branches(errors: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    merged: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for error in errors:
        loc = tuple(error["loc"])
        if len(loc) > 1 and loc[-1] in _UNION_BRANCHES:
            loc = loc[:-1]
        merged.setdefault(loc, []).append({**error, "loc": loc})
    out: list[Mapping[str, Any]] = []
    for loc, group in merged.items():
        if len(group) == 1:
            out.append(group[0])
            continue
        # A constraint of one branch ("must not be empty") says more than "wrong type" twice.
        specific = [e for e in group if not str(e["type"]).endswith("_type")]
        out.append(
            specific[0]
            if specific
            else {"type": "id_type", "loc": loc, "msg": "expected a string or an integer"}
        )
    return out


def format_validation_error(errors: Sequence[Mapping[str, Any]], limit: int = 5) -> str:
    """``contacts[3].externalId: field required; ...`` (at most ``limit`` problems named)."""
    errors = _merge_union_branches(errors)
    parts = []
    for error in errors[:limit]:
        msg = _PLAIN_MESSAGES.get(error["type"], error["msg"])
        parts.append(f"{_format_loc(error['loc'])}: {msg}")
    if len(errors) > limit:
        parts.append(f"and {len(errors) - limit} more")
    return "; ".join(parts)


# --------------------------------------------------------------------------------------------
# Driver errors
# --------------------------------------------------------------------------------------------

#: Status code of each driver error class (the first class in the error's MRO wins).
_BACKEND_STATUS: dict[type[BackendError], int] = {
    NotFound: 404,
    Conflict: 409,
    InvalidRecord: 400,
    Unsupported: 501,
    # The schema or the configuration does not allow the operation: retrying cannot help
    # (Enginy retries a 503 for ever), an operator must act.
    SchemaError: 500,
    AuthFailed: 503,
    Unavailable: 503,  # RateLimited is a subclass
}


def is_backend_failure(error: BackendError) -> bool:
    """Whether ``error`` says the backend failed (an outage, refused credentials, a rate limit,
    an unknown error class), as opposed to refusing what the request asked: an unknown id, a
    conflict, an invalid record (4xx) or an operation it does not implement (501)."""
    status = backend_status(error)
    return status >= 500 and status != 501


def backend_status(error: BackendError) -> int:
    """The HTTP status for a driver error that failed a whole request."""
    for cls in type(error).__mro__:
        status = _BACKEND_STATUS.get(cls)
        if status is not None:
            return status
    # An error class of a third-party driver: transient ones are retried by Enginy.
    return 503 if error.retryable else 502


#: What a 5xx body says about a driver error, by class (first match in the error's MRO): the
#: driver's message may name a host, a user, a database or a file, so it is logged instead.
_PUBLIC_MESSAGES: dict[type[BackendError], str] = {
    RateLimited: "The CRM backend's rate limit was reached; retry later.",
    SchemaError: "The CRM backend's schema or the adapter's configuration does not allow this "
    "operation; an operator must fix it.",
    AuthFailed: "The CRM backend refused the adapter's credentials; an operator must fix its "
    "configuration.",
    Unavailable: "The CRM backend is unavailable; retry later.",
}


def public_message(error: BackendError) -> str:
    """The sentence an error body may carry for ``error`` (never the driver's own message)."""
    for cls in type(error).__mro__:
        message = _PUBLIC_MESSAGES.get(cls)
        if message is not None:
            return message
    if error.retryable:
        return "The CRM backend failed; retry later."
    return "The CRM backend failed."


def _retry_after(error: BackendError) -> dict[str, str]:
    seconds = getattr(error, "retry_after", None)
    if seconds is None or not error.retryable:
        return {}
    return {"Retry-After": str(max(0, math.ceil(seconds)))}


# --------------------------------------------------------------------------------------------
# Handlers
# --------------------------------------------------------------------------------------------

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}
_HTTP_MESSAGES = {
    404: "No such route",
    405: "Method not allowed on this route",
}


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if exc.detail is not None:
        note_detail(request.scope, exc.detail)
    return error_response(
        exc.status,
        exc.code,
        exc.message,
        extra=exc.extra,
        headers=exc.headers,
        request_id=request_id_of(request.scope),
    )


def _backend_error(scrub: Callable[[str], str]) -> Callable[[Request, Exception], Any]:
    async def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BackendError)
        status = backend_status(exc)
        if isinstance(exc, SchemaError):
            # The schema or the configuration refuses the operation: the driver's words say
            # which table or column, which whoever sees the answer needs in order to have it
            # fixed; without the backend's location or a secret, and kept for the log too.
            note_detail(request.scope, str(exc))
            message = scrub(exc.message)
        elif is_backend_failure(exc):
            # The driver's message is the operator's clue, and may name the database's host,
            # user or file: it goes to the request's log line (without a stack: an expected
            # failure mode), the caller gets the fixed sentence of the error's class and the
            # request id.
            note_detail(request.scope, str(exc))
            message = public_message(exc)
        else:
            # A 4xx names what the caller sent wrong, a 501 what is not implemented; the
            # driver's words stay, without the backend's location (a database named in a
            # constraint) or a secret.
            message = scrub(exc.message)
        return error_response(
            status,
            exc.code,
            message,
            headers=_retry_after(exc),
            request_id=request_id_of(request.scope),
        )

    return handler


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = _HTTP_MESSAGES.get(exc.status_code, str(exc.detail))
    return error_response(
        exc.status_code,
        code,
        message,
        headers=exc.headers,
        request_id=request_id_of(request.scope),
    )


async def _client_disconnect(request: Request, exc: Exception) -> Response:
    # Starlette's own exception when a body read finds the client gone (forms, request.body()
    # outside read_json): the same quiet 499 as ClientDisconnected.
    return await _api_error(request, ClientDisconnected("the client closed the connection"))


async def _unexpected(request: Request, exc: Exception) -> Response:
    # Starlette's ServerErrorMiddleware calls this, then re-raises so that the server logs the
    # traceback too. The response says nothing about the cause.
    logger.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        500,
        "internal_error",
        "An unexpected error occurred; the details are in the server log.",
        request_id=request_id_of(request.scope),
    )


def exception_handlers(
    scrub: Callable[[str], str] = lambda text: text,
) -> dict[Any, Callable[[Request, Exception], Any]]:
    """The ``exception_handlers`` mapping for :class:`starlette.applications.Starlette`.

    ``scrub`` removes secrets and the backend's location from a driver's message before a 4xx
    body quotes it."""
    return {
        ApiError: _api_error,
        BackendError: _backend_error(scrub),
        HTTPException: _http_exception,
        ClientDisconnect: _client_disconnect,
        Exception: _unexpected,
    }
