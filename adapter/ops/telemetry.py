"""Metrics and the recent-calls buffer: what flows through the adapter.

* :class:`~adapter.ops.metrics.Telemetry` (in :mod:`adapter.ops.metrics`, re-exported here)
  owns one Prometheus :class:`~prometheus_client.CollectorRegistry` per app (never the
  process-global one, so several apps in one process — tests, embedding — do not collide) and
  the ring buffer of recent calls the dashboard shows.
* :class:`TelemetryMiddleware` is a *pure* ASGI middleware (no ``BaseHTTPMiddleware``: it adds
  no task, no body buffering on the hot path). Per request it takes the id from
  ``X-Request-ID`` or makes one, returns it in the response header, counts the request by
  route *template* and status, observes its latency and writes ONE log line
  (:mod:`adapter.ops.logs` formats it). An exception no handler took becomes a 500 here,
  logged once with its traceback and the request id.
* Every label comes from a closed set, so that no request can add a time series: the route
  is the matched route's template, or a fixed label by outcome (:data:`UNAUTHORIZED`,
  :data:`UNAVAILABLE`, :data:`OVERLOADED`, :data:`UNMATCHED`); a method outside the usual
  HTTP ones is counted as ``OTHER``; error codes are short tokens, at most
  :data:`MAX_ERROR_CODES` of them. A request without a valid key is counted and logged but
  kept out of the recent-calls buffer.
* Process metrics (CPU seconds, resident memory, open and maximum file descriptors, start
  time) come from prometheus_client's :class:`~prometheus_client.ProcessCollector`; the
  connection-level counters of :mod:`adapter.ops.connections` are exported too.
* :func:`adapter.ops.instrument.instrument_backend` times every public method of a driver
  instance and counts records processed per operation and outcome; drivers that retry
  upstream calls report each retry through ``backend.on_upstream_retry(reason)`` (set by
  :func:`adapter.app.create_app`).

By default nothing from a body is logged, nor any header; ``logs.bodies: true`` (debug only)
logs request and response bodies with secrets redacted and e-mail addresses masked.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from adapter.errors import REQUEST_ID_STATE, error_response
from adapter.http.auth import key_matches
from adapter.ops.logs import CURRENT_REQUEST, RequestContext, body_for_log
from adapter.ops.metrics import (
    ACCESS_LOGGER,
    DISCONNECTED,
    MAX_ERROR_CODES,
    OTHER_METHOD,
    OVERLOADED,
    UNAUTHORIZED,
    UNAVAILABLE,
    UNMATCHED,
    CallRecord,
    Telemetry,
)

__all__ = [
    "ACCESS_LOGGER",
    "DISCONNECTED",
    "MAX_ERROR_CODES",
    "OTHER_METHOD",
    "OVERLOADED",
    "UNAUTHORIZED",
    "UNAVAILABLE",
    "UNMATCHED",
    "CallRecord",
    "Telemetry",
    "TelemetryMiddleware",
    "metrics_endpoint",
    "serve_metrics_separately",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_log = logging.getLogger("adapter.ops")


# --------------------------------------------------------------------------------------------
# The middleware
# --------------------------------------------------------------------------------------------

_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
# Error bodies are small; read at most this much of one to find its "error" code.
_ERROR_BODY_LIMIT = 8192


class _Exchange:
    """One request as the middleware sees it go by: the answer's status, whether it started,
    the first bytes of an error body (for its ``error`` code) and, when bodies are logged, both
    bodies. Adds the ``X-Request-ID`` header to the answer."""

    __slots__ = (
        "_receive",
        "_send",
        "error_chunks",
        "header",
        "log_bodies",
        "request_body",
        "response_body",
        "started",
        "status",
    )

    def __init__(self, receive: Receive, send: Send, request_id: str, log_bodies: bool) -> None:
        self._receive, self._send = receive, send
        self.status = 500
        self.started = False
        self.error_chunks: list[bytes] | None = None
        self.request_body: list[bytes] = []
        self.response_body: list[bytes] = []
        self.header = request_id.encode("latin-1")
        self.log_bodies = log_bodies

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.request_body.append(message.get("body", b""))
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            headers = [(k, v) for k, v in message.get("headers", ()) if k != b"x-request-id"]
            headers.append((b"x-request-id", self.header))
            message["headers"] = headers
            if self.status >= 400:
                self.error_chunks = []
        elif message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            chunks = self.error_chunks
            if chunks is not None and sum(map(len, chunks)) < _ERROR_BODY_LIMIT:
                chunks.append(chunk)
            if self.log_bodies:
                self.response_body.append(chunk)
        await self._send(message)

    def error(self) -> str | None:
        """The answer's error code, if it was an error."""
        error = _error_code(self.error_chunks) if self.error_chunks is not None else None
        if error is None and self.status >= 500 and not self.started:
            error = "internal_error"
        return error


async def _answer_unexpected(
    scope: Scope, receive: Receive, exchange: _Exchange, request_id: str, exc: Exception
) -> None:
    """No handler took ``exc``: answer 500 here, inside the request's context, and log the
    traceback once with the request id (re-raising would make the server log a second one,
    outside any request)."""
    _log.error("unexpected error on %s %s", scope.get("method"), scope.get("path"), exc_info=exc)
    response = error_response(
        500,
        "internal_error",
        "An unexpected error occurred; the details are in the server log.",
        request_id=request_id,
    )
    await response(scope, receive, exchange.send)


class TelemetryMiddleware:
    """Pure ASGI middleware: request id, metrics, recent calls and one log line per request."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry
        self.log_bodies = telemetry.config.logs.bodies
        self.body_limit = telemetry.config.logs.max_body_chars

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        ctx = RequestContext(_request_id(scope) or os.urandom(16).hex())
        token = CURRENT_REQUEST.set(ctx)
        scope.setdefault("state", {})[REQUEST_ID_STATE] = ctx.request_id
        exchange = _Exchange(receive, send, ctx.request_id, self.log_bodies)
        self.telemetry.in_flight.inc()
        try:
            await self.app(scope, exchange.receive if self.log_bodies else receive, exchange.send)
        except Exception as exc:
            if exchange.started:
                # Half an answer is on the wire: only closing the connection can end it.
                _log.error("unexpected error after the response started", exc_info=exc)
                exchange.error_chunks = None
                raise
            await _answer_unexpected(scope, receive, exchange, ctx.request_id, exc)
        except BaseException:
            if not exchange.started:
                exchange.status = 500
            exchange.error_chunks = None
            raise
        finally:
            self.telemetry.in_flight.dec()
            seconds = time.perf_counter() - start
            bodies = (
                self._bodies(exchange.request_body, exchange.response_body)
                if self.log_bodies
                else None
            )
            self.telemetry.finish(scope, ctx, exchange.status, seconds, exchange.error(), bodies)
            CURRENT_REQUEST.reset(token)

    def _bodies(self, request: list[bytes], response: list[bytes]) -> dict[str, Any]:
        names, values = self.telemetry.secret_headers, self.telemetry.secret_values
        bodies: dict[str, Any] = {}
        for key, chunks in (("request_body", request), ("response_body", response)):
            if any(chunks):
                bodies[key] = body_for_log(b"".join(chunks), self.body_limit, names, values)
        return bodies


def _request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            # A caller-chosen id goes into logs and a response header: accept only a sane
            # token, never arbitrary bytes (log injection, header splitting).
            return candidate if _REQUEST_ID_OK.match(candidate) else None
    return None


def _error_code(chunks: list[bytes]) -> str | None:
    try:
        body = json.loads(b"".join(chunks))
    except ValueError:
        return None
    code = body.get("error") if isinstance(body, dict) else None
    # Only a short token: this lands in logs and the dashboard.
    return code[:64] if isinstance(code, str) else None


# --------------------------------------------------------------------------------------------
# The /metrics endpoint
# --------------------------------------------------------------------------------------------


def metrics_endpoint(
    telemetry: Telemetry, header: str, keys: Callable[[], list[str]]
) -> Callable[[Request], Awaitable[Response]]:
    """The ``/metrics`` route on the main port: the API key is required like everywhere."""

    async def metrics(request: Request) -> Response:
        if not key_matches(request.headers.get(header), keys()):
            return JSONResponse(
                {"error": "unauthorized", "message": f"Missing or invalid {header} header"},
                status_code=401,
            )
        body, content_type = telemetry.exposition()
        return Response(body, media_type=content_type)

    return metrics


def serve_metrics_separately(app: Starlette, telemetry: Telemetry, listen: str) -> None:
    """Start a plain Prometheus listener on ``listen`` for the app's lifetime."""
    from prometheus_client import start_http_server

    host, _, port = listen.rpartition(":")
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Starlette) -> AsyncIterator[Any]:
        server, thread = start_http_server(
            int(port), addr=host.strip("[]"), registry=telemetry.registry
        )
        _log.info("metrics served on http://%s/metrics", listen)
        try:
            async with inner(a) as state:
                yield state
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

    app.router.lifespan_context = lifespan
