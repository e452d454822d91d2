"""The Starlette ``exception_handlers``: every error that escapes a route is answered here.

API errors, driver errors (by class, see :mod:`adapter.errors.backend`), routing 404/405, a
client gone before its body was read, and unexpected exceptions (a 500 whose body says nothing
about the cause; the traceback goes to the server log).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from adapter.errors.api import ApiError, ClientDisconnected
from adapter.errors.backend import (
    backend_status,
    is_backend_failure,
    public_message,
    retry_after_header,
)
from adapter.errors.responses import error_response, note_detail, request_id_of
from backends.base import BackendError, SchemaError

__all__ = ["exception_handlers"]

logger = logging.getLogger("adapter.errors")

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
            headers=retry_after_header(exc),
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
