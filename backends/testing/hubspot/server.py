"""Serve one fake HubSpot portal over loopback HTTP, for tests with several processes.

    python -m backends.testing.hubspot.server [--port 0] [--token T] [--rate-limit 100]
                                              [--search-lag 2] [--auto-create-companies]

Prints ``http://127.0.0.1:<port>`` on its first line once it accepts connections (``--port 0``
picks a free port), then serves until stopped. Every adapter process pointed at that URL
(``backend.options.base_url``) shares the one portal, its state and its rate windows, as
replicas share a real portal. ``GET /_fake/calls`` returns the request log as JSON and
``GET /_fake/objects`` the stored objects (the test's view of what an administrator would see).
"""

from __future__ import annotations

import argparse
import asyncio
import select
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import asdict
from typing import Any

import httpx

from backends.testing.hubspot.portal import FakeHubSpot

__all__ = ["FakePortalApp", "FakePortalProcess", "main"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class FakePortalApp:
    """An ASGI app answering every request from one :class:`FakeHubSpot`."""

    def __init__(self, portal: FakeHubSpot) -> None:
        self.portal = portal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        if path.startswith("/_fake/"):
            response = self._inspect(path)
        else:
            query = scope.get("query_string", b"").decode()
            url = f"http://fake.invalid{path}" + (f"?{query}" if query else "")
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
            request = httpx.Request(scope["method"], url, headers=headers, content=body)
            response = await self.portal.handle(request)
        content = response.content
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [
                    (k.encode("latin-1"), v.encode("latin-1"))
                    for k, v in response.headers.items()
                    if k.lower() not in ("content-length", "transfer-encoding")
                ]
                + [(b"content-length", str(len(content)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": content})

    def _inspect(self, path: str) -> httpx.Response:
        if path == "/_fake/calls":
            return httpx.Response(200, json=[asdict(c) for c in self.portal.calls])
        if path == "/_fake/objects":
            return httpx.Response(200, json=self.portal.objects)
        return httpx.Response(404, json={"message": "unknown inspection path"})


class FakePortalProcess:
    """Run :func:`main` in a child process for the length of a ``with`` block::

    with FakePortalProcess(["--rate-limit", "100"]) as portal:
        use(portal.url)            # http://127.0.0.1:<port>
        portal.get("/_fake/calls")  # the request log, decoded
    """

    def __init__(self, args: Sequence[str] = (), *, start_timeout: float = 30.0) -> None:
        self.args, self.start_timeout = list(args), start_timeout
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> FakePortalProcess:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "backends.testing.hubspot.server", *self.args],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        ready = select.select([self._process.stdout], [], [], self.start_timeout)[0]
        line = self._process.stdout.readline().strip() if ready else ""
        if not line.startswith("http://"):
            self.__exit__()
            raise RuntimeError("the fake HubSpot portal did not start")
        self.url = line
        return self

    def get(self, path: str) -> Any:
        return httpx.get(self.url + path, timeout=30).json()

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="pat-na1-fake-token")
    parser.add_argument("--rate-limit", type=int, default=100, help="calls per 10 s (0: none)")
    parser.add_argument("--search-per-second", type=int, default=5)
    parser.add_argument("--search-lag", type=float, default=2.0)
    parser.add_argument("--auto-create-companies", action="store_true")
    parser.add_argument("--auto-create-delay", type=float, default=0.0)
    parser.add_argument("--owners", type=int, default=2)
    args = parser.parse_args(argv)
    portal = FakeHubSpot(
        token=args.token,
        rate_limit=args.rate_limit or None,
        search_per_second=args.search_per_second or None,
        search_lag=args.search_lag,
        auto_create_companies=args.auto_create_companies,
        auto_create_delay=args.auto_create_delay,
    )
    for n in range(args.owners):
        portal.add_owner(f"Owner{n}", "Fake", f"owner{n}@example.com")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(2048)
    config = uvicorn.Config(FakePortalApp(portal), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    print(f"http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    asyncio.run(server.serve(sockets=[sock]))


if __name__ == "__main__":
    main()
