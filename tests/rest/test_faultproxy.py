"""The fault-injecting proxy: transparent when told to be, each fault does what it says (the
server did or did not see the write), rates hold, and draws are reproducible by seed."""

from __future__ import annotations

import gzip
import json
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.browser_support import free_port, serve
from tests.rest.servers.faultproxy import Fault, FaultPlan, FaultProxy


class Upstream:
    """A small server that records every write it handles."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.lock = threading.Lock()

    def app(self) -> Starlette:
        async def items(request: Request) -> Response:
            if request.method == "POST":
                body = await request.body()
                with self.lock:
                    self.writes.append(body)
                    number = len(self.writes)
                return JSONResponse({"id": number}, status_code=201)
            return JSONResponse({"count": len(self.writes)})

        async def echo(request: Request) -> Response:
            return JSONResponse(
                {
                    "method": request.method,
                    "path": request.url.path,
                    "query": request.url.query,
                    "host": request.headers.get("host"),
                    "user_agent": request.headers.get("user-agent"),
                    "custom": request.headers.get("x-custom"),
                    "body": (await request.body()).decode(),
                },
                headers={"X-Upstream": "yes"},
            )

        async def gzipped(request: Request) -> Response:
            return Response(
                gzip.compress(b"compressed payload"),
                headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"},
            )

        async def moved(request: Request) -> Response:
            return RedirectResponse("/echo/", status_code=301)

        async def empty(request: Request) -> Response:
            return Response(status_code=204)

        return Starlette(
            routes=[
                Route("/items/", items, methods=["GET", "POST"]),
                Route("/echo/", echo, methods=["GET", "POST", "PATCH", "HEAD"]),
                Route("/gzip/", gzipped),
                Route("/moved", moved, methods=["GET", "POST"]),
                Route("/empty/", empty, methods=["DELETE"]),
            ]
        )


@pytest.fixture(scope="module")
def upstream_server() -> Iterator[tuple[Upstream, str]]:
    upstream = Upstream()
    with serve(upstream.app(), free_port()) as url:
        yield upstream, url


@pytest.fixture
def upstream(upstream_server: tuple[Upstream, str]) -> Upstream:
    server, _ = upstream_server
    with server.lock:
        server.writes.clear()
    return server


@pytest.fixture
def upstream_url(upstream_server: tuple[Upstream, str]) -> str:
    return upstream_server[1]


def test_without_faults_the_proxy_is_transparent(upstream: Upstream, upstream_url: str) -> None:
    with (
        FaultProxy(upstream_url).in_thread() as proxy,
        httpx.Client(base_url=proxy.url, timeout=5) as client,
    ):
        answer = client.post("/echo/?a=1&b=%2B2", content=b'{"x": 1}', headers={"X-Custom": "kept"})
        assert answer.status_code == 200
        assert answer.headers["x-upstream"] == "yes"
        seen = answer.json()
        assert seen["method"] == "POST"
        assert seen["path"] == "/echo/"
        assert seen["query"] == "a=1&b=%2B2"
        assert seen["body"] == '{"x": 1}'
        assert seen["custom"] == "kept"
        # The client's Host reaches the server, so its redirects point back at the proxy.
        assert seen["host"] == proxy.url.removeprefix("http://")
        assert seen["user_agent"] == client.headers["user-agent"]

        moved = client.get("/moved")
        assert moved.status_code == 301
        assert moved.headers["location"].endswith("/echo/")
        assert client.get("/gzip/").text == "compressed payload"  # decoded by the client
        assert client.head("/echo/").status_code == 200
        assert client.delete("/empty/").status_code == 204
        # Several exchanges above went over one kept-alive connection; all were recorded.
        assert [e.client_status for e in proxy.events] == [200, 301, 200, 200, 204]
        assert proxy.counts() == {None: 5}


def test_error_after_the_server_did_the_write(upstream: Upstream, upstream_url: str) -> None:
    plan = FaultPlan({Fault.ERROR_AFTER: 1.0})
    with (
        FaultProxy(upstream_url, plan).in_thread() as proxy,
        httpx.Client(base_url=proxy.url, timeout=5) as client,
    ):
        answer = client.post("/items/", content=b"one")
        assert answer.status_code == 500
        assert upstream.writes == [b"one"]
        [event] = proxy.events
        assert (event.fault, event.upstream_status, event.client_status) == (
            Fault.ERROR_AFTER,
            201,
            500,
        )


def test_error_before_the_server_never_sees_it(upstream: Upstream, upstream_url: str) -> None:
    plan = FaultPlan({Fault.ERROR_BEFORE: 1.0}, error_status=503)
    with (
        FaultProxy(upstream_url, plan).in_thread() as proxy,
        httpx.Client(base_url=proxy.url, timeout=5) as client,
    ):
        assert client.post("/items/", content=b"one").status_code == 503
        assert upstream.writes == []
        assert proxy.events[0].upstream_status is None


@pytest.mark.parametrize(
    ("fault", "reaches"), [(Fault.RESET_AFTER, True), (Fault.RESET_BEFORE, False)]
)
def test_resets(upstream: Upstream, upstream_url: str, fault: Fault, reaches: bool) -> None:
    with (
        FaultProxy(upstream_url, FaultPlan({fault: 1.0})).in_thread() as proxy,
        httpx.Client(base_url=proxy.url, timeout=5) as client,
    ):
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            client.post("/items/", content=b"one")
        assert upstream.writes == ([b"one"] if reaches else [])
        assert proxy.events[0].client_status is None


@pytest.mark.parametrize(
    ("fault", "reaches"), [(Fault.TIMEOUT_AFTER, True), (Fault.TIMEOUT_BEFORE, False)]
)
def test_timeouts(upstream: Upstream, upstream_url: str, fault: Fault, reaches: bool) -> None:
    plan = FaultPlan({fault: 1.0}, hang_seconds=5)
    with (
        FaultProxy(upstream_url, plan).in_thread() as proxy,
        httpx.Client(base_url=proxy.url, timeout=0.3) as client,
    ):
        with pytest.raises(httpx.ReadTimeout):
            client.post("/items/", content=b"one")
        assert upstream.writes == ([b"one"] if reaches else [])
        # Turning faults off applies to the next exchange.
        proxy.plan = FaultPlan()
        assert client.post("/items/", content=b"two").status_code == 201


def test_upstream_down_is_a_502(upstream_url: str) -> None:
    with (
        FaultProxy(f"http://127.0.0.1:{free_port()}").in_thread() as proxy,
        httpx.Client(base_url=proxy.url, timeout=5) as client,
    ):
        answer = client.get("/anything/")
        assert answer.status_code == 502
        assert proxy.events[0].upstream_status is None


def test_rates_methods_and_paths(upstream: Upstream, upstream_url: str) -> None:
    plan = FaultPlan(
        {Fault.ERROR_AFTER: 0.1, Fault.ERROR_BEFORE: 0.1},
        seed=11,
        methods={"post"},
        path=r"^/items/",
    )
    total = 600
    with (
        FaultProxy(upstream_url, plan).in_thread() as proxy,
        httpx.Client(base_url=proxy.url, timeout=5) as client,
    ):
        for number in range(total):
            client.post("/items/", content=json.dumps({"n": number}).encode())
        for _ in range(50):
            assert client.get("/items/").status_code == 200  # wrong method: never faulted
            assert client.post("/echo/", content=b"x").status_code == 200  # wrong path
        counts = proxy.counts()
    # Binomial(600, 0.1): mean 60, standard deviation ~7.3; 4 sigma either side.
    for fault in (Fault.ERROR_AFTER, Fault.ERROR_BEFORE):
        assert 30 <= counts[fault] <= 90, counts
    assert counts[None] == total + 100 - counts[Fault.ERROR_AFTER] - counts[Fault.ERROR_BEFORE]
    # Writes reached the server for every request but the error_before ones.
    assert len(upstream.writes) == total - counts[Fault.ERROR_BEFORE]


def test_the_same_requests_get_the_same_faults_in_any_order(upstream_url: str) -> None:
    plan = FaultPlan({Fault.ERROR_BEFORE: 0.3}, seed=5)
    bodies = [f"record-{n}".encode() for n in range(60)]

    def faults(order: list[bytes], workers: int) -> dict[bytes, Fault | None]:
        with (
            FaultProxy(upstream_url, plan).in_thread() as proxy,
            httpx.Client(base_url=proxy.url, timeout=5) as client,
            ThreadPoolExecutor(workers) as pool,
        ):
            statuses = dict(
                zip(order, pool.map(lambda b: client.post("/echo/", content=b), order), strict=True)
            )
            return {
                body: Fault.ERROR_BEFORE if answer.status_code == 500 else None
                for body, answer in statuses.items()
            }

    serial = faults(bodies, 1)
    concurrent = faults(list(reversed(bodies)), 8)
    assert serial == concurrent
    assert 5 <= sum(f is not None for f in serial.values()) <= 35
    other_seed = FaultPlan({Fault.ERROR_BEFORE: 0.3}, seed=6)
    assert [other_seed.draw("POST", "/echo/", b, 0) for b in bodies] != [serial[b] for b in bodies]


def test_a_retry_draws_afresh(upstream: Upstream, upstream_url: str) -> None:
    plan = FaultPlan({Fault.ERROR_AFTER: 0.5}, seed=3)
    with (
        FaultProxy(upstream_url, plan).in_thread() as proxy,
        httpx.Client(base_url=proxy.url, timeout=5) as client,
    ):
        statuses = [client.post("/items/", content=b"same").status_code for _ in range(40)]
    assert set(statuses) == {201, 500}
    assert len(upstream.writes) == 40
    assert [e.fault is not None for e in proxy.events] == [s == 500 for s in statuses]


def test_plans_are_validated() -> None:
    with pytest.raises(ValueError, match="more than 1"):
        FaultPlan({Fault.ERROR_AFTER: 0.7, Fault.RESET_AFTER: 0.7})
    with pytest.raises(ValueError, match="within"):
        FaultPlan({Fault.ERROR_AFTER: -0.1})
    with pytest.raises(ValueError, match="5xx"):
        FaultPlan(error_status=404)
    with pytest.raises(ValueError, match="origin"):
        FaultProxy("https://example.test")
    assert FaultPlan.parse_rates(["error_after=0.05", "RESET_BEFORE=0.01"]) == {
        Fault.ERROR_AFTER: 0.05,
        Fault.RESET_BEFORE: 0.01,
    }
    with pytest.raises(ValueError, match="faults:"):
        FaultPlan.parse_rates(["explode=0.5"])


def test_expect_100_continue_is_answered(upstream: Upstream, upstream_url: str) -> None:
    """curl sends ``Expect: 100-continue`` before a body over 1 KiB and waits for the go-ahead."""
    body = b"x" * 4096
    with FaultProxy(upstream_url).in_thread() as proxy:
        port = int(proxy.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(
                b"POST /items/ HTTP/1.1\r\nHost: proxy\r\nContent-Length: 4096\r\n"
                b"Expect: 100-continue\r\n\r\n"
            )
            assert sock.recv(1024).startswith(b"HTTP/1.1 100 ")
            sock.sendall(body)
            answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 201 ")
    assert upstream.writes == [body]
