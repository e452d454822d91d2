"""A second listener in the same process: the dashboard on an address of its own (``ui.listen``).

The dashboard calls the driver, whose connections belong to the service's event loop, so the
second listener is a :class:`uvicorn.Server` running as a task on that same loop, started and
stopped by the app's lifespan. Its socket is bound before the task starts, so an address in use
fails the start-up with its own message instead of uvicorn exiting from inside a task, and the
server leaves the process's signals to the main server (which stops this one through the
lifespan when it stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.types import ASGIApp

from adapter.config import ConfigError, LimitsConfig, TLSConfig, split_listen
from adapter.ops.connections import guarded_protocol

__all__ = ["serve_separately"]

_log = logging.getLogger("adapter.ops")


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def serve_separately(
    app: Starlette,
    inner: ASGIApp,
    listen: str,
    *,
    what: str,
    tls: TLSConfig | None,
    limits: LimitsConfig | None = None,
) -> None:
    """Serve ``inner`` on ``listen`` (``host:port``) for as long as ``app`` runs, with the
    service's TLS settings when it has them, and the connection limits of ``limits`` (header
    deadline, connection cap, idle keep-alive: :mod:`adapter.ops.connections`). Raises
    :class:`ConfigError` (``ui.listen``) at start-up when the address cannot be bound."""
    import uvicorn

    class _Server(uvicorn.Server):
        # The main server owns SIGINT/SIGTERM; this one is stopped by the lifespan.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

        def install_signal_handlers(self) -> None:
            return None

    host, port = split_listen(listen)
    options: dict[str, Any] = tls.uvicorn_options() if tls is not None else {}
    if limits is not None:
        options["http"] = guarded_protocol(limits)
        options["timeout_keep_alive"] = limits.keep_alive_seconds
    outer = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Starlette) -> AsyncIterator[Any]:
        async with outer(a) as state:
            try:
                sock = _bind(host, port)
            except OSError as exc:
                message = f"cannot listen on {listen} ({exc.strerror})"
                raise ConfigError(message, path="ui.listen") from None
            config = uvicorn.Config(
                inner,
                lifespan="off",
                log_config=None,
                access_log=False,
                server_header=False,
                **options,
            )
            server = _Server(config)
            task = asyncio.create_task(server.serve(sockets=[sock]))
            scheme = "https" if tls is not None else "http"
            _log.info("%s served on %s://%s", what, scheme, listen)
            try:
                yield state
            finally:
                server.should_exit = True
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, timeout=10)
                sock.close()

    app.router.lifespan_context = lifespan
