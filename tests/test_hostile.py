"""Hostile and broken clients against a real server, over raw sockets.

Each test runs the app under uvicorn (in a thread, on a port of its own) with the guarded
protocol of :mod:`adapter.ops.connections`, once per HTTP implementation uvicorn may pick (h11
always; httptools when installed), and talks to it byte by byte: stalled and trickled headers,
idle keep-alive, the connection cap, stalled and abandoned uploads, made-up methods without a
key. Limits are set low (fractions of a second) so that the suite stays fast; what is measured
is whether the server closes and answers, never how fast (bench/hostile.py does that).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import uvicorn
from starlette.applications import Starlette

from adapter.app import create_app
from adapter.config import LimitsConfig
from adapter.ops.connections import STATS, guarded_protocol
from backends.memory import MemoryBackend
from tests.conftest import API_KEY, make_settings

IMPLEMENTATIONS = [
    "h11",
    pytest.param(
        "httptools",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("httptools") is None, reason="httptools is not installed"
        ),
    ),
]

#: Limits small enough for a test to wait them out.
FAST = {
    "header_timeout_seconds": 0.5,
    "keep_alive_seconds": 0.5,
    "body_timeout_seconds": 0.5,
}
#: Longest a test waits for the server to do something it must do by itself.
PATIENCE = 10.0


class SlowPing(MemoryBackend):
    """``/health`` (with ``health_cache_seconds: 0``) stays in flight for a while."""

    name = "slowping"
    process_local: ClassVar[bool] = False

    async def ping(self) -> None:
        await asyncio.sleep(1.0)


@contextlib.contextmanager
def running(app: Starlette, limits: LimitsConfig, http: str) -> Iterator[int]:
    """Serve ``app`` with the guarded protocol; yield the port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = int(listener.getsockname()[1])
    config = uvicorn.Config(
        app,
        http=guarded_protocol(limits, http),
        timeout_keep_alive=limits.keep_alive_seconds,  # type: ignore[arg-type]
        log_config=None,
        access_log=False,
        lifespan="on",
        ws="none",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


def serve_with(
    http: str, backend: Any = None, **server: Any
) -> contextlib.AbstractContextManager[int]:
    limits = {**FAST, **server.pop("limits", {})}
    settings = make_settings(server={**server, "limits": limits})
    app = create_app(settings, backend or MemoryBackend())
    return running(app, settings.server.limits, http)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (fails if it never does)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def request(
    method: str,
    path: str,
    body: bytes = b"",
    *,
    key: str | None = API_KEY,
    headers: dict[str, str] | None = None,
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: adapter"]
    if key is not None:
        lines.append(f"X-API-Key: {key}")
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response with a Content-Length body, from a kept-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a response: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk
        rest += chunk
    return int(status_line.split()[1]), headers, rest[:length]


def status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


# -- headers --------------------------------------------------------------------------------


@pytest.mark.parametrize("http", IMPLEMENTATIONS)
def test_stalled_headers_get_408_and_the_connection_closes(http: str) -> None:
    before = STATS.closed["header_timeout"]
    with serve_with(http) as port, connect(port) as sock:
        sock.sendall(b"POST /contacts HTTP/1.1\r\nHost: adapter\r\nX-API-Key: ")
        started = time.monotonic()
        raw = read_until_closed(sock)
        waited = time.monotonic() - started
    assert status_of(raw) == 408
    assert json.loads(raw.partition(b"\r\n\r\n")[2])["error"] == "request_timeout"
    assert waited < PATIENCE
    assert STATS.closed["header_timeout"] == before + 1


@pytest.mark.parametrize("http", IMPLEMENTATIONS)
def test_a_connection_that_never_sends_a_byte_is_closed_silently(http: str) -> None:
    with serve_with(http) as port, connect(port) as sock:
        assert read_until_closed(sock) == b""


@pytest.mark.parametrize("http", IMPLEMENTATIONS)
def test_trickled_headers_are_bounded_by_the_deadline_not_by_idleness(http: str) -> None:
    """One byte every 0.1 s (each resets any idle timer): closed at the header deadline."""
    head = request("GET", "/health")
    with serve_with(http) as port, connect(port) as sock:
        sock.settimeout(0.1)
        closed_after = None
        started = time.monotonic()
        for byte in head[:-4]:  # never the final blank line
            try:
                sock.sendall(bytes([byte]))
                if sock.recv(65536) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - started
                break
        assert closed_after is not None, "the server kept a trickling connection open"
        assert closed_after < len(head) * 0.1  # before the headers could ever complete


@pytest.mark.parametrize("http", IMPLEMENTATIONS)
def test_a_kept_alive_connection_serves_several_requests_then_idles_out(http: str) -> None:
    with serve_with(http) as port, connect(port) as sock:
        for _ in range(3):
            sock.sendall(request("GET", "/health"))
            status, _, _ = read_response(sock)
            assert status == 200
            time.sleep(0.2)  # idle, but less than keep_alive_seconds
        started = time.monotonic()
        assert read_until_closed(sock) == b""
        assert time.monotonic() - started < PATIENCE


@pytest.mark.parametrize("http", IMPLEMENTATIONS)
def test_the_header_deadline_restarts_with_each_request_on_a_kept_alive_connection(
    http: str,
) -> None:
    """A second request whose head stalls after a served one is cut at the deadline too."""
    with serve_with(http, limits={"keep_alive_seconds": 5}) as port, connect(port) as sock:
        sock.sendall(request("GET", "/health"))
        assert read_response(sock)[0] == 200
        sock.sendall(b"GET /health HTTP/1.1\r\nHo")
        assert status_of(read_until_closed(sock)) == 408


# -- the connection cap ---------------------------------------------------------------------


@pytest.mark.parametrize("http", IMPLEMENTATIONS)
def test_at_the_cap_the_oldest_idle_connection_makes_room(http: str) -> None:
    before = STATS.closed["evicted"]
    with serve_with(http, limits={"max_connections": 3, "header_timeout_seconds": 30}) as port:
        idle = [connect(port) for _ in range(3)]
        time.sleep(0.2)
        with connect(port) as fresh:
            fresh.sendall(request("GET", "/health"))
            assert read_response(fresh)[0] == 200
        # The oldest silent connection was closed for it; the others are still open.
        assert read_until_closed(idle[0]) == b""
        for sock in idle:
            sock.close()
    assert STATS.closed["evicted"] >= before + 1


@pytest.mark.parametrize("http", IMPLEMENTATIONS)
def test_at_the_cap_with_every_connection_busy_the_new_one_gets_503_retry_after(
    http: str,
) -> None:
    before = STATS.closed["refused"]
    with serve_with(
        http, SlowPing(), health_cache_seconds=0, limits={"max_connections": 2}
    ) as port:
        busy = [connect(port) for _ in range(2)]
        for sock in busy:
            sock.sendall(request("GET", "/health"))
        time.sleep(0.3)  # both requests are being served (the ping takes a second)
        with connect(port) as extra:
            raw = read_until_closed(extra)
        assert status_of(raw) == 503
        head, _, body = raw.partition(b"\r\n\r\n")
        assert b"retry-after: 1" in head.lower()
        assert json.loads(body)["error"] == "overloaded"
        for sock in busy:  # the busy ones are answered as usual
            assert read_response(sock)[0] == 200
            sock.close()
    assert STATS.closed["refused"] == before + 1


# -- bodies ---------------------------------------------------------------------------------


@pytest.mark.parametrize("http", IMPLEMENTATIONS)
def test_a_stalled_upload_gets_408_and_the_connection_closes(
    http: str, access_lines: list[logging.LogRecord]
) -> None:
    body = b'{"contacts": [{"externalId": "a"}]}'
    with serve_with(http) as port, connect(port) as sock:
        sock.sendall(request("POST", "/contacts", body)[: -len(body) + 5])
        raw = read_until_closed(sock)
    assert status_of(raw) == 408
    assert b"connection: close" in raw.lower()
    [line] = [r.access for r in access_lines]  # type: ignore[attr-defined]
    assert (line["status"], line["error"], line["route"]) == (408, "request_timeout", "/contacts")


@pytest.mark.parametrize("http", IMPLEMENTATIONS)
def test_a_client_that_drops_mid_upload_is_a_quiet_disconnect(
    http: str, access_lines: list[logging.LogRecord], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    body = b'{"contacts": [' + b'{"externalId": "a"},' * 1000 + b'{"externalId": "b"}]}'
    settings_limits = {"body_timeout_seconds": 5}
    with serve_with(http, limits=settings_limits) as port:
        with connect(port) as sock:
            sock.sendall(request("POST", "/contacts", body)[: -len(body) // 2])
            time.sleep(0.3)
        deadline = time.monotonic() + PATIENCE
        while not access_lines and time.monotonic() < deadline:
            time.sleep(0.05)
        with connect(port) as sock:
            sock.sendall(request("GET", "/metrics"))
            metrics = read_response(sock)[2].decode()
    line = access_lines[0]
    assert line.access["status"] == 499  # type: ignore[attr-defined]
    assert line.access["error"] == "client_disconnected"  # type: ignore[attr-defined]
    assert line.levelno == logging.INFO
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "Traceback" not in caplog.text
    assert 'enginy_adapter_http_client_disconnects_total{route="/contacts"} 1.0' in metrics
    assert 'status="500"' not in metrics


# -- labels ---------------------------------------------------------------------------------


#: Methods a scanner may send: WebDAV's and made-up ones (llhttp, under httptools, refuses the
#: made-up ones itself with a 400 before the app sees them).
ODD_METHODS = ["PROPFIND", "MKCOL", "LOCK", "SEARCH", "PURGE", "REPORT"] + [
    f"PROBE{i}" for i in range(60)
]


@pytest.mark.parametrize("http", IMPLEMENTATIONS)
def test_keyless_requests_with_odd_methods_add_no_time_series(http: str) -> None:
    def metric_lines(port: int) -> set[str]:
        with connect(port) as sock:
            sock.sendall(request("GET", "/metrics"))
            text = read_response(sock)[2].decode()
        return {
            line.rsplit(" ", 1)[0]
            for line in text.splitlines()
            if line.startswith("enginy_adapter_http")
        }

    def probe(port: int, method: str, i: int) -> None:
        with connect(port) as sock:
            sock.sendall(request(method, f"/scan/{i}", key=None, headers={"Connection": "close"}))
            assert status_of(read_until_closed(sock)[:16]) in (400, 401)

    with serve_with(http) as port:
        for i, method in enumerate(ODD_METHODS[:8]):
            probe(port, method, i)
        metric_lines(port)  # the scrape's own series
        first = metric_lines(port)
        for i, method in enumerate(ODD_METHODS * 3):
            probe(port, method, 100 + i)
        after = metric_lines(port)
    assert after == first
    assert any('method="OTHER",route="unauthorized",status="401"' in s for s in after)
    assert not any("PROBE" in s or "PROPFIND" in s or "/scan" in s for s in after)


def test_the_connection_cap_is_lowered_to_what_the_descriptor_limit_allows(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import resource

    from adapter.ops.connections import effective_max_connections

    monkeypatch.setattr(resource, "getrlimit", lambda _which: (1024, 4096))
    assert effective_max_connections(500) == 500
    assert effective_max_connections(5000) == 1024 - 64
    assert "ulimit -n" in caplog.text
