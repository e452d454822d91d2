"""A fault-injecting HTTP/1.1 reverse proxy, for exactly-once tests and benches of HTTP drivers.

It sits between a client (the REST driver) and a real server (BottleCRM, Directus) and turns a
configured share of the exchanges into failures the client cannot tell from a real outage:

| fault | the server | the client |
| --- | --- | --- |
| ``error_before`` | never sees the request | a 500 |
| ``error_after`` | handles it (the write is done) | a 500 instead of the answer |
| ``reset_before`` | never sees the request | the connection reset (TCP RST) |
| ``reset_after`` | handles it | the connection reset instead of the answer |
| ``timeout_before`` | never sees the request | no answer for ``hang_seconds``, then EOF |
| ``timeout_after`` | handles it | the same, after the write is done |

The ``*_after`` faults are the hard case for exactly-once creates: the record exists, and the
client was told nothing or told it failed.

**Deterministic by seed, also under concurrency.** Whether an exchange fails is drawn from a hash
of ``(seed, method, target, body, n)`` where ``n`` counts earlier exchanges with the same method,
target and body. The same requests get the same faults whatever order concurrent requests arrive
in, and a retry of a request (``n + 1``) draws afresh, so a failed create is not failed forever.

Usage::

    plan = FaultPlan({Fault.ERROR_AFTER: 0.05, Fault.TIMEOUT_AFTER: 0.05}, seed=7,
                     methods={"POST", "PATCH"}, hang_seconds=2)
    async with FaultProxy("http://127.0.0.1:8001", plan) as proxy:   # in the caller's loop
        ...  # point the client at proxy.url
    with FaultProxy(upstream, plan).in_thread() as proxy:           # its own loop and thread
        ...
    proxy.events   # one ProxyEvent per exchange: method, target, fault, upstream status

or from a shell: ``python -m tests.rest.servers proxy --upstream URL --fault error_after=0.1``.

The client's ``Host`` header is passed through unchanged (servers build redirects from it, so
they point back at the proxy); hop-by-hop headers are dropped; bodies are forwarded byte for byte
(compressed answers stay compressed). Only ``http://`` upstreams, HTTP/1.1, no upgrades.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import re
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import h11
import httpx

__all__ = ["Fault", "FaultPlan", "FaultProxy", "ProxyEvent"]

# RFC 9110 7.6.1 connection-specific fields, plus the framing fields h11 writes itself.
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
    }
)
_MAX_BODY = 64 * 1024 * 1024


class Fault(StrEnum):
    """What the proxy does to one exchange (see the module docstring's table)."""

    ERROR_BEFORE = "error_before"
    ERROR_AFTER = "error_after"
    RESET_BEFORE = "reset_before"
    RESET_AFTER = "reset_after"
    TIMEOUT_BEFORE = "timeout_before"
    TIMEOUT_AFTER = "timeout_after"

    @property
    def reaches_server(self) -> bool:
        """True when the server handles the request before the client sees the failure."""
        return self.value.endswith("_after")


@dataclass(frozen=True)
class FaultPlan:
    """Which exchanges fail, and how.

    ``rates`` maps each fault to the share of eligible exchanges it hits (their sum at most 1).
    An exchange is eligible when its method is in ``methods`` (every method when ``None``) and
    ``path`` (a regular expression) is found in its request target (path and query).
    ``hang_seconds`` is how long a timeout fault holds the connection before closing it; make it
    longer than the client's read timeout. ``error_status`` is the status of error faults.
    """

    rates: Mapping[Fault, float] = field(default_factory=dict)
    seed: int = 0
    methods: Collection[str] | None = None
    path: str | None = None
    hang_seconds: float = 30.0
    error_status: int = 500

    def __post_init__(self) -> None:
        rates = {Fault(fault): float(rate) for fault, rate in self.rates.items()}
        for fault, rate in rates.items():
            if not 0.0 <= rate <= 1.0 or math.isnan(rate):
                raise ValueError(f"rate of {fault} must be within [0, 1], not {rate}")
        if sum(rates.values()) > 1.0 + 1e-9:
            raise ValueError(f"fault rates add up to more than 1: {rates}")
        if not 500 <= self.error_status <= 599:
            raise ValueError(f"error_status must be a 5xx status, not {self.error_status}")
        if self.hang_seconds < 0:
            raise ValueError("hang_seconds must not be negative")
        object.__setattr__(self, "rates", rates)
        if self.methods is not None:
            object.__setattr__(self, "methods", frozenset(m.upper() for m in self.methods))
        if self.path is not None:
            re.compile(self.path)

    @classmethod
    def parse_rates(cls, specs: Collection[str]) -> dict[Fault, float]:
        """``["error_after=0.05", "reset_before=0.01"]`` -> rates (for command lines)."""
        rates: dict[Fault, float] = {}
        for spec in specs:
            name, sep, value = spec.partition("=")
            if not sep:
                raise ValueError(f"expected FAULT=RATE, got {spec!r}")
            try:
                rates[Fault(name.strip().lower())] = float(value)
            except ValueError as exc:
                known = ", ".join(f.value for f in Fault)
                raise ValueError(f"bad fault {spec!r} (faults: {known})") from exc
        return rates

    def eligible(self, method: str, target: str) -> bool:
        if self.methods is not None and method.upper() not in self.methods:
            return False
        return self.path is None or re.search(self.path, target) is not None

    def draw(self, method: str, target: str, body: bytes, occurrence: int) -> Fault | None:
        """The fault for the ``occurrence``-th exchange (from 0) with this method, target and
        body, or None; a pure function of its arguments and the plan."""
        if not self.rates or not self.eligible(method, target):
            return None
        digest = hashlib.sha256()
        for part in (str(self.seed), method.upper(), target, str(occurrence)):
            digest.update(part.encode())
            digest.update(b"\0")
        digest.update(hashlib.sha256(body).digest())
        draw = int.from_bytes(digest.digest()[:8], "big") / 2**64
        bound = 0.0
        for fault in Fault:  # a fixed order, so the same draw always means the same fault
            bound += self.rates.get(fault, 0.0)
            if draw < bound:
                return fault
        return None


@dataclass(frozen=True)
class ProxyEvent:
    """One exchange through the proxy, recorded before the client gets its answer.

    ``upstream_status`` is what the server answered (None when the request never reached it or
    the server could not be reached); ``client_status`` what the client was sent (None after a
    reset or a timeout).
    """

    method: str
    target: str
    fault: Fault | None
    upstream_status: int | None
    client_status: int | None


class FaultProxy:
    """The proxy in front of ``upstream`` (``http://host:port``), on 127.0.0.1 and a free port.

    ``plan`` may be replaced at any time (``proxy.plan = FaultPlan()`` turns faults off, for
    example while a test sets up its data); the next exchange uses the new plan.
    """

    def __init__(
        self,
        upstream: str,
        plan: FaultPlan | None = None,
        *,
        upstream_timeout: float = 120.0,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.netloc or parts.path not in ("", "/"):
            raise ValueError(f"upstream must be an http://host:port origin, not {upstream!r}")
        self.upstream = f"http://{parts.netloc}"
        self.plan = plan or FaultPlan()
        self._upstream_timeout = upstream_timeout
        self._events: list[ProxyEvent] = []
        self._events_lock = threading.Lock()
        self._seen: Counter[tuple[str, str, bytes]] = Counter()
        self._server: asyncio.Server | None = None
        self._client: httpx.AsyncClient | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._port: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The proxy's base URL (``http://127.0.0.1:<port>``); only once started."""
        if self._port is None:
            raise RuntimeError("the proxy is not started")
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            timeout=self._upstream_timeout,
            follow_redirects=False,
            trust_env=False,  # never through an HTTP(S)_PROXY of the environment
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @contextlib.contextmanager
    def in_thread(self) -> Iterator[Self]:
        """Run the proxy on an event loop of its own in a daemon thread (for synchronous
        callers, and for clients whose event loop lives shorter than the proxy)."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="fault-proxy", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.start(), loop).result(timeout=10)
            yield self
        finally:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout=15)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=15)
            loop.close()

    # -- what happened -----------------------------------------------------------------------

    @property
    def events(self) -> list[ProxyEvent]:
        """A copy of the exchanges so far, in the order they finished."""
        with self._events_lock:
            return list(self._events)

    def counts(self) -> Counter[Fault | None]:
        """Exchanges per fault (``None``: passed through untouched)."""
        return Counter(event.fault for event in self.events)

    def clear(self) -> None:
        """Forget the exchanges so far, and restart the per-request occurrence counts."""
        with self._events_lock:
            self._events.clear()
            self._seen.clear()

    def _record(self, event: ProxyEvent) -> None:
        with self._events_lock:
            self._events.append(event)

    # -- serving -----------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        conn = h11.Connection(h11.SERVER)
        keep_open = True
        try:
            while keep_open:
                received = await _read_request(conn, reader, writer)
                if received is None:
                    break
                request, body = received
                keep_open = await self._exchange(conn, writer, request, body)
                if keep_open and h11.MUST_CLOSE in (conn.our_state, conn.their_state):
                    break
                if keep_open:
                    conn.start_next_cycle()
        except h11.RemoteProtocolError as exc:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                with contextlib.suppress(Exception):
                    await _respond(conn, writer, 400, [], str(exc).encode())
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # stop() cancels open connections; the task ends here instead of reporting the
            # cancellation to asyncio's stream machinery, which logs it as an error on 3.11.
            writer.transport.abort()
        finally:
            self._connections.discard(task)
            if not writer.transport.is_closing():
                writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _exchange(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        request: h11.Request,
        body: bytes,
    ) -> bool:
        """Handle one request; False when the connection must not be used again."""
        method = request.method.decode("ascii")
        target = request.target.decode("ascii")
        plan = self.plan
        key = (method, target, hashlib.sha256(body).digest())
        with self._events_lock:
            occurrence = self._seen[key]
            self._seen[key] += 1
        fault = plan.draw(method, target, body, occurrence)

        def record(upstream: int | None, client: int | None) -> None:
            self._record(ProxyEvent(method, target, fault, upstream, client))

        if fault is not None and not fault.reaches_server:
            return await self._inflict(fault, plan, conn, writer, record, None)

        try:
            status, headers, content = await self._forward(request, body)
        except httpx.HTTPError as exc:
            message = f"fault proxy: upstream {self.upstream} failed: {type(exc).__name__}"
            record(None, 502)
            await _respond(conn, writer, 502, [(b"content-type", b"text/plain")], message.encode())
            return True
        if fault is not None:
            return await self._inflict(fault, plan, conn, writer, record, status)
        record(status, status)
        await _respond(conn, writer, status, headers, content, head=method == "HEAD")
        return True

    async def _inflict(
        self,
        fault: Fault,
        plan: FaultPlan,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        record: Callable[[int | None, int | None], None],
        upstream_status: int | None,
    ) -> bool:
        if fault in (Fault.ERROR_BEFORE, Fault.ERROR_AFTER):
            body = f"Server Error ({plan.error_status}): injected {fault.value}".encode()
            record(upstream_status, plan.error_status)
            await _respond(
                conn, writer, plan.error_status, [(b"content-type", b"text/plain")], body
            )
            return True
        if fault in (Fault.TIMEOUT_BEFORE, Fault.TIMEOUT_AFTER):
            record(upstream_status, None)
            await asyncio.sleep(plan.hang_seconds)
            writer.transport.abort()
            return False
        record(upstream_status, None)
        _reset(writer)
        return False

    async def _forward(
        self, request: h11.Request, body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        assert self._client is not None
        headers = [(k, v) for k, v in request.headers if k.lower() not in _HOP_BY_HOP]
        # A request built by hand is sent with exactly these headers (the client's defaults,
        # such as its User-Agent, are not merged in).
        outgoing = httpx.Request(
            request.method.decode("ascii"),
            self.upstream + request.target.decode("ascii"),
            headers=headers,
            content=body,
        )
        response = await self._client.send(outgoing, stream=True)
        try:
            content = b"".join([chunk async for chunk in response.aiter_raw()])
        finally:
            await response.aclose()
        kept = [(k, v) for k, v in response.headers.raw if k.lower() not in _HOP_BY_HOP]
        if request.method == b"HEAD" and "content-length" in response.headers:
            kept.append((b"content-length", response.headers["content-length"].encode()))
        return response.status_code, kept, content


async def _read_request(
    conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> tuple[h11.Request, bytes] | None:
    """The next complete request on the connection, or None when the client closed it."""
    request: h11.Request | None = None
    chunks: list[bytes] = []
    size = 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(65536))
        elif isinstance(event, h11.Request):
            request = event
            if conn.they_are_waiting_for_100_continue:  # curl, for bodies over 1 KiB
                writer.write(
                    conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b""
                )
        elif isinstance(event, h11.Data):
            size += len(event.data)
            if size > _MAX_BODY:
                raise h11.RemoteProtocolError("request body too large for the fault proxy")
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            assert request is not None
            return request, b"".join(chunks)
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None


async def _respond(
    conn: h11.Connection,
    writer: asyncio.StreamWriter,
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    *,
    head: bool = False,
) -> None:
    has_body = not head and status >= 200 and status not in (204, 304)
    if has_body:
        headers = [*headers, (b"content-length", str(len(body)).encode())]
    out = conn.send(h11.Response(status_code=status, headers=headers, reason=b""))
    if has_body and body:
        out = (out or b"") + (conn.send(h11.Data(data=body)) or b"")
    out = (out or b"") + (conn.send(h11.EndOfMessage()) or b"")
    writer.write(out)
    await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST instead of a FIN: linger on, timeout zero."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
