"""Metrics, request logs and request ids: what flows through the adapter.

* :class:`Telemetry` owns one Prometheus :class:`~prometheus_client.CollectorRegistry` per app
  (never the process-global one, so several apps in one process — tests, embedding — do not
  collide) and the ring buffer of recent calls the dashboard shows.
* :class:`TelemetryMiddleware` is a *pure* ASGI middleware (no ``BaseHTTPMiddleware``: it adds
  no task, no body buffering on the hot path). Per request it takes the id from
  ``X-Request-ID`` or makes one, returns it in the response header, counts the request by
  route *template* and status, observes its latency and writes ONE log line.
* :func:`adapter.instrument.instrument_backend` times every public method of a driver
  instance and counts records processed per operation and outcome; drivers that retry
  upstream calls report each retry through ``backend.on_upstream_retry(reason)`` (set by
  :func:`adapter.ops.install`).
* :func:`configure_logging` sets up the JSON (default) or text log format for the process.

By default nothing from a body is logged, nor any header; ``logs.bodies: true`` (debug only)
logs request and response bodies with secrets redacted and e-mail addresses masked.
"""

from __future__ import annotations

import contextvars
import hmac
import json
import logging
import re
import sys
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = [
    "ACCESS_LOGGER",
    "CallRecord",
    "JsonFormatter",
    "LogsConfig",
    "MetricsConfig",
    "Telemetry",
    "TelemetryConfig",
    "TelemetryMiddleware",
    "TextFormatter",
    "configure_logging",
    "current_request_id",
    "key_matches",
    "mask_emails",
    "note_records",
    "redact",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The logger that gets one line per request.
ACCESS_LOGGER = "enginy_adapter.access"
_access_log = logging.getLogger(ACCESS_LOGGER)

#: Route label for requests no route matched: never the raw path, which would give every
#: scanner probe its own time series.
UNMATCHED = "<unmatched>"

# Paths under these prefixes are dashboard/ops traffic: counted and logged, but kept out of the
# "recent calls" ring buffer, which is there to show what *Enginy* sent.
_NOT_RECENT = ("/ui", "/metrics", "/openapi.json", "/favicon.ico")


# --------------------------------------------------------------------------------------------
# Configuration (the ``observability:`` section of the YAML)
# --------------------------------------------------------------------------------------------


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
        if value is None:
            return None
        _host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be host:port, e.g. 127.0.0.1:9100")
        return value


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


# --------------------------------------------------------------------------------------------
# Redaction
# --------------------------------------------------------------------------------------------

_SECRET_KEY = re.compile(r"key|token|password|passwd|secret|authori[sz]ation|cookie", re.I)
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
REDACTED = "[redacted]"


def mask_emails(text: str) -> str:
    """Replace every e-mail address by its first letter and domain: ``j***@example.com``."""
    return _EMAIL.sub(r"\1***@\2", text)


def redact(value: Any, extra_keys: Iterable[str] = (), secret_values: Iterable[str] = ()) -> Any:
    """A copy of a JSON value with secret-looking keys' values replaced and e-mails masked.

    A key is secret when it contains key/token/password/secret/authorization (any case) or is
    one of ``extra_keys`` (the configured API-key header name, compared case-insensitively).
    Every occurrence of one of ``secret_values`` (the service's own API keys) is replaced too,
    in any string, keys included: a key pasted into a free-text field (``"notes": "my key is
    ..."``) has a name that looks like nothing secret.
    """
    extra = {k.lower() for k in extra_keys}
    # Longest first, so that a key containing another is replaced whole.
    secrets = sorted({v for v in secret_values if v}, key=len, reverse=True)

    def text(node: str) -> str:
        for secret in secrets:
            if secret in node:
                node = node.replace(secret, REDACTED)
        return mask_emails(node)

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                text(str(k)): (
                    REDACTED if _SECRET_KEY.search(str(k)) or str(k).lower() in extra else walk(v)
                )
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str):
            return text(node)
        return node

    return walk(value)


def _body_for_log(
    raw: bytes, limit: int, extra_keys: Iterable[str], secret_values: Iterable[str] = ()
) -> Any:
    try:
        parsed = json.loads(raw)
    except ValueError:
        # Not JSON: there are no keys to recognise, so log only its size; masking e-mails in
        # free text would still leave any token in it.
        return f"<{len(raw)} bytes, not JSON>"
    redacted = redact(parsed, extra_keys, secret_values)
    text = json.dumps(redacted, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= limit else text[:limit] + "…"


# --------------------------------------------------------------------------------------------
# Log formatting
# --------------------------------------------------------------------------------------------

#: The per-request fields, in the order they are written.
ACCESS_FIELDS = ("request_id", "method", "route", "status", "latency_ms", "records", "error")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message`` plus, for request
    lines, the fields of :data:`ACCESS_FIELDS` (and ``request_body`` / ``response_body`` in
    debug mode)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        access = getattr(record, "access", None)
        if isinstance(access, dict):
            out.update(access)
        elif (rid := current_request_id()) is not None:
            out["request_id"] = rid
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Human-readable lines for local use."""

    def format(self, record: logging.LogRecord) -> str:
        access = getattr(record, "access", None)
        head = f"{_iso(record.created)} {record.levelname:<7}"
        if isinstance(access, dict):
            line = (
                f"{head} {access['request_id']} {access['method']} {access['route']} "
                f"{access['status']} {access['latency_ms']}ms"
                f" records={access['records'] if access['records'] is not None else '-'}"
                f" error={access['error'] or '-'}"
            )
            for k in ("request_body", "response_body"):
                if k in access:
                    line += f" {k}={access[k]}"
        else:
            line = f"{head} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(config: LogsConfig, stream: Any = None) -> logging.Handler:
    """Route every log record of the process (ours, drivers', uvicorn's) through one handler in
    the configured format. Run uvicorn with ``log_config=None, access_log=False``: the adapter
    writes its own access line per request, with the route template and request id."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if config.format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(config.level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    return handler


# --------------------------------------------------------------------------------------------
# Per-request context
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _RequestContext:
    request_id: str
    records: int | None = None


_current: contextvars.ContextVar[_RequestContext | None] = contextvars.ContextVar(
    "enginy_adapter_request", default=None
)


def current_request_id() -> str | None:
    """The id of the request being served in this task, if any (for other log lines)."""
    ctx = _current.get()
    return ctx.request_id if ctx is not None else None


def note_records(count: int, *, largest: bool = False) -> None:
    """Add ``count`` to the current request's record count (or keep the larger of the two
    with ``largest``); no-op outside a request."""
    ctx = _current.get()
    if ctx is not None:
        ctx.records = max(ctx.records or 0, count) if largest else (ctx.records or 0) + count


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
            "enginy_adapter_http_requests", "HTTP requests by route template, method and status",
            ["route", "method", "status"], registry=r,
        )
        self.request_seconds = Histogram(
            "enginy_adapter_http_request_duration_seconds", "HTTP request latency by route",
            ["route", "method"], buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.in_flight = Gauge(
            "enginy_adapter_http_requests_in_flight", "HTTP requests being served", registry=r
        )
        self.records = Counter(
            "enginy_adapter_records", "Records processed per operation and outcome",
            ["operation", "outcome"], registry=r,
        )
        self.backend_seconds = Histogram(
            "enginy_adapter_backend_call_duration_seconds", "Backend driver call latency",
            ["method"], buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.backend_errors = Counter(
            "enginy_adapter_backend_errors", "Backend driver calls that raised, by error code",
            ["method", "error"], registry=r,
        )
        self.retries = Counter(
            "enginy_adapter_upstream_retries", "Upstream calls retried by a driver",
            ["driver", "reason"], registry=r,
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

    def finish(self, scope: Scope, ctx: _RequestContext, status: int, seconds: float,
               error: str | None, bodies: dict[str, Any] | None) -> None:
        route_obj = scope.get("route")
        route = getattr(route_obj, "path", None) or UNMATCHED
        method = scope.get("method", "")
        # Label lookups take a lock and build a tuple each time; the set of (route, method,
        # status) is small and bounded (route templates, not paths), so cache the children.
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(route, method, str(status)),
                        self.request_seconds.labels(route, method))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        latency_ms = round(seconds * 1000, 2)
        access: dict[str, Any] = {
            "request_id": ctx.request_id, "method": method, "route": route, "status": status,
            "latency_ms": latency_ms, "records": ctx.records, "error": error,
        }
        if bodies:
            access.update(bodies)
        path = scope.get("path", "")
        if not path.startswith(self.not_recent):
            self.calls.append(CallRecord(datetime.now(UTC), ctx.request_id, method, route,
                                         status, latency_ms, ctx.records, error))
        level = logging.ERROR if status >= 500 else logging.INFO
        if _access_log.isEnabledFor(level):
            # makeRecord + handle instead of .log(): skips the stack walk that finds the
            # caller's file and line, which this line does not need (a third of its cost).
            record = _access_log.makeRecord(
                ACCESS_LOGGER, level, "", 0, "%s %s %s", (method, route, status), None,
                extra={"access": access})
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
        request_id = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                # A caller-chosen id goes into logs and a response header: accept only a sane
                # token, never arbitrary bytes (log injection, header splitting).
                if _REQUEST_ID_OK.match(candidate):
                    request_id = candidate
                break
        ctx = _RequestContext(request_id or uuid.uuid4().hex)
        token = _current.set(ctx)
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
            bodies = None
            if log_bodies:
                extra = self.telemetry.secret_headers
                values = self.telemetry.secret_values
                bodies = {}
                if any(req_body):
                    bodies["request_body"] = _body_for_log(
                        b"".join(req_body), self.body_limit, extra, values)
                if any(resp_body):
                    bodies["response_body"] = _body_for_log(
                        b"".join(resp_body), self.body_limit, extra, values)
            self.telemetry.finish(scope, ctx, status, seconds, error, bodies)
            _current.reset(token)


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


def key_matches(presented: str | None, keys: Iterable[str]) -> bool:
    """Constant-time check of a presented secret against every valid one (no early exit, so
    the time taken does not tell which key — or whether any — almost matched)."""
    if not presented:
        return False
    given = presented.encode()
    found = False
    for key in keys:
        if key and hmac.compare_digest(given, key.encode()):
            found = True
    return found


def metrics_endpoint(telemetry: Telemetry, header: str, keys: Callable[[], list[str]]
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
