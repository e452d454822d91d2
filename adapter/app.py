"""The Starlette application: the route table and the lifespan, nothing else.

The 15 routes of Enginy's Custom CRM contract, served at the root or under
``server.root_path`` (A.13). Every request passes the API-key middleware first (A.2); errors of
every kind are rendered by the handlers of ``adapter/errors.py`` (A.3).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from adapter.auth import ApiKeyMiddleware
from adapter.config import ConfigError, Settings, build_backend
from adapter.endpoints import Endpoints
from adapter.errors import exception_handlers
from adapter.mapping import build_mappers
from adapter.matching import Matcher
from adapter.ops import OPENAPI_PATH
from adapter.ops import install as install_ops
from adapter.service import Service
from adapter.startup import BackendGate, BackendGateMiddleware, Backoff
from backends.base import Backend, Entity, User

__all__ = ["build_service", "create_app"]


def build_service(settings: Settings, backend: Backend) -> Service:
    """The :class:`Service` for ``settings`` over ``backend`` (mapping, matching, users)."""
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
    )


Endpoint = Callable[[Request], Awaitable[Response]]


def _route(path: str, *, not_ids: Route | None = None, **handlers: Endpoint) -> Route:
    """One route per path, whatever its methods, so that a 405 lists them all in ``Allow``
    (with one Route per method, a 405 named only that route's method). HEAD is served by GET.

    ``not_ids`` is the sibling route whose last segment the ``{task_id}`` of ``path`` must not
    take: Starlette prefers a full match to a method mismatch, so ``GET /tasks/batch`` would
    otherwise look up a task called "batch" instead of answering 405.
    """
    by_method = dict(handlers)
    if "GET" in by_method:
        by_method["HEAD"] = by_method["GET"]
    if not_ids is not None:
        reserved = not_ids.path.rsplit("/", 1)[1]
        allow = {"Allow": ", ".join(sorted(not_ids.methods or ()))}

        async def dispatch(request: Request) -> Response:
            if request.path_params["task_id"] == reserved:
                raise HTTPException(status_code=405, headers=allow)
            return await by_method[request.method](request)

    elif len(handlers) == 1:
        ((method, endpoint),) = handlers.items()
        return Route(path, endpoint, methods=[method])
    else:

        async def dispatch(request: Request) -> Response:
            return await by_method[request.method](request)

    return Route(path, dispatch, methods=list(handlers))


def _routes(api: Endpoints) -> list[BaseRoute]:
    batch = _route("/tasks/batch", POST=api.get_tasks, PATCH=api.update_tasks)
    return [
        _route("/health", GET=api.health),
        _route("/contacts", POST=api.create_contacts, PUT=api.update_contacts),
        _route("/contacts/sync", POST=api.sync_contacts),
        _route("/companies", POST=api.create_companies, PUT=api.update_companies),
        _route("/companies/sync", POST=api.sync_companies),
        _route("/associations", POST=api.create_associations),
        _route("/activities", POST=api.create_activity),
        _route("/tasks", POST=api.create_task),
        batch,
        _route("/tasks/{task_id}", not_ids=batch, GET=api.get_task, PATCH=api.update_task),
        _route("/users", GET=api.list_users),
    ]


def create_app(
    settings: Settings, backend: Backend | None = None, *, open_backoff: Backoff | None = None
) -> Starlette:
    """Build the application. The backend is built from ``settings`` unless given; it is
    opened when the app starts and closed when it stops.

    A backend that cannot be opened yet (a retryable error) does not stop the start: the app
    answers 503 and retries ``open()`` with ``open_backoff`` (``adapter/startup.py``). A
    configuration problem does: the lifespan raises :class:`adapter.startup.StartupFailed`.

    Raises :class:`adapter.config.ConfigError` for an invalid configuration (no API key, a
    bad mapping, an unknown driver).
    """
    # Imported here: the CLI module is only needed for its redaction of secrets.
    from adapter.cli import redact

    keys = [key.get_secret_value() for key in settings.auth.keys]
    if not keys:
        raise ConfigError("at least one API key is required", path="auth.keys")
    driver = backend if backend is not None else build_backend(settings)
    service = build_service(settings, driver)
    api = Endpoints(service, settings.server.max_body_bytes)
    gate = BackendGate(driver, open_backoff, scrub=lambda text: redact(text, settings))

    root = settings.server.root_path
    routes = _routes(api)
    if root:
        routes = [Mount(root, routes=routes)]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with gate.lifespan():
            yield

    metrics = settings.observability.metrics
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(ApiKeyMiddleware, header=settings.auth.header, keys=keys),
            # After the key check (A.2 holds during an outage too); the OpenAPI document and
            # metrics need no backend.
            Middleware(BackendGateMiddleware, gate=gate, health_path=root + "/health",
                       open_paths=(root + OPENAPI_PATH, root + metrics.path)),
        ],
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.backend_gate = gate
    # Metrics, request logs, /openapi.json and the /ui dashboard (helper OPS: adapter/ops.py).
    install_ops(app, settings, driver)
    return app
