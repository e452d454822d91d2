"""Where a request goes: under ``<root_path>/ui`` to the dashboard, the rest to the API.

:class:`UIDispatch` runs before the API-key middleware, because the dashboard has its own
authentication (HTTP Basic): a browser cannot send ``X-API-Key``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["UI_PREFIX", "UIDispatch", "route_path"]

UI_PREFIX = "/ui"


def route_path(scope: Scope) -> str:
    """The request's path below its root path (a mount prefix, a proxy's prefix)."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    # Starlette/uvicorn keep the mount prefix in ``path``; route on what follows it.
    return path[len(root) :] if root and path.startswith(root) else path


class UIDispatch:
    """Pure ASGI: requests under ``<root_path>/ui`` go to the dashboard app, the rest on.

    The dashboard is dispatched *before* the API-key middleware because it has its own
    authentication (HTTP Basic): a browser cannot send ``X-API-Key``.
    """

    def __init__(self, app: ASGIApp, ui_app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.ui_app = ui_app
        self.prefix = prefix
        self.prefix_slash = prefix + "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = route_path(scope)
            if path == self.prefix or path.startswith(self.prefix_slash):
                await self.ui_app(scope, receive, send)
                return
        await self.app(scope, receive, send)
