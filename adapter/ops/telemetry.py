"""Metrics and the recent-calls buffer: what flows through the adapter.

* :class:`Telemetry` owns one Prometheus :class:`~prometheus_client.CollectorRegistry` per app
  (never the process-global one, so several apps in one process — tests, embedding — do not
  collide) and the ring buffer of recent calls the dashboard shows.
* :class:`TelemetryMiddleware` is a *pure* ASGI middleware (no ``BaseHTTPMiddleware``: it adds
  no task, no body buffering on the hot path). Per request it takes the id from
  ``X-Request-ID`` or makes one, returns it in the response header, counts the request by
  route *template* and status, observes its latency and writes ONE log line
  (:mod:`adapter.ops.logs` formats it).
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
import re
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from adapter.config import TelemetryConfig
from adapter.http.auth import key_matches
from adapter.ops.logs import CURRENT_REQUEST, RequestContext, body_for_log, note_records

__all__ = [
    "ACCESS_LOGGER",
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
        self.retries = Counter(
            "enginy_adapter_upstream_retries",
            "Upstream calls retried by a driver",
            ["driver", "reason"],
            registry=r,
        )
        self.calls: deque[CallRecord] = deque(maxlen=max(self.recent_calls, 1))
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    # -- hooks for the service and drivers ---------------------------------------------------

    def record_batch(self, operation: str, ok: int, failed: int = 0, **outcomes: int) -> None:
        """Count records processed by ``operation`` (e.g. ``contacts.create``): ``ok`` and
        ``failed``, plus any named outcome (``existing=3``). Adds them to the current request's
        record count."""
        counts = {"ok": ok, "failed": failed, **outcomes}
        for outcome, n in counts.items():
            if n:
                self.records.labels(operation, outcome).inc(n)
        note_records(sum(counts.values()))

    def observe_backend(self, method: str, seconds: float, error: str | None = None) -> None:
        """Observe one backend call's latency; ``error`` is the error code when it raised."""
        self.backend_seconds.labels(method).observe(seconds)
        if error is not None:
            self.backend_errors.labels(method, error).inc()

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
        route_obj = scope.get("route")
        route = getattr(route_obj, "path", None) or UNMATCHED
        method = scope.get("method", "")
        self._count(route, method, status, seconds)
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
        if bodies:
            access.update(bodies)
        path = scope.get("path", "")
        if not path.startswith(self.not_recent):
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
        ctx = RequestContext(request_id or uuid.uuid4().hex)
        token = CURRENT_REQUEST.set(ctx)
        scope.setdefault("state", {})["request_id"] = ctx.request_id
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
