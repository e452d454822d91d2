"""The dashboard at ``/ui``: connection settings, recent calls, counts and record pages.

Server-rendered HTML (Starlette's Jinja2 templates, autoescape ON, a small stylesheet, no
JavaScript at all). The record pages (``/ui/contacts/{crmId}``, ``/ui/companies/{crmId}``,
``/ui/tasks/{id}``) are the targets of Enginy's ``contactLinkTemplate`` /
``companyLinkTemplate`` for the embedded stores; listing, counts, associations, timelines and
task lists need the driver's :attr:`~backends.base.Capability.BROWSE` capability, and the page
says so when the driver lacks it.

**Access:** HTTP Basic authentication with ``ui.password`` (any username), never an API key,
throttled per client address (:mod:`adapter.http.login`); ``serve`` generates a password when
none is configured. With ``ui.listen`` the pages are served on a listener of their own
(:mod:`adapter.ops.listeners`). The API key is never shown on any page.

**Lists** have a search box (``?q=``: ids and field values) and the task list a status filter
(``?status=open|completed``), both passed to the driver (``list_records(search=...)``,
``list_tasks(completed=..., search=...)``) and kept by the pager. The overview warns when the
base URL Enginy would call is not ``https://``.

With the outbox on (``outbox.enabled``), the overview shows the queue (depth, oldest age,
deliveries, dead letters) and ``/ui/outbox`` lists its dead letters and oldest items.

Every page is sent with a Content-Security-Policy that forbids scripts outright, so even a
value that escaped escaping could not run; the escaping itself is tested.

The templates' environment and the pages' headers are in :mod:`adapter.http.ui_templates`; the
dispatch of ``/ui`` ahead of the API's middleware in :mod:`adapter.http.ui_dispatch`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Scope

from adapter.config import Settings, UIConfig
from adapter.http.login import BasicAuthGuard, LoginThrottle
from adapter.http.ui_dispatch import UI_PREFIX, UIDispatch, route_path
from adapter.http.ui_templates import SECURITY_HEADERS, template_environment
from adapter.links import link_templates, service_base_url
from adapter.outbox import Outbox, OutboxStatus, OutboxUnavailable
from backends.base import Backend, BackendError, Capability, Entity, NotFound, Unsupported

__all__ = ["UI_PREFIX", "BasicAuthGuard", "Dashboard", "RecentCall", "UIDispatch", "build_ui_app"]

_STATIC_DIR = Path(__file__).parent / "static"


# --------------------------------------------------------------------------------------------
# Authentication (adapter/http/login.py)
# --------------------------------------------------------------------------------------------


def _is_public(scope: Scope) -> bool:
    """The stylesheet is public (nothing secret in it), so the login prompt is styled."""
    return route_path(scope).startswith(f"{UI_PREFIX}/static/")


def _request_base(request: Request) -> str:
    # The root path (``server.root_path`` mount plus any proxy prefix) is part of what Enginy
    # must call; request.base_url would drop a Mount's prefix.
    url = request.url
    return f"{url.scheme}://{url.netloc}{request.scope.get('root_path', '')}".rstrip("/")


# --------------------------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------------------------


class RecentCall(Protocol):
    """What the overview lists of one recent call (kept by the telemetry of
    :mod:`adapter.ops.telemetry`)."""

    @property
    def time(self) -> datetime: ...
    @property
    def request_id(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def route(self) -> str: ...
    @property
    def status(self) -> int: ...
    @property
    def latency_ms(self) -> float: ...
    @property
    def records(self) -> int | None: ...
    @property
    def error(self) -> str | None: ...


def _not_found(what: str, ident: str) -> dict[str, Any]:
    message = f"No {what} exists with ID: {ident}"
    return {"title": "Not found", "code": "not_found", "message": message}


class Dashboard:
    """The dashboard's pages over one backend; :meth:`app` is the ASGI app serving them."""

    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        recent_calls: Callable[[], Sequence[RecentCall]],
        config: UIConfig,
        outbox: Outbox | None = None,
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.backend = backend
        self.recent_calls = recent_calls
        self.config = config
        self.templates = Jinja2Templates(env=template_environment())
        self.browse = Capability.BROWSE in backend.capabilities
        self.tasks_ok = Capability.TASKS in backend.capabilities
        self.throttle = LoginThrottle(config.max_failed_logins, config.lockout_seconds)

    def app(self) -> ASGIApp:
        """The pages under ``/ui``, behind HTTP Basic authentication."""
        routes = [
            Route(UI_PREFIX, self.overview, name="ui"),
            Route(f"{UI_PREFIX}/", self.overview),
            Route(f"{UI_PREFIX}/contacts", _bind(self.record_list, Entity.CONTACT)),
            Route(f"{UI_PREFIX}/companies", _bind(self.record_list, Entity.COMPANY)),
            Route(f"{UI_PREFIX}/contacts/{{crm_id}}", _bind(self.record_page, Entity.CONTACT)),
            Route(f"{UI_PREFIX}/companies/{{crm_id}}", _bind(self.record_page, Entity.COMPANY)),
            Route(f"{UI_PREFIX}/tasks", self.task_list),
            Route(f"{UI_PREFIX}/tasks/{{task_id}}", self.task_page),
            Route(f"{UI_PREFIX}/outbox", self.outbox_page),
            Mount(f"{UI_PREFIX}/static", StaticFiles(directory=_STATIC_DIR), name="ui-static"),
        ]
        return BasicAuthGuard(
            Starlette(routes=routes),
            self.password,
            throttle=self.throttle,
            is_public=_is_public,
            headers=SECURITY_HEADERS,
        )

    def password(self) -> str | None:
        """The dashboard password: ``ui.password``, never an API key (adapter/http/login.py)."""
        password = self.config.password
        return password.get_secret_value() if password is not None else None

    # -- rendering ------------------------------------------------------------------------------

    def base_url(self, request: Request) -> str:
        """The URL Enginy calls: ``ui.public_base_url``, else the one this request came to
        (on the dashboard's own listener: the one built from the ``server`` section)."""
        if self.config.public_base_url:
            return self.config.public_base_url
        if self.config.listen is not None:
            return service_base_url(self.settings)
        return _request_base(request)

    def pages_url(self, request: Request) -> str:
        """Where the record pages are (the link templates' base): with the main service, or
        on the dashboard's own listener, as this browser reached it."""
        if self.config.listen is not None:
            return _request_base(request)
        return self.base_url(request)

    def render(
        self, request: Request, name: str, context: dict[str, Any], status: int = 200
    ) -> Response:
        prefix = request.scope.get("root_path", "").rstrip("/")
        ctx = {
            "ui": prefix + UI_PREFIX,
            "driver": self.backend.name,
            "browse": self.browse,
            "tasks_ok": self.tasks_ok,
            "outbox_on": self.outbox is not None,
            **context,
        }
        return self.templates.TemplateResponse(
            request, name, ctx, status_code=status, headers=SECURITY_HEADERS
        )

    def failure(self, request: Request, exc: BackendError, status: int = 503) -> Response:
        # exc.message is written to be safe to show (backends/errors.py: never a secret).
        return self.render(
            request,
            "error.html",
            {"title": "Backend error", "code": exc.code, "message": exc.message},
            status,
        )

    # -- pages ----------------------------------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        counts: Mapping[str, int] | None = None
        counts_error: str | None = None
        if self.browse:
            try:
                counts = await self.backend.counts()
            except BackendError as exc:
                counts_error = f"{exc.code}: {exc.message}"
        base = self.base_url(request)
        return self.render(
            request,
            "overview.html",
            {
                **await self._outbox_context(items=0),
                "title": "Overview",
                "base_url": base,
                "base_url_guessed": self.config.public_base_url is None,
                "header": self.settings.auth.header,
                "links": link_templates(self.backend, self.pages_url(request)),
                "counts": counts,
                "counts_error": counts_error,
                "calls": self.recent_calls(),
                "capabilities": sorted(c.value for c in self.backend.capabilities),
            },
        )

    async def outbox_page(self, request: Request) -> Response:
        if self.outbox is None:
            off = {
                "title": "Outbox",
                "code": "not_enabled",
                "message": "The outbox is off (outbox.enabled in the configuration).",
            }
            return self.render(request, "error.html", off, 404)
        context = await self._outbox_context(items=50)
        return self.render(request, "outbox.html", {"title": "Outbox", **context})

    async def _outbox_context(self, *, items: int) -> dict[str, Any]:
        status: OutboxStatus | None = None
        error: str | None = None
        if self.outbox is not None:
            try:
                status = await self.outbox.status(items=items)
            except OutboxUnavailable as exc:
                error = f"{exc.code}: {exc.message}"
        return {"outbox": status, "outbox_error": error, "now": status.now if status else 0.0}

    async def record_list(self, request: Request, entity: Entity) -> Response:
        page, size, search = _page(request), self.config.page_size, _search(request)
        if not self.browse:
            return self.render(request, "no_browse.html", {"title": entity.plural.title()})
        try:
            records = await self.backend.list_records(
                entity, limit=size + 1, offset=page * size, search=search or None
            )
        except BackendError as exc:
            return self.failure(request, exc)
        return self.render(
            request,
            "records.html",
            {
                "title": entity.plural.title(),
                "entity": entity.plural,
                "records": records[:size],
                "page": page,
                "more": len(records) > size,
                "search": search,
                "query": {"q": search} if search else {},
            },
        )

    async def record_page(self, request: Request, entity: Entity) -> Response:
        crm_id = request.path_params["crm_id"]
        try:
            found = await self.backend.get_records(entity, [crm_id])
        except Unsupported as exc:
            return self.failure(request, exc, 501)
        except BackendError as exc:
            return self.failure(request, exc)
        record = found.get(crm_id)
        if record is None:
            return self.render(request, "error.html", _not_found(entity.value, crm_id), 404)
        context: dict[str, Any] = {
            "title": f"{entity.value.title()} {crm_id}",
            "entity": entity.plural,
            "kind": entity.value,
            "record": record,
            "associated": None,
            "activities": None,
            "tasks": None,
            "other": ("companies" if entity is Entity.CONTACT else "contacts"),
        }
        if self.browse:
            link = {"contact_id": crm_id} if entity is Entity.CONTACT else {"company_id": crm_id}
            try:
                context["associated"] = await self.backend.list_associated(entity, crm_id)
                context["activities"] = await self.backend.list_activities(**link, limit=200)
                context["tasks"] = await self.backend.list_tasks(**link, limit=200)
            except BackendError as exc:
                return self.failure(request, exc)
        return self.render(request, "record.html", context)

    async def task_list(self, request: Request) -> Response:
        if not self.browse:
            return self.render(request, "no_browse.html", {"title": "Tasks"})
        page, size, search = _page(request), self.config.page_size, _search(request)
        status = request.query_params.get("status", "")
        status = status if status in _TASK_STATUS else ""
        try:
            tasks = await self.backend.list_tasks(
                limit=size + 1,
                offset=page * size,
                completed=_TASK_STATUS[status],
                search=search or None,
            )
        except BackendError as exc:
            return self.failure(request, exc)
        query = {k: v for k, v in (("q", search), ("status", status)) if v}
        return self.render(
            request,
            "tasks.html",
            {
                "title": "Tasks",
                "tasks": tasks[:size],
                "page": page,
                "more": len(tasks) > size,
                "search": search,
                "status": status,
                "query": query,
            },
        )

    async def task_page(self, request: Request) -> Response:
        task_id = request.path_params["task_id"]
        try:
            task = await self.backend.get_task(task_id)
        except NotFound:
            return self.render(request, "error.html", _not_found("task", task_id), 404)
        except Unsupported as exc:
            return self.failure(request, exc, 501)
        except BackendError as exc:
            return self.failure(request, exc)
        return self.render(request, "task.html", {"title": f"Task {task_id}", "task": task})


def build_ui_app(
    settings: Settings,
    backend: Backend,
    recent_calls: Callable[[], Sequence[RecentCall]],
    config: UIConfig | None = None,
    *,
    outbox: Outbox | None = None,
) -> ASGIApp:
    """The dashboard as an ASGI app serving ``/ui`` and below (already behind Basic auth)."""
    return Dashboard(settings, backend, recent_calls, config or UIConfig(), outbox).app()


def _bind(
    endpoint: Callable[[Request, Entity], Awaitable[Response]], entity: Entity
) -> Callable[[Request], Awaitable[Response]]:
    async def bound(request: Request) -> Response:
        return await endpoint(request, entity)

    return bound


#: The task list's status filter: query value -> ``list_tasks(completed=...)``.
_TASK_STATUS: dict[str, bool | None] = {"": None, "open": False, "completed": True}


def _search(request: Request) -> str:
    """The list's search text (``?q=``), trimmed and at most 200 characters."""
    return request.query_params.get("q", "").strip()[:200]


def _page(request: Request) -> int:
    raw = request.query_params.get("page", "0")
    return int(raw) if raw.isdigit() and len(raw) < 7 else 0
