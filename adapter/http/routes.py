"""The route table of Enginy's Custom CRM contract: the 15 routes and nothing else.

Each route is served by a method of :class:`~adapter.http.endpoints.Endpoints`. The app is put
together (middleware, lifespan, operational routes) by :func:`adapter.app.create_app`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from adapter.http.endpoints import Endpoints

__all__ = ["add_routes", "contract_routes"]


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


def contract_routes(api: Endpoints) -> list[BaseRoute]:
    """The contract's routes (A.1), one per path, each served by a method of ``api``."""
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


def add_routes(routes: list[BaseRoute], root_path: str, extra: list[BaseRoute]) -> None:
    """Add ``extra`` routes to a route table whose contract routes may sit in one Mount at
    ``root_path``: a second Mount with the same prefix would never be reached, so they join
    the existing one."""
    if not root_path:
        routes.extend(extra)
        return
    for route in routes:
        if isinstance(route, Mount) and route.path == root_path:
            route.routes.extend(extra)
            return
    routes.append(Mount(root_path, routes=extra))
