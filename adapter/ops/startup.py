"""Opening the backend at start-up, and serving while it cannot be opened yet.

A backend that is down when the service starts (PostgreSQL restarting, HubSpot unreachable) is
an outage, not a reason to crash-loop: the service starts anyway, answers ``/health`` with 503
``{"status": "unavailable", ...}`` (A.12) and every contract route with 503 and
``Retry-After``, and retries ``open()`` in the background with capped exponential backoff,
logging one line per failed attempt (no traceback: this is an expected failure mode). Once
``open()`` succeeds, requests are served normally.

A configuration problem is different: retrying cannot fix a :class:`adapter.config.ConfigError`
or a :class:`backends.base.BackendError` that is not ``retryable`` (a mapped table missing a
column: ``schema_mismatch``). Start-up then stops with one log line and
:class:`StartupFailed`; ``enginy-adapter serve`` exits 1 without a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapter.config import ConfigError
from adapter.errors import error_response
from backends.base import Backend, BackendError

__all__ = ["BackendGate", "BackendGateMiddleware", "Backoff", "StartupFailed"]

logger = logging.getLogger("adapter.startup")


class StartupFailed(Exception):
    """The backend cannot be opened for a reason that retrying will not fix."""


@dataclass(frozen=True)
class Backoff:
    """Delays between attempts to open the backend: ``first``, times ``factor``, at most
    ``cap`` seconds."""

    first: float = 1.0
    factor: float = 2.0
    cap: float = 30.0

    def delays(self) -> Iterator[float]:
        delay = self.first
        while True:
            yield min(delay, self.cap)
            delay = min(delay * self.factor, self.cap)


class BackendGate:
    """Opens the backend in the app's lifespan and says whether requests can be served.

    ``scrub`` removes secrets (configured keys, option passwords, URL credentials) from a
    message before it is logged.
    """

    def __init__(
        self,
        backend: Backend,
        backoff: Backoff | None = None,
        scrub: Callable[[str], str] = lambda text: text,
    ) -> None:
        self.backend = backend
        self.backoff = backoff or Backoff()
        self.scrub = scrub
        #: True once ``open()`` has succeeded: the one check on the hot path.
        self.ready = False
        #: Why the backend is not open (shown in the 503 answers).
        self.error: BackendError | None = None
        #: The one-line reason start-up stopped, for the CLI's exit code.
        self.fatal: str | None = None
        self._next_attempt = 0.0
        self._task: asyncio.Task[None] | None = None

    # -- lifespan -------------------------------------------------------------------------------

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Open the backend (or start retrying), yield, then stop retrying and close it."""
        delays = self.backoff.delays()
        try:
            await self._attempt(1, next(delays))
        except BackendError:
            self._task = asyncio.create_task(self._retry(delays))
        try:
            yield
        finally:
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            if self.ready:
                await self.backend.close()

    async def _attempt(self, attempt: int, delay: float) -> None:
        """One ``open()``: returns when open, raises the retryable error to retry after
        ``delay``, or raises :class:`StartupFailed`."""
        name = self.backend.name
        try:
            await self.backend.open()
        except ConfigError as exc:
            self._stop(f"backend {name!r} cannot start: {exc}")
        except BackendError as exc:
            if not exc.retryable:
                self._stop(f"backend {name!r} cannot start: {exc.code}: {exc.message}")
            self.error = exc
            self._next_attempt = time.monotonic() + delay
            logger.warning(
                "%s",
                self.scrub(
                    f"backend {name!r} unavailable (attempt {attempt}): {exc.code}: "
                    f"{exc.message}; answering 503 and retrying in {delay:g}s"
                ),
            )
            raise
        if attempt > 1:
            logger.info("backend %r opened at attempt %d; serving requests", name, attempt)
        self.error = None
        self.ready = True

    def _stop(self, line: str) -> None:
        line = " ".join(self.scrub(line).split())
        self.fatal = line
        logger.error("%s", line)
        raise StartupFailed(line)

    async def _retry(self, delays: Iterator[float]) -> None:
        attempt = 1
        while not self.ready:
            await asyncio.sleep(max(0.0, self._next_attempt - time.monotonic()))
            attempt += 1
            try:
                await self._attempt(attempt, next(delays))
            except BackendError:
                continue
            except StartupFailed:
                # The backend answers now but says the configuration is wrong: no retry can
                # fix it. Keep answering 503 with the reason until an operator restarts.
                return
            except Exception as exc:
                # A driver bug: say so once per attempt (with the stack, it is unexpected) and
                # keep trying; the service stays up.
                logger.error("backend %r open() raised unexpectedly (attempt %d)",
                             self.backend.name, attempt, exc_info=exc)
                self._next_attempt = time.monotonic() + next(delays)

    # -- answers while not open -----------------------------------------------------------------

    def retry_after(self) -> int:
        return max(1, math.ceil(self._next_attempt - time.monotonic()))

    def unavailable(self, health: bool) -> ASGIApp:
        error = self.error
        code = error.code if error is not None else "backend_unavailable"
        if self.fatal is not None:
            message = self.fatal
            headers: dict[str, str] = {}
        else:
            detail = error.message if error is not None else "not open yet"
            message = f"the backend is not available yet ({detail}); retry later"
            headers = {"Retry-After": str(self.retry_after())}
        extra = {"status": "unavailable"} if health else None
        return error_response(503, code, message, extra=extra, headers=headers)


class BackendGateMiddleware:
    """Pure ASGI: until the backend is open, answer 503 without reaching the routes.

    Paths in ``open_paths`` (the OpenAPI document, metrics) need no backend and are always
    served. On the lifespan, a start-up stopped by :class:`StartupFailed` (already logged in
    one line) is reported to the server without Starlette's traceback text.
    """

    def __init__(
        self, app: ASGIApp, *, gate: BackendGate, health_path: str, open_paths: tuple[str, ...]
    ) -> None:
        self.app = app
        self.gate = gate
        self.health_path = health_path
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if not self.gate.ready:
                path: str = scope["path"]
                if path not in self.open_paths:
                    response = self.gate.unavailable(health=path == self.health_path)
                    await response(scope, receive, send)
                    return
        elif scope["type"] == "lifespan":
            await self.app(scope, receive, self._lifespan_send(send))
            return
        await self.app(scope, receive, send)

    def _lifespan_send(self, send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed" and self.gate.fatal is not None:
                message = {"type": "lifespan.startup.failed", "message": ""}
            await send(message)

        return wrapped
