"""The adapter's metrics and its buffer of recent calls (:class:`Telemetry`).

:class:`Telemetry` owns one Prometheus :class:`~prometheus_client.CollectorRegistry` per app
(never the process-global one, so several apps in one process — tests, embedding — do not
collide) and the ring buffer of recent calls the dashboard shows; :meth:`Telemetry.finish`
counts, buffers and logs one request (:class:`adapter.ops.telemetry.TelemetryMiddleware` calls
it). Every label comes from a closed set, so that no request can add a time series (see
:mod:`adapter.ops.telemetry`).
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from adapter.config import TelemetryConfig
from adapter.errors import (
    DETAIL_STATE,
    OUTCOME_STATE,
    OVERLOADED,
    UNAUTHORIZED,
    UNAVAILABLE,
    is_backend_failure,
)
from adapter.ops.connections import ConnectionCollector
from adapter.ops.logs import RequestContext, note_records
from backends.base import BackendError

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
]

Scope = MutableMapping[str, Any]

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
        self._http_metrics(r)
        self._backend_metrics(r)
        ProcessCollector(registry=r)
        r.register(ConnectionCollector())
        self.calls: deque[CallRecord] = deque(maxlen=max(self.recent_calls, 1))
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._record_children: dict[tuple[str, str], Any] = {}
        self._backend_children: dict[str, Any] = {}
        self._error_codes: set[str] = set()

    def _http_metrics(self, r: CollectorRegistry) -> None:
        """The requests' own metrics: counts, latency, in flight, client disconnects."""
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
        self.disconnects = Counter(
            "enginy_adapter_http_client_disconnects",
            "Requests whose client went away before they were answered",
            ["route"],
            registry=r,
        )

    def _backend_metrics(self, r: CollectorRegistry) -> None:
        """What flows through the drivers: records per outcome, call latency, errors,
        rejections and upstream retries."""
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
        if status == DISCONNECTED:
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
        _log_access(method, route, status, access)


def _log_access(method: str, route: str, status: int, access: dict[str, Any]) -> None:
    """The request's one access line (at ERROR for a 5xx)."""
    level = logging.ERROR if status >= 500 else logging.INFO
    if _access_log.isEnabledFor(level):
        # makeRecord + handle instead of .log(): skips the stack walk that finds the caller's
        # file and line, which this line does not need (a third of its cost).
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
DISCONNECTED = 499
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
