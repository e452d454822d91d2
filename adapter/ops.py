"""Wiring of the operations features into the app: one call, :func:`install`.

What it adds to an app built by :func:`adapter.app.create_app`:

* :class:`~adapter.telemetry.TelemetryMiddleware`, outermost, so that every request —
  rejected ones included — gets a request id, metrics and its log line;
* backend instrumentation (call latency, errors, records per operation) on the driver
  instance the service already holds; drivers that retry upstream get
  ``backend.on_upstream_retry(reason)``;
* ``GET /openapi.json`` and ``GET /metrics`` (unless ``observability.metrics.listen`` moves
  metrics to their own listener) as ordinary routes, behind the API-key middleware like the
  contract's routes (and under ``server.root_path``);
* the dashboard under ``/ui``, dispatched *before* the API-key middleware because it has its own
  authentication (HTTP Basic, see :mod:`adapter.ui`) — a browser cannot send ``X-API-Key``.

The instance's :class:`~adapter.telemetry.Telemetry` is ``app.state.telemetry``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from adapter.instrument import instrument_backend
from adapter.telemetry import (
    Telemetry,
    TelemetryMiddleware,
    metrics_endpoint,
)
from adapter.ui import UI_PREFIX, build_ui_app
from backends.base import Backend

if TYPE_CHECKING:
    from adapter.config import Settings

__all__ = [
    "OPENAPI_PATH",
    "UIDispatch",
    "WorkersRefused",
    "check_workers",
    "install",
    "is_process_local",
    "run_server",
    "worker_app",
]

OPENAPI_PATH = "/openapi.json"
_log = logging.getLogger(__name__)


class UIDispatch:
    """Pure ASGI: requests under ``<root_path>/ui`` go to the dashboard app, the rest on."""

    def __init__(self, app: ASGIApp, ui_app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.ui_app = ui_app
        self.prefix = prefix
        self.prefix_slash = prefix + "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root):]
            if path == self.prefix or path.startswith(self.prefix_slash):
                await self.ui_app(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install(app: Starlette, settings: Settings, backend: Backend) -> Telemetry:
    """Add metrics, request logs, ``/openapi.json`` and the ``/ui`` dashboard to ``app``.

    Call it from ``create_app`` before the app starts, with the backend the service uses.
    """
    obs = settings.observability
    ui_cfg = settings.ui
    root = settings.server.root_path
    keys = [k.get_secret_value() for k in settings.auth.keys]
    telemetry = Telemetry(
        obs, recent_calls=ui_cfg.recent_calls, secret_headers=(settings.auth.header.lower(),),
        # Debug body logs scrub the service's own keys wherever they appear (telemetry.redact).
        secret_values=tuple(keys),
        # Dashboard and ops traffic is not what the "recent calls" list is for.
        not_recent=(*(root + p for p in ("/ui", obs.metrics.path, OPENAPI_PATH)),
                    "/favicon.ico"),
    )
    app.state.telemetry = telemetry
    instrument_backend(backend, telemetry)
    # Drivers that retry upstream calls report each retry here (see docs/operations.md).
    backend.on_upstream_retry = lambda reason: telemetry.upstream_retry(backend.name, reason)

    routes: list[BaseRoute] = [Route(OPENAPI_PATH, _openapi_endpoint(settings), methods=["GET"])]
    if obs.metrics.enabled and obs.metrics.listen is None:
        routes.append(Route(obs.metrics.path,
                            metrics_endpoint(telemetry, settings.auth.header, lambda: keys),
                            methods=["GET"]))
    _add_routes(app, settings.server.root_path, routes)

    if ui_cfg.enabled:
        ui_app = build_ui_app(settings, backend, telemetry, ui_cfg)
        if root:
            ui_app = Starlette(routes=[Mount(root, app=ui_app)])
        app.add_middleware(UIDispatch, ui_app=ui_app, prefix=root + UI_PREFIX)
    # Added last, so it is the outermost middleware: it sees every request and response.
    app.add_middleware(TelemetryMiddleware, telemetry=telemetry)

    if obs.metrics.enabled and obs.metrics.listen is not None:
        _serve_metrics_separately(app, telemetry, obs.metrics.listen)
    return telemetry


# --------------------------------------------------------------------------------------------
# Serving: logging, workers, graceful shutdown (called by ``enginy-adapter serve``)
# --------------------------------------------------------------------------------------------


class WorkersRefused(Exception):
    """``server.workers`` > 1 with a driver whose data lives in one process."""


def is_process_local(backend: Backend) -> bool:
    """Whether the driver's data lives in this process only (several workers would each see
    their own copy): drivers say so with :attr:`Backend.process_local`."""
    return backend.process_local


def check_workers(settings: Settings, backend: Backend) -> None:
    """Raise :class:`WorkersRefused` when ``server.workers`` cannot work with ``backend``."""
    workers = settings.server.workers
    if workers > 1 and is_process_local(backend):
        raise WorkersRefused(
            f"server.workers: {workers} workers with the {backend.name} driver would split its "
            "data between processes (each worker would see only the records it stored); use "
            "1 worker, or a shared backend (sql on PostgreSQL/MySQL, hubspot)")


def run_server(settings: Settings, app: Starlette, backend: Backend, *, log_level: str,
               config_path: str | None) -> None:
    """Configure logging and run uvicorn: in-process with one worker, else ``workers``
    processes that each rebuild the app from the same configuration.

    SIGTERM/SIGINT: uvicorn stops accepting, lets in-flight requests finish for up to
    ``server.graceful_shutdown_seconds``, then runs the lifespan shutdown (driver close).
    """
    import os

    import uvicorn

    from adapter.telemetry import configure_logging

    check_workers(settings, backend)
    configure_logging(settings.observability.logs)
    # A start-up stopped for a configuration reason is logged in one line by the app
    # (adapter/startup.py); uvicorn's own "Application startup failed" would be a second one.
    gate = getattr(getattr(app, "state", None), "backend_gate", None)
    logging.getLogger("uvicorn.error").addFilter(
        lambda record: gate is None or gate.fatal is None
        or record.getMessage() != "Application startup failed. Exiting.")
    common: dict[str, Any] = {
        "host": settings.server.host,
        "port": settings.server.port,
        "log_level": log_level,
        "log_config": None,  # configure_logging above owns the handlers and format
        "access_log": False,  # the telemetry middleware writes one line per request
        "server_header": False,
        "timeout_graceful_shutdown": settings.server.graceful_shutdown_seconds or None,
    }
    if settings.server.workers == 1:
        uvicorn.run(app, **common)
        return
    # Worker processes are spawned fresh and load the settings again: hand them the same
    # inputs through the variables load_settings already reads (never on a command line).
    from adapter.config import ENV_API_KEY, ENV_CONFIG, ENV_HOST, ENV_PORT

    if config_path:
        os.environ[ENV_CONFIG] = os.path.abspath(config_path)
    os.environ[ENV_HOST] = settings.server.host
    os.environ[ENV_PORT] = str(settings.server.port)
    keys = settings.auth.keys
    if keys and not os.environ.get(ENV_API_KEY):
        # A key generated for this run (ensure_api_key) exists only in memory; the workers
        # must accept it too. A configured key is already in the file or the environment.
        os.environ[ENV_API_KEY] = keys[-1].get_secret_value()
    uvicorn.run("adapter.ops:worker_app", factory=True, workers=settings.server.workers,
                **common)


def worker_app() -> Starlette:
    """The app of one worker process (``uvicorn --factory adapter.ops:worker_app``)."""
    from adapter.app import create_app
    from adapter.config import load_settings
    from adapter.telemetry import configure_logging

    settings = load_settings(None)
    configure_logging(settings.observability.logs)
    return create_app(settings)


def _add_routes(app: Starlette, root_path: str, routes: list[BaseRoute]) -> None:
    if not root_path:
        app.router.routes.extend(routes)
        return
    # The contract's routes live in one Mount at the root path; a second Mount with the same
    # prefix would never be reached, so the routes join the existing one.
    for route in app.router.routes:
        if isinstance(route, Mount) and route.path == root_path:
            route.routes.extend(routes)
            return
    app.router.routes.append(Mount(root_path, routes=routes))


def _openapi_endpoint(settings: Settings) -> Any:
    document: dict[str, Any] | None = None

    async def openapi(request: Request) -> Response:
        nonlocal document
        if document is None:
            from adapter.openapi import build_openapi

            document = build_openapi(settings)
        return JSONResponse(document)

    return openapi


def _serve_metrics_separately(app: Starlette, telemetry: Telemetry, listen: str) -> None:
    """Start a plain Prometheus listener on ``listen`` for the app's lifetime."""
    from prometheus_client import start_http_server

    host, _, port = listen.rpartition(":")
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Starlette) -> AsyncIterator[Any]:
        server, thread = start_http_server(int(port), addr=host.strip("[]"),
                                           registry=telemetry.registry)
        _log.info("metrics served on http://%s/metrics", listen)
        try:
            async with inner(a) as state:
                yield state
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

    app.router.lifespan_context = lifespan
