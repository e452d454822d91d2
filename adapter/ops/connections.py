"""Connection limits in the protocol layer: what uvicorn does not bound by itself.

uvicorn closes a kept-alive connection that idles after a response (``timeout_keep_alive``)
and can refuse requests beyond a concurrency limit (with a plain-text 503 and no
``Retry-After``). Nothing else bounds a connection: one that opens and sends nothing, stalls in
the middle of its headers, or trickles a header byte every few seconds (slowloris) stays open
until the process runs out of file descriptors, and each open connection costs a descriptor and
some memory. :func:`guarded_protocol` subclasses the uvicorn HTTP protocol in use (h11 or
httptools) with two limits of ``server.limits``:

* **a header deadline**: a request's line and headers must be complete within
  ``header_timeout_seconds`` of the connection opening and, on a kept-alive connection, of the
  first byte of each further request. Past it the connection gets a 408 (or nothing, if it
  never sent a byte) and is closed.
* **a cap on open connections**: at ``max_connections``, a new connection first makes room by
  closing the connection that has waited longest without a request being served (idle between
  requests, or still sending its headers); when every connection is serving a request, the new
  one is answered 503 with ``Retry-After`` and closed at once.

Idle kept-alive connections are closed by uvicorn itself after ``keep_alive_seconds``
(``timeout_keep_alive``, passed by :mod:`adapter.cli.serve`). What the limits closed is counted
in :data:`STATS` (one server per process) and exported by :class:`ConnectionCollector`.

This leans on uvicorn's protocol classes (``connection_made``, ``data_received``,
``on_response_complete``, the ``cycle`` of the request being served, the server's shared
``connections`` set), which both of its HTTP/1.1 implementations share;
``tests/test_hostile.py`` exercises both with raw sockets.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from adapter.config import LimitsConfig, load_settings

__all__ = [
    "STATS",
    "ConnectionCollector",
    "ConnectionGuard",
    "ConnectionStats",
    "effective_max_connections",
    "guarded_protocol",
]

logger = logging.getLogger("adapter.connections")

#: File descriptors kept free for everything that is not a client connection: the database
#: pool, log files, the metrics listener, the HTTP client of an HTTP driver.
_RESERVED_FDS = 64
#: At most one warning line per reason per this many seconds (a flood must not flood the log).
_WARN_EVERY = 60.0


def _raw_response(
    status: int, reason: str, code: str, message: str, retry_after: int | None
) -> bytes:
    body = json.dumps({"error": code, "message": message}, separators=(",", ":")).encode()
    head = [
        f"HTTP/1.1 {status} {reason}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
    ]
    if retry_after is not None:
        head.append(f"retry-after: {retry_after}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


_HEADER_TIMEOUT = _raw_response(
    408,
    "Request Timeout",
    "request_timeout",
    "the request's headers did not arrive in time",
    None,
)
_TOO_MANY = _raw_response(
    503,
    "Service Unavailable",
    "overloaded",
    "too many open connections; retry later",
    1,
)


@dataclass
class ConnectionStats:
    """What the connection limits did, since the process started."""

    opened: int = 0
    open: int = 0
    #: Closed by a limit, by reason: ``header_timeout``, ``evicted``, ``refused``.
    closed: dict[str, int] = field(
        default_factory=lambda: {"header_timeout": 0, "evicted": 0, "refused": 0}
    )
    _warned: dict[str, float] = field(default_factory=dict)

    def count(self, reason: str, what: str) -> None:
        self.closed[reason] += 1
        now = time.monotonic()
        if now - self._warned.get(reason, -_WARN_EVERY) >= _WARN_EVERY:
            self._warned[reason] = now
            logger.warning(
                "%s (%d so far; this line is written at most once a minute)",
                what,
                self.closed[reason],
            )


#: The process's counts (a process serves one uvicorn server).
STATS = ConnectionStats()


class ConnectionCollector(Collector):
    """Exports :data:`STATS`: open connections and connections closed by a limit."""

    def collect(self) -> Iterator[Any]:
        gauge = GaugeMetricFamily(
            "enginy_adapter_connections_open", "Open client connections (HTTP)"
        )
        gauge.add_metric([], STATS.open)
        yield gauge
        closed = CounterMetricFamily(
            "enginy_adapter_connections_closed_by_limit",
            "Client connections closed by a server limit: header_timeout (headers not "
            "complete in time), evicted (idle, closed to make room), refused (503 at the "
            "connection cap)",
            labels=["reason"],
        )
        for reason, count in STATS.closed.items():
            closed.add_metric([reason], count)
        yield closed


def effective_max_connections(configured: int) -> int:
    """``configured``, lowered to what the process's file-descriptor limit leaves for clients
    (with a warning): past that limit accept() fails and the server cannot even refuse."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    room = max(1, soft - _RESERVED_FDS)
    if configured > room:
        logger.warning(
            "server.limits.max_connections %d is above what the file-descriptor limit (%d) "
            "allows; using %d (raise `ulimit -n` to allow more)",
            configured,
            soft,
            room,
        )
        return room
    return configured


def _auto_base() -> type[asyncio.Protocol]:
    # What uvicorn's http="auto" picks: httptools when installed, else h11.
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol
    return HttpToolsProtocol


def _base(http: str) -> type[asyncio.Protocol]:
    if http == "h11":
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol
    if http == "httptools":
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return HttpToolsProtocol
    return _auto_base()


@dataclass
class _Waiting:
    """The connections of one server that are not serving a request (oldest first)."""

    protocols: OrderedDict[Any, None] = field(default_factory=OrderedDict)


def _waiting_of(server_state: Any) -> _Waiting:
    waiting = getattr(server_state, "_enginy_waiting", None)
    if waiting is None:
        waiting = _Waiting()
        server_state._enginy_waiting = waiting
    return waiting


#: The guard is mixed into one of uvicorn's protocol classes, chosen at run time (h11 or
#: httptools): to the type checker its base is ``Any``.
_UvicornProtocol: Any = asyncio.Protocol


class ConnectionGuard(_UvicornProtocol):  # type: ignore[misc]
    """The header deadline and the connection cap, mixed in before a uvicorn protocol class
    (see the module docstring); :func:`guarded_protocol` sets the two limits."""

    header_timeout: float
    max_connections: int

    def connection_made(self, transport: asyncio.Transport) -> None:
        self._refused = False
        self._deadline: asyncio.TimerHandle | None = None
        self._received = False
        self._waiting = _waiting_of(self.server_state)
        if len(self.connections) >= self.max_connections and not self._make_room():
            self._refused = True
            STATS.count("refused", f"refused connections at the cap of {self.max_connections}")
            transport.write(_TOO_MANY)
            transport.close()
            return
        super().connection_made(transport)
        STATS.opened += 1
        STATS.open += 1
        self._wait()
        self._arm()

    def _between_requests(self) -> bool:
        # No request is being served: none yet, or the last one is answered.
        return self.cycle is None or bool(self.cycle.response_complete)

    def _make_room(self) -> bool:
        waiting = self._waiting.protocols
        while waiting:
            oldest, _ = waiting.popitem(last=False)
            if oldest.transport is not None and not oldest.transport.is_closing():
                STATS.count("evicted", "closed idle connections to make room for new ones")
                oldest._close()
                return True
        return False

    def _close(self) -> None:
        self._disarm()
        try:
            self.timeout_keep_alive_handler()  # uvicorn's own way to close an idle one
        except Exception:  # an h11 state that refuses a clean close
            self.transport.close()

    def _wait(self) -> None:
        self._waiting.protocols[self] = None

    def _stop_waiting(self) -> None:
        self._waiting.protocols.pop(self, None)

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_late(self) -> None:
        self._deadline = None
        if not self._between_requests() or self.transport.is_closing():
            return
        STATS.count(
            "header_timeout",
            f"closed connections whose headers were not complete within {self.header_timeout:g}s",
        )
        self._stop_waiting()
        if self._received:
            self.transport.write(_HEADER_TIMEOUT)
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._between_requests():
            # A byte of a request's head: on a kept-alive connection the deadline starts
            # with the first one (uvicorn has just stopped its keep-alive timer).
            self._arm()
            self._received = True
        super().data_received(data)
        if not self._between_requests():
            self._headers_done()

    def _headers_done(self) -> None:
        self._disarm()
        self._stop_waiting()
        self._received = False

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if self._between_requests():
            # Idle (uvicorn's keep-alive timer runs): the first to go to make room.
            self._wait()
        else:
            self._headers_done()  # a pipelined request started at once

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        self._disarm()
        self._stop_waiting()
        STATS.open -= 1
        super().connection_lost(exc)

    def eof_received(self) -> None:
        if not self._refused:
            super().eof_received()


def guarded_protocol(limits: LimitsConfig, http: str = "auto") -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class ``http`` (``auto``, ``h11``, ``httptools``) with the header
    deadline and the connection cap of ``limits`` (see the module docstring)."""
    base: Any = _base(http)
    guarded: type[asyncio.Protocol] = type(
        f"Guarded{base.__name__}",
        (ConnectionGuard, base),
        {
            "header_timeout": limits.header_timeout_seconds,
            "max_connections": effective_max_connections(limits.max_connections),
        },
    )
    return guarded


def __getattr__(name: str) -> Any:
    # ``uvicorn.run(..., workers=N, http="adapter.ops.connections:WorkerHTTPProtocol")``: each
    # worker process resolves this name when it starts, and builds the protocol from the same
    # configuration its app is built from (the ENGINY_ADAPTER_* variables serve sets).
    if name == "WorkerHTTPProtocol":
        limits = load_settings(None).server.limits
        protocol = guarded_protocol(limits)
        globals()[name] = protocol
        return protocol
    raise AttributeError(name)
