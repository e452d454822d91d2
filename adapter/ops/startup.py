"""Opening the backend at start-up, and serving while it cannot be opened yet.

A backend that is down when the service starts (PostgreSQL restarting, HubSpot unreachable) is
an outage, not a reason to crash-loop: the service starts anyway, answers ``/health`` with 503
``{"status": "unavailable", ...}`` (A.12) and every contract route with 503 and
``Retry-After``, and retries ``open()`` in the background with capped exponential backoff
(tenacity), logging one line per failed attempt (no traceback: this is an expected failure
mode). Once ``open()`` succeeds, requests are served normally.

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
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential

from adapter.config import ConfigError
from adapter.errors import UNAVAILABLE, error_response, note_detail, note_outcome, request_id_of
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

    def wait(self) -> wait_exponential:
        """The policy as tenacity's exponential wait (attempt ``n`` failed: wait
        ``first * factor ** (n - 1)``, capped)."""
        return wait_exponential(multiplier=self.first, exp_base=self.factor, max=self.cap)


class BackendGate:
    """Opens the backend in the app's lifespan and says whether requests can be served.

    The first ``open()`` runs before the app serves; while it keeps failing with a retryable
    error, tenacity retries it in the background with :class:`Backoff`. ``scrub`` removes
    secrets (configured keys, option passwords, URL credentials) from a message before it is
    logged.
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
        self._first_done = asyncio.Event()

    # -- lifespan -------------------------------------------------------------------------------

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Open the backend (or start retrying), yield, then stop retrying and close it.

        Raises :class:`StartupFailed` (or a driver's unexpected exception) when the first
        attempt fails for a reason retrying will not fix."""
        self._first_done = asyncio.Event()
        task = asyncio.create_task(self._open_with_retries())
        await self._first_done.wait()
        if task.done() and not task.cancelled() and (error := task.exception()) is not None:
            raise error
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, StartupFailed):
                await task
            if self.ready:
                await self.backend.close()

    async def _open_with_retries(self) -> None:
        retrying = AsyncRetrying(
            wait=self.backoff.wait(),
            retry=retry_if_exception(self._retryable),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self._attempt(attempt.retry_state.attempt_number)
        except StartupFailed:
            # After the first attempt: the backend answers now but says the configuration is
            # wrong, and no retry can fix it. Keep answering 503 with the reason until an
            # operator restarts. (At the first attempt, the lifespan raises it.)
            if self._first_done.is_set():
                return
            raise
        finally:
            self._first_done.set()

    def _retryable(self, exc: BaseException) -> bool:
        # A retryable BackendError always; a driver bug too, once the service is up (at the
        # first attempt it stops the start, with its traceback).
        return isinstance(exc, BackendError) or (
            isinstance(exc, Exception)
            and not isinstance(exc, StartupFailed)
            and self._first_done.is_set()
        )

    async def _attempt(self, attempt: int) -> None:
        """One ``open()``: returns when open, raises the retryable error to retry, or raises
        :class:`StartupFailed`."""
        name = self.backend.name
        try:
            await self.backend.open()
        except ConfigError as exc:
            self._stop(f"backend {name!r} cannot start: {exc}")
        except BackendError as exc:
            if not exc.retryable:
                self._stop(f"backend {name!r} cannot start: {exc.code}: {exc.message}")
            self.error = exc
            raise
        if attempt > 1:
            logger.info("backend %r opened at attempt %d; serving requests", name, attempt)
        self.error = None
        self.ready = True
        self._first_done.set()

    def _before_sleep(self, state: RetryCallState) -> None:
        """Log one line for the attempt that just failed, and note when the next one runs."""
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        self._next_attempt = time.monotonic() + delay
        exc = state.outcome.exception() if state.outcome is not None else None
        name = self.backend.name
        if isinstance(exc, BackendError):
            logger.warning(
                "%s",
                self.scrub(
                    f"backend {name!r} unavailable (attempt {state.attempt_number}): "
                    f"{exc.code}: {exc.message}; answering 503 and retrying in {delay:g}s"
                ),
            )
        else:
            # A driver bug: say so once per attempt (with the stack, it is unexpected) and
            # keep trying; the service stays up.
            logger.error(
                "backend %r open() raised unexpectedly (attempt %d)",
                name,
                state.attempt_number,
                exc_info=exc,
            )
        self._first_done.set()

    def _stop(self, line: str) -> None:
        line = " ".join(self.scrub(line).split())
        self.fatal = line
        logger.error("%s", line)
        raise StartupFailed(line)

    # -- answers while not open -----------------------------------------------------------------

    def retry_after(self) -> int:
        return max(1, math.ceil(self._next_attempt - time.monotonic()))

    def unavailable(self, scope: Scope, health: bool) -> ASGIApp:
        """The 503 answer while the backend is not open. Its message is fixed: the reason
        (which may name the database's host, user or file) goes to the request's log line."""
        error = self.error
        code = error.code if error is not None else "backend_unavailable"
        if self.fatal is not None:
            message = (
                "The CRM backend cannot start until an operator fixes the configuration; "
                "the reason is in the server log."
            )
            detail = self.fatal
            headers: dict[str, str] = {}
        else:
            message = "The CRM backend is not available yet; retry later."
            detail = str(error) if error is not None else "the backend is not open yet"
            headers = {"Retry-After": str(self.retry_after())}
        note_detail(scope, self.scrub(detail))
        note_outcome(scope, UNAVAILABLE)
        extra = {"status": "unavailable"} if health else None
        return error_response(
            503, code, message, extra=extra, headers=headers, request_id=request_id_of(scope)
        )


class BackendGateMiddleware:
    """Pure ASGI: until the backend is open, answer 503 without reaching the routes.

    Paths in ``open_paths`` (the OpenAPI document, metrics) need no backend and are always
    served; so are the requests ``passthrough(method, path)`` accepts (with the outbox on,
    the writes it queues while the backend cannot be opened). On the lifespan, a start-up
    stopped by :class:`StartupFailed` (already logged in one line) is reported to the server
    without Starlette's traceback text.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        gate: BackendGate,
        health_path: str,
        open_paths: tuple[str, ...],
        passthrough: Callable[[str, str], bool] | None = None,
    ) -> None:
        self.app = app
        self.gate = gate
        self.health_path = health_path
        self.open_paths = frozenset(open_paths)
        self.passthrough = passthrough

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if not self.gate.ready:
                path: str = scope["path"]
                if path not in self.open_paths and not (
                    self.passthrough is not None and self.passthrough(scope["method"], path)
                ):
                    response = self.gate.unavailable(scope, health=path == self.health_path)
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
