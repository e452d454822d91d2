"""The Starlette application: the route table and the lifespan, nothing else.

The 15 routes of Enginy's Custom CRM contract, served at the root or under
``server.root_path`` (A.13). Every request passes the API-key middleware first (A.2); errors of
every kind are rendered by the handlers of ``adapter/errors.py`` (A.3).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route

from adapter.auth import ApiKeyMiddleware
from adapter.config import ConfigError, Settings, build_backend
from adapter.endpoints import Endpoints
from adapter.errors import exception_handlers
from adapter.mapping import build_mappers
from adapter.matching import Matcher
from adapter.ops import install as install_ops
from adapter.service import Service
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


def _routes(api: Endpoints) -> list[BaseRoute]:
    return [
        Route("/health", api.health, methods=["GET"]),
        Route("/contacts", api.create_contacts, methods=["POST"]),
        Route("/contacts", api.update_contacts, methods=["PUT"]),
        Route("/contacts/sync", api.sync_contacts, methods=["POST"]),
        Route("/companies", api.create_companies, methods=["POST"]),
        Route("/companies", api.update_companies, methods=["PUT"]),
        Route("/companies/sync", api.sync_companies, methods=["POST"]),
        Route("/associations", api.create_associations, methods=["POST"]),
        Route("/activities", api.create_activity, methods=["POST"]),
        Route("/tasks", api.create_task, methods=["POST"]),
        # Before /tasks/{task_id}: "batch" is a route, not a task id.
        Route("/tasks/batch", api.get_tasks, methods=["POST"]),
        Route("/tasks/batch", api.update_tasks, methods=["PATCH"]),
        Route("/tasks/{task_id}", api.get_task, methods=["GET"]),
        Route("/tasks/{task_id}", api.update_task, methods=["PATCH"]),
        Route("/users", api.list_users, methods=["GET"]),
    ]


def create_app(settings: Settings, backend: Backend | None = None) -> Starlette:
    """Build the application. The backend is built from ``settings`` unless given; it is
    opened when the app starts and closed when it stops.

    Raises :class:`adapter.config.ConfigError` for an invalid configuration (no API key, a
    bad mapping, an unknown driver).
    """
    keys = [key.get_secret_value() for key in settings.auth.keys]
    if not keys:
        raise ConfigError("at least one API key is required", path="auth.keys")
    driver = backend if backend is not None else build_backend(settings)
    service = build_service(settings, driver)
    api = Endpoints(service, settings.server.max_body_bytes)

    routes = _routes(api)
    if settings.server.root_path:
        routes = [Mount(settings.server.root_path, routes=routes)]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await driver.open()
        try:
            yield
        finally:
            await driver.close()

    app = Starlette(
        routes=routes,
        middleware=[Middleware(ApiKeyMiddleware, header=settings.auth.header, keys=keys)],
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
    )
    app.state.service = service
    # Metrics, request logs, /openapi.json and the /ui dashboard (helper OPS: adapter/ops.py).
    install_ops(app, settings, driver)
    return app
