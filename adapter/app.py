"""The composition root: the one place that builds the application from :class:`Settings`.

:func:`create_app` puts the layers together (``docs/architecture.md``): the driver
(:func:`adapter.config.build_backend`), the :class:`~adapter.service.Service` over it, the
contract's routes (:mod:`adapter.http`), and around them, outermost first:

1. :class:`~adapter.ops.telemetry.TelemetryMiddleware`, so that every request — rejected ones
   included — gets a request id, metrics and its log line;
2. :class:`~adapter.ops.limits.InFlightLimit`: 503 beyond ``server.limits.max_requests_in_flight``
   (before the key check: a keyless flood counts too);
3. the dashboard under ``/ui`` (:class:`~adapter.http.dashboard.UIDispatch`), dispatched before
   the API-key check because it has its own authentication (HTTP Basic with ``ui.password``;
   without one it refuses every login); with ``ui.listen`` it is served on a listener of its own
   instead (:mod:`adapter.ops.listeners`);
4. :class:`~adapter.http.auth.ApiKeyMiddleware` (A.2);
5. :class:`~adapter.ops.startup.BackendGateMiddleware`: 503 until the backend is open (after the key
   check, so A.2 holds during an outage too; the OpenAPI document and metrics need no backend;
   with the outbox on, the writes it queues pass);
6. :class:`~adapter.ops.limits.BodyLimits`: request bodies admitted against the budget of
   ``server.limits.max_body_bytes_in_flight``, stalled uploads ended (after the key check and the
   gate, so that only a caller with a key, and a backend to serve it, holds memory).

With ``outbox.enabled`` the service's writes go through the :class:`~adapter.outbox.Outbox`
(queued while the backend cannot take them), whose deliverer runs for the app's lifetime.

The connection-level limits (header deadline, connection cap, idle keep-alive) live below the
app, in uvicorn's protocol (:mod:`adapter.ops.connections`, set up by ``enginy-adapter
serve``).

``GET /openapi.json`` and ``GET /metrics`` (unless ``observability.metrics.listen`` moves
metrics to their own listener) are ordinary routes behind the API key, under
``server.root_path`` like the contract's. The driver instance is instrumented (call latency,
errors, records per operation) and drivers that retry upstream get
``backend.on_upstream_retry(reason)``.

``app.state`` holds ``service``, ``backend_gate``, ``outbox`` (``None`` when off) and
``telemetry``. :func:`worker_app` builds the app of one uvicorn worker process from the
environment (``enginy-adapter serve`` with ``server.workers`` > 1, or
``uvicorn --factory adapter.app:worker_app``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route

from adapter.config import ConfigError, Settings, build_backend, load_settings
from adapter.errors import exception_handlers
from adapter.http.auth import ApiKeyMiddleware
from adapter.http.dashboard import UI_PREFIX, UIDispatch, build_ui_app
from adapter.http.endpoints import Endpoints
from adapter.http.openapi import OPENAPI_PATH, openapi_endpoint
from adapter.http.routes import add_routes, contract_routes
from adapter.mapping import build_mappers
from adapter.matching import Matcher
from adapter.ops.instrument import instrument_backend
from adapter.ops.limits import BodyLimits, InFlightLimit
from adapter.ops.listeners import serve_separately
from adapter.ops.logs import configure_logging
from adapter.ops.outbox_metrics import OutboxMetrics
from adapter.ops.startup import BackendGate, BackendGateMiddleware, Backoff, StartupFailed
from adapter.ops.telemetry import (
    Telemetry,
    TelemetryMiddleware,
    metrics_endpoint,
    serve_metrics_separately,
)
from adapter.outbox import Outbox, OutboxUnavailable, Writes
from adapter.redaction import mask_words, redact
from adapter.service import Service
from backends.base import Backend, Entity, User

__all__ = ["build_service", "create_app", "worker_app"]

_log = logging.getLogger("adapter.ui")


def build_service(settings: Settings, backend: Backend, writes: Writes | None = None) -> Service:
    """The :class:`Service` for ``settings`` over ``backend`` (mapping, matching, users);
    ``writes``: the outbox's, when it is on."""
    secrets, locations = settings.secret_values(), settings.location_values()
    users = (
        None
        if settings.users is None
        else [User(id=u.id, name=u.name, email=u.email) for u in settings.users]
    )
    return Service(
        backend,
        mappers=build_mappers(settings.mapping, backend.default_field_map),
        matcher=Matcher(settings.matching.keys()),
        nulls={e: settings.mapping.for_entity(e).nulls for e in Entity},
        users=users,
        health_cache_seconds=settings.server.health_cache_seconds,
        writes=writes,
        scrub=lambda text: mask_words(redact(text, secrets), locations),
    )


def _queueable(root: str) -> Callable[[str, str], bool]:
    """The requests whose writes the outbox can queue: ``PUT /contacts``, ``PUT /companies``,
    ``POST /associations``, ``POST /activities``, ``PATCH /tasks/{id}`` and
    ``PATCH /tasks/batch``."""
    fixed = {
        ("PUT", f"{root}/contacts"),
        ("PUT", f"{root}/companies"),
        ("POST", f"{root}/associations"),
        ("POST", f"{root}/activities"),
    }
    tasks = f"{root}/tasks/"

    def queueable(method: str, path: str) -> bool:
        if method == "PATCH" and path.startswith(tasks):
            return "/" not in path[len(tasks) :] and len(path) > len(tasks)
        return (method, path) in fixed

    return queueable


async def _start_outbox(outbox: Outbox, gate: BackendGate, secrets: tuple[str, ...]) -> None:
    """Open the queue; a queue that cannot be opened stops the start like a configuration
    error (one line, exit 1): accepting writes it cannot store would lose them."""
    try:
        await outbox.start()
    except OutboxUnavailable as exc:
        line = redact(f"the outbox cannot start: {exc.message}", secrets)
        gate.fatal = line
        logging.getLogger("adapter.startup").error("%s", line)
        raise StartupFailed(line) from None


def create_app(
    settings: Settings, backend: Backend | None = None, *, open_backoff: Backoff | None = None
) -> Starlette:
    """Build the application. The backend is built from ``settings`` unless given; it is
    opened when the app starts and closed when it stops.

    A backend that cannot be opened yet (a retryable error) does not stop the start: the app
    answers 503 and retries ``open()`` with ``open_backoff`` (:mod:`adapter.ops.startup`). A
    configuration problem does: the lifespan raises :class:`adapter.ops.startup.StartupFailed`.

    Raises :class:`adapter.config.ConfigError` for an invalid configuration (no API key, a
    bad mapping, an unknown driver).
    """
    keys = [key.get_secret_value() for key in settings.auth.keys]
    if not keys:
        raise ConfigError("at least one API key is required", path="auth.keys")
    driver = backend if backend is not None else build_backend(settings)
    secrets = settings.secret_values()
    gate = BackendGate(driver, open_backoff, scrub=lambda text: redact(text, secrets))
    outbox = (
        Outbox(settings.outbox, driver, ready=lambda: gate.ready)
        if settings.outbox.enabled
        else None
    )
    service = build_service(settings, driver, outbox.writes if outbox is not None else None)

    root = settings.server.root_path
    routes = contract_routes(Endpoints(service, settings.server.max_body_bytes))
    if root:
        routes = [Mount(root, routes=routes)]
    app = Starlette(
        routes=routes,
        middleware=_inner_middleware(settings, keys, gate, outbox),
        exception_handlers=exception_handlers(service.scrub),
        lifespan=_lifespan(gate, outbox, secrets),
    )
    app.state.service = service
    app.state.backend_gate = gate
    app.state.outbox = outbox
    # The log keeps what a body withholds (the database's host is the operator's clue); only
    # secrets are removed from it.
    _add_operations(app, settings, driver, keys, outbox, gate.scrub)
    return app


def _lifespan(
    gate: BackendGate, outbox: Outbox | None, secrets: tuple[str, ...]
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """Open the backend (through the gate) and the outbox when the app starts; close them when
    it stops."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with gate.lifespan():
            if outbox is None:
                yield
                return
            await _start_outbox(outbox, gate, secrets)
            try:
                yield
            finally:
                await outbox.stop()

    return lifespan


def _inner_middleware(
    settings: Settings, keys: list[str], gate: BackendGate, outbox: Outbox | None
) -> list[Middleware]:
    """The API-key check, the backend gate and the body limits, outermost first (the
    operational middleware goes around them, see :func:`_add_operations`)."""
    root = settings.server.root_path
    return [
        Middleware(ApiKeyMiddleware, header=settings.auth.header, keys=keys),
        Middleware(
            BackendGateMiddleware,
            gate=gate,
            health_path=root + "/health",
            open_paths=(root + OPENAPI_PATH, root + settings.observability.metrics.path),
            passthrough=_queueable(root) if outbox is not None else None,
        ),
        Middleware(
            BodyLimits,
            limits=settings.server.limits,
            max_body_bytes=settings.server.max_body_bytes,
        ),
    ]


def worker_app() -> Starlette:
    """The app of one worker process (``uvicorn --factory adapter.app:worker_app``): the
    settings from ``ENGINY_ADAPTER_CONFIG`` and the other ``ENGINY_ADAPTER_*`` variables, and
    the configured log format."""
    settings = load_settings(None)
    configure_logging(settings.observability.logs)
    return create_app(settings)


def _add_operations(
    app: Starlette,
    settings: Settings,
    backend: Backend,
    keys: list[str],
    outbox: Outbox | None,
    scrub_secrets: Callable[[str], str],
) -> None:
    """Metrics, request logs, ``/openapi.json``, the ``/ui`` dashboard and the in-flight
    limit."""
    telemetry = _telemetry(settings, keys, scrub_secrets)
    app.state.telemetry = telemetry
    instrument_backend(backend, telemetry)
    # Drivers that retry upstream calls report each retry here (see docs/operations.md).
    backend.on_upstream_retry = lambda reason: telemetry.upstream_retry(backend.name, reason)
    if outbox is not None:
        outbox.events = OutboxMetrics(telemetry.registry)

    metrics = settings.observability.metrics
    extra: list[BaseRoute] = [Route(OPENAPI_PATH, openapi_endpoint(settings), methods=["GET"])]
    if metrics.enabled and metrics.listen is None:
        endpoint = metrics_endpoint(telemetry, settings.auth.header, lambda: keys)
        extra.append(Route(metrics.path, endpoint, methods=["GET"]))
    add_routes(app.router.routes, settings.server.root_path, extra)

    _add_dashboard(app, settings, backend, telemetry, outbox)
    app.add_middleware(InFlightLimit, limit=settings.server.limits.max_requests_in_flight)
    # Added last, so it is the outermost middleware: it sees every request and response.
    app.add_middleware(TelemetryMiddleware, telemetry=telemetry)

    if metrics.enabled and metrics.listen is not None:
        serve_metrics_separately(app, telemetry, metrics.listen)


def _telemetry(
    settings: Settings, keys: list[str], scrub_secrets: Callable[[str], str]
) -> Telemetry:
    """Metrics, request logs and the dashboard's recent calls."""
    obs, root = settings.observability, settings.server.root_path
    return Telemetry(
        obs,
        recent_calls=settings.ui.recent_calls,
        secret_headers=(settings.auth.header.lower(),),
        # Debug body logs scrub the service's own keys wherever they appear.
        secret_values=tuple(keys),
        # Dashboard and ops traffic is not what the "recent calls" list is for.
        not_recent=(
            *(root + p for p in (UI_PREFIX, obs.metrics.path, OPENAPI_PATH)),
            UI_PREFIX,  # the dashboard's own listener serves it without the root path
            "/favicon.ico",
        ),
        scrub=scrub_secrets,
    )


def _add_dashboard(
    app: Starlette,
    settings: Settings,
    backend: Backend,
    telemetry: Telemetry,
    outbox: Outbox | None,
) -> None:
    """The ``/ui`` dashboard: dispatched ahead of the API-key check, or on its own listener."""
    ui, root = settings.ui, settings.server.root_path
    if not ui.enabled:
        return
    if ui.password is None:
        # `serve` always sets one (generated when not configured); an app built another way
        # without one keeps the dashboard locked rather than falling back to the API keys.
        _log.warning(
            "ui.password is not set: the dashboard at %s/ui refuses every login; set ui.password "
            "or ENGINY_ADAPTER_UI_PASSWORD (enginy-adapter serve generates one)",
            root,
        )
    dashboard = build_ui_app(settings, backend, telemetry.recent, ui, outbox=outbox)
    if ui.listen is not None:
        # A listener of its own: /ui at its root, not on the main port.
        serve_separately(
            app,
            TelemetryMiddleware(dashboard, telemetry),
            ui.listen,
            what="dashboard",
            tls=settings.server.tls,
            limits=settings.server.limits,
        )
        return
    if root:
        dashboard = Starlette(routes=[Mount(root, app=dashboard)])
    app.add_middleware(UIDispatch, ui_app=dashboard, prefix=root + UI_PREFIX)
