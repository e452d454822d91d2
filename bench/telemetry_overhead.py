"""Cost of the telemetry middleware per request (request id, metrics, one JSON log line).

Calls a trivial Starlette endpoint directly through ASGI (no HTTP, no client) with and without
:class:`adapter.ops.telemetry.TelemetryMiddleware`, the log line formatted as JSON into a null
stream, and prints a table. Run: ``python bench/telemetry_overhead.py [N]``.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from adapter.config import LogsConfig, TelemetryConfig
from adapter.ops.logs import JsonFormatter
from adapter.ops.telemetry import ACCESS_LOGGER, Telemetry, TelemetryMiddleware


async def task(request: Request) -> JSONResponse:
    return JSONResponse({"id": request.path_params["id"], "subject": "Call"})


def build(telemetry: Telemetry | None) -> Starlette:
    app = Starlette(routes=[Route("/tasks/{id}", task)])
    if telemetry is not None:
        app.add_middleware(TelemetryMiddleware, telemetry=telemetry)
    return app


async def run(app: Starlette, n: int) -> float:
    body = b'{"contacts": [{"externalId": "a", "email": "a@b.example"}]}'
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    scope_base = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "server": ("t", 80),
        "client": ("c", 1),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"t")],
    }
    for i in range(200):  # warm-up
        await app(dict(scope_base, path=f"/tasks/{i}", raw_path=b""), receive, send)
    start = time.perf_counter()
    for i in range(n):
        await app(dict(scope_base, path=f"/tasks/{i}", raw_path=b""), receive, send)
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    variants = {
        "no middleware": None,
        "telemetry (default)": Telemetry(),
        "telemetry, debug bodies": Telemetry(TelemetryConfig(logs=LogsConfig(bodies=True))),
    }
    results = {name: asyncio.run(run(build(t), n)) for name, t in variants.items()}
    base = results["no middleware"]
    print(f"{'variant':<26} {'us/request':>11} {'overhead us':>12}   (n={n})")
    for name, us in results.items():
        print(f"{name:<26} {us:>11.1f} {us - base:>12.1f}")
    # Reset the buffer so the log lines written above do not pile up in memory.
    handler.stream = io.StringIO()


if __name__ == "__main__":
    main()
