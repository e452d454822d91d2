"""Metrics and the recent-calls buffer: what flows through the adapter.

* :class:`Telemetry` owns one Prometheus :class:`~prometheus_client.CollectorRegistry` per app
  (never the process-global one, so several apps in one process — tests, embedding — do not
  collide) and the ring buffer of recent calls the dashboard shows.
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
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from adapter.config import TelemetryConfig
from adapter.errors import (
    DETAIL_STATE,
    OUTCOME_STATE,
    OVERLOADED,
    REQUEST_ID_STATE,
    UNAUTHORIZED,
    UNAVAILABLE,
    error_response,
    is_backend_failure,
)
from adapter.http.auth import key_matches
from adapter.ops.connections import ConnectionCollector
from adapter.ops.logs import CURRENT_REQUEST, RequestContext, body_for_log, note_records
from backends.base import BackendError

__all__ = [
    "ACCESS_LOGGER",
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

#: The logger that gets one line per request.
ACCESS_LOGGER = "enginy_adapter.access"
_access_log = logging.getLogger(ACCESS_LOGGER)
_log = logging.getLogger("adapter.ops")

#: Route label for requests no route matched: never the raw path, which would give every
#: scanner probe its own time series.
UNMATCHED = "<unmatched>"
# The fixed labels of requests answered before routing (adapter.errors): UNAUTHORIZED for a
# missing or wrong API key (the route is not looked up for such a caller), UNAVAILABLE while the
# backend is not open, OVERLOADED beyond the server's limits (server.limits).

#: The methods counted under their own name; any other is counted as :data:`OTHER_METHOD`.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "OTHER"
#: How many distinct error codes get their own series; later ones count as ``other``.
MAX_ERROR_CODES = 64
_ERROR_CODE_OK = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

# Paths under these prefixes are dashboard/ops traffic: counted and logged, but kept out of the
# "recent calls" ring buffer, which is there to show what *Enginy* sent.
_NOT_RECENT = ("/ui", "/metrics", "/openapi.json", "/favicon.ico")


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One entry of the recent-calls ring buffer (what the dashboard lists)."""

    time: datetime
    request_id: str
    method: str
    route: str
    status: int
    latency_ms: float
    records: int | None
    error: str | None


# --------------------------------------------------------------------------------------------
# The metrics
# --------------------------------------------------------------------------------------------

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass
class Telemetry:
    """Metrics registry, recent-call buffer and settings of one app instance."""

    config: TelemetryConfig = field(default_factory=TelemetryConfig)
    recent_calls: int = 200
    #: Header names whose values must never be logged (the configured API-key header).
    secret_headers: tuple[str, ...] = ("x-api-key",)
    #: Values never logged wherever they appear in a body (the service's own API keys).
    secret_values: tuple[str, ...] = ()
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    #: Path prefixes kept out of the recent-calls buffer (``install`` adds the root path).
    not_recent: tuple[str, ...] = _NOT_RECENT
    #: Removes secrets and the backend's location from a withheld error detail before it is
    #: logged (the access line's ``detail``).
    scrub: Callable[[str], str] = lambda text: text

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "enginy_adapter_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "enginy_adapter_http_request_duration_seconds",
            "HTTP request latency by route",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "enginy_adapter_http_requests_in_flight", "HTTP requests being served", registry=r
        )
        self.records = Counter(
            "enginy_adapter_records",
            "Records processed per operation and outcome",
            ["operation", "outcome"],
            registry=r,
        )
        self.backend_seconds = Histogram(
            "enginy_adapter_backend_call_duration_seconds",
            "Backend driver call latency",
            ["method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.backend_errors = Counter(
            "enginy_adapter_backend_errors",
            "Backend driver calls that raised, by error code",
            ["method", "error"],
            registry=r,
        )
        self.backend_rejections = Counter(
            "enginy_adapter_backend_rejections",
            "Backend driver calls that answered that the request was wrong (an unknown id, a "
            "conflict, an invalid record): the caller's error, not the backend's",
            ["method", "error"],
            registry=r,
        )
        self.retries = Counter(
            "enginy_adapter_upstream_retries",
            "Upstream calls retried by a driver",
            ["driver", "reason"],
            registry=r,
        )
        self.disconnects = Counter(
            "enginy_adapter_http_client_disconnects",
            "Requests whose client went away before they were answered",
            ["route"],
            registry=r,
        )
        ProcessCollector(registry=r)
        r.register(ConnectionCollector())
        self.calls: deque[CallRecord] = deque(maxlen=max(self.recent_calls, 1))
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._record_children: dict[tuple[str, str], Any] = {}
        self._backend_children: dict[str, Any] = {}
        self._error_codes: set[str] = set()

    # -- hooks for the service and drivers ---------------------------------------------------

    def record_batch(self, operation: str, ok: int, failed: int = 0, **outcomes: int) -> None:
        """Count records processed by ``operation`` (e.g. ``contacts.create``): ``ok`` and
        ``failed``, plus any named outcome (``existing=3``). Adds them to the current request's
        record count."""
        counts = {"ok": ok, "failed": failed, **outcomes}
        for outcome, n in counts.items():
            if n:
                self.count_records(operation, outcome, n)
        note_records(sum(counts.values()))

    def count_records(self, operation: str, outcome: str, n: int) -> None:
        """Add ``n`` to the records of ``operation`` with ``outcome`` (no request count)."""
        # Labelled children cached as in _count: operations and outcomes are a small fixed set.
        key = (operation, outcome)
        child = self._record_children.get(key)
        if child is None:
            child = self._record_children[key] = self.records.labels(operation, outcome)
        child.inc(n)

    def observe_backend(
        self, method: str, seconds: float, error: BackendError | str | None = None
    ) -> None:
        """Observe one backend call's latency; ``error`` is what it raised (a driver error, or
        a code such as ``exception``). A driver error that blames the request (an unknown id,
        a conflict, an invalid record, an unsupported call) is a rejection, not a backend
        error."""
        timer = self._backend_children.get(method)
        if timer is None:
            timer = self._backend_children[method] = self.backend_seconds.labels(method)
        timer.observe(seconds)
        if error is None:
            return
        if isinstance(error, BackendError):
            code = self.error_label(error.code)
            if not is_backend_failure(error):
                self.backend_rejections.labels(method, code).inc()
                return
            self.backend_errors.labels(method, code).inc()
        else:
            self.backend_errors.labels(method, self.error_label(error)).inc()

    def error_label(self, code: str) -> str:
        """``code`` as a metric label: a short token, one of at most :data:`MAX_ERROR_CODES`
        (a third-party driver may make codes up; the label set stays bounded)."""
        if code in self._error_codes:
            return code
        if not _ERROR_CODE_OK.match(code):
            return "other"
        if len(self._error_codes) >= MAX_ERROR_CODES:
            return "other"
        self._error_codes.add(code)
        return code

    def upstream_retry(self, driver: str, reason: str) -> None:
        """Count one retried upstream call (``reason``: ``429``, ``503``, ``timeout``...)."""
        self.retries.labels(driver, reason).inc()

    def exposition(self) -> tuple[bytes, str]:
        """The metrics in Prometheus text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4

    def recent(self) -> list[CallRecord]:
        """The buffered calls, newest first."""
        return list(reversed(self.calls))

    # -- per request (called by the middleware) -----------------------------------------------

    def _count(self, route: str, method: str, status: int, seconds: float) -> None:
        # Label lookups take a lock and build a tuple each time; the set of (route, method,
        # status) is small and bounded (route templates, not paths), so cache the children.
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(route, method, str(status)),
                self.request_seconds.labels(route, method),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def finish(
        self,
        scope: Scope,
        ctx: RequestContext,
        status: int,
        seconds: float,
        error: str | None,
        bodies: dict[str, Any] | None,
    ) -> None:
        route = _route_label(scope)
        raw_method = scope.get("method", "")
        method = raw_method if raw_method in _METHODS else OTHER_METHOD
        self._count(route, method, status, seconds)
        if status == _DISCONNECTED:
            self.disconnects.labels(route).inc()
        latency_ms = round(seconds * 1000, 2)
        access: dict[str, Any] = {
            "request_id": ctx.request_id,
            "method": method,
            "route": route,
            "status": status,
            "latency_ms": latency_ms,
            "records": ctx.records,
            "error": error,
        }
        state = scope.get("state")
        detail = state.get(DETAIL_STATE) if isinstance(state, dict) else None
        if isinstance(detail, str):
            access["detail"] = self.scrub(detail)[:_DETAIL_LIMIT]
        if bodies:
            access.update(bodies)
        path = scope.get("path", "")
        # A caller without a valid key leaves nothing behind but a count and a log line: it
        # must not push Enginy's calls out of the buffer.
        if route != UNAUTHORIZED and not path.startswith(self.not_recent):
            self.calls.append(
                CallRecord(
                    datetime.now(UTC),
                    ctx.request_id,
                    method,
                    route,
                    status,
                    latency_ms,
                    ctx.records,
                    error,
                )
            )
        level = logging.ERROR if status >= 500 else logging.INFO
        if _access_log.isEnabledFor(level):
            # makeRecord + handle instead of .log(): skips the stack walk that finds the
            # caller's file and line, which this line does not need (a third of its cost).
            record = _access_log.makeRecord(
                ACCESS_LOGGER,
                level,
                "",
                0,
                "%s %s %s",
                (method, route, status),
                None,
                extra={"access": access},
            )
            _access_log.handle(record)


#: The status a request whose client went away is counted and logged with (nginx's 499).
_DISCONNECTED = 499
#: Longest withheld error detail written to an access line.
_DETAIL_LIMIT = 1000


def _route_label(scope: Scope) -> str:
    """The matched route's template, else the fixed label of the outcome, else
    :data:`UNMATCHED`: never anything taken from the request itself."""
    route = getattr(scope.get("route"), "path", None)
    if isinstance(route, str) and route:
        return route
    state = scope.get("state")
    outcome = state.get(OUTCOME_STATE) if isinstance(state, dict) else None
    return outcome if outcome in _OUTCOMES else UNMATCHED


_OUTCOMES = frozenset({UNAUTHORIZED, UNAVAILABLE, OVERLOADED})


# --------------------------------------------------------------------------------------------
# The middleware
# --------------------------------------------------------------------------------------------

_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
# Error bodies are small; read at most this much of one to find its "error" code.
_ERROR_BODY_LIMIT = 8192


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
        request_id = _request_id(scope)
        ctx = RequestContext(request_id or os.urandom(16).hex())
        token = CURRENT_REQUEST.set(ctx)
        scope.setdefault("state", {})[REQUEST_ID_STATE] = ctx.request_id
        status = 500
        started = False
        error_chunks: list[bytes] | None = None
        req_body: list[bytes] = []
        resp_body: list[bytes] = []
        header_value = ctx.request_id.encode("latin-1")
        log_bodies = self.log_bodies

        async def receive_wrapper() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                req_body.append(message.get("body", b""))
            return message

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started, error_chunks
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k != b"x-request-id"]
                headers.append((b"x-request-id", header_value))
                message["headers"] = headers
                if status >= 400:
                    error_chunks = []
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                if error_chunks is not None and sum(map(len, error_chunks)) < _ERROR_BODY_LIMIT:
                    error_chunks.append(chunk)
                if log_bodies:
                    resp_body.append(chunk)
            await send(message)

        self.telemetry.in_flight.inc()
        try:
            await self.app(scope, receive_wrapper if log_bodies else receive, send_wrapper)
        except Exception as exc:
            if started:
                # Half an answer is on the wire: only closing the connection can end it.
                _log.error("unexpected error after the response started", exc_info=exc)
                error_chunks = None
                raise
            # No handler took it: answer 500 here, inside the request's context, and log the
            # traceback once with the request id (re-raising would make the server log a
            # second one, outside any request).
            _log.error(
                "unexpected error on %s %s", scope.get("method"), scope.get("path"), exc_info=exc
            )
            response = error_response(
                500,
                "internal_error",
                "An unexpected error occurred; the details are in the server log.",
                request_id=ctx.request_id,
            )
            await response(scope, receive, send_wrapper)
        except BaseException:
            status = 500 if not started else status
            error_chunks = None
            raise
        finally:
            self.telemetry.in_flight.dec()
            seconds = time.perf_counter() - start
            error = _error_code(error_chunks) if error_chunks is not None else None
            if error is None and status >= 500 and not started:
                error = "internal_error"
            bodies = self._bodies(req_body, resp_body) if log_bodies else None
            self.telemetry.finish(scope, ctx, status, seconds, error, bodies)
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
