"""Request limits in the ASGI layer: requests in flight, request-body memory, stalled uploads.

Memory follows the bodies being handled: a 9 MB sync is 9 MB of bytes, then several times that
as parsed JSON, until its answer is sent. Without a bound, a burst of large calls takes as much
memory as it likes. Two pure ASGI middlewares bound it by configuration (``server.limits``):

* :class:`InFlightLimit` (outside the API-key check, so that keyless floods count too): at most
  ``max_requests_in_flight`` requests at once; beyond, 503 ``overloaded`` with ``Retry-After``.
* :class:`BodyLimits` (after the key check and the backend gate, so that only a caller with a
  key and a backend to serve it holds memory): a request with a body is admitted against a
  budget of ``max_body_bytes_in_flight`` bytes (the size it declares, or
  ``server.max_body_bytes`` when it is chunked), in arrival order; one that does not fit
  waits up to ``body_wait_seconds``, then gets 503 ``overloaded`` with ``Retry-After``. Its
  bytes go back to the budget when its answer has been sent. While the body is read, a gap of
  more than ``body_timeout_seconds`` without a byte ends the request with 408 and closes the
  connection.

Both answer before the body is read, so a refused request costs no memory (its bytes wait in
the socket, and uvicorn stops reading them past 64 KiB).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapter.config import LimitsConfig
from adapter.errors import OVERLOADED, ApiError, error_response, note_outcome, request_id_of

__all__ = ["BodyBudget", "BodyLimits", "InFlightLimit", "RequestTimeout"]

#: Seconds a refused client is asked to wait before retrying.
_RETRY_AFTER = 2
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class RequestTimeout(ApiError):
    """408: the body stalled (no byte for ``server.limits.body_timeout_seconds``)."""

    status = 408
    code = "request_timeout"


def _overloaded(scope: Scope, message: str) -> ASGIApp:
    note_outcome(scope, OVERLOADED)
    return error_response(
        503,
        "overloaded",
        message,
        headers={"Retry-After": str(_RETRY_AFTER)},
        request_id=request_id_of(scope),
    )


class InFlightLimit:
    """At most ``limit`` HTTP requests served at once; 503 with ``Retry-After`` beyond."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            response = _overloaded(scope, "too many requests in flight; retry later")
            await response(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


class BodyBudget:
    """A budget of bytes shared by the requests being handled, granted in arrival order.

    A request larger than the whole budget is granted all of it, once everything else has been
    returned: a single large body can always be served.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.free = total
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def grant_size(self, size: int) -> int:
        return min(size, self.total)

    async def acquire(self, size: int, timeout: float) -> bool:
        """Take ``grant_size(size)`` bytes, waiting up to ``timeout`` seconds behind earlier
        requests. ``False`` when they were not free in time (nothing is taken)."""
        size = self.grant_size(size)
        if not self._waiters and self.free >= size:
            self.free -= size
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (size, future)
        self._waiters.append(entry)
        try:
            await asyncio.wait({future}, timeout=timeout)
        except BaseException:
            self._withdraw(entry)
            raise
        if future.done():
            return True
        self._withdraw(entry)
        return False

    def _withdraw(self, entry: tuple[int, asyncio.Future[None]]) -> None:
        size, future = entry
        if future.done() and not future.cancelled():
            self.release(size)  # granted just as the wait ended: give it back
            return
        future.cancel()
        with contextlib.suppress(ValueError):  # already taken off by _wake
            self._waiters.remove(entry)
        self._wake()  # the head of the queue may have been the one in the way

    def release(self, size: int) -> None:
        self.free += size
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            size, future = self._waiters[0]
            if future.done():
                self._waiters.popleft()
                continue
            if size > self.free:
                return
            self._waiters.popleft()
            self.free -= size
            future.set_result(None)


def _declared_size(scope: Scope) -> int | None:
    """The body size the request declares: ``Content-Length``, ``-1`` for a chunked body,
    ``None`` for no body (or one the endpoint will refuse as malformed)."""
    chunked = False
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
        if name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    return -1 if chunked else None


class BodyLimits:
    """Admit bodies against a :class:`BodyBudget`, and time out stalled uploads."""

    def __init__(self, app: ASGIApp, *, limits: LimitsConfig, max_body_bytes: int) -> None:
        self.app = app
        self.budget = BodyBudget(limits.max_body_bytes_in_flight)
        self.wait_seconds = limits.body_wait_seconds
        self.body_timeout = limits.body_timeout_seconds
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = _declared_size(scope)
        if declared is None or declared == 0 or declared > self.max_body_bytes:
            # Nothing to hold, or a body the endpoint refuses (413) before reading it.
            await self.app(scope, self._timed(receive), send)
            return
        size = self.budget.grant_size(self.max_body_bytes if declared < 0 else declared)
        if not await self.budget.acquire(size, self.wait_seconds):
            response = _overloaded(scope, "too many large requests in flight; retry later")
            await response(scope, receive, send)
            return
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.budget.release(size)

        async def send_and_release(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                release()

        try:
            await self.app(scope, self._timed(receive), send_and_release)
        finally:
            release()

    def _timed(self, receive: Receive) -> Receive:
        timeout = self.body_timeout

        async def timed_receive() -> Message:
            try:
                async with asyncio.timeout(timeout):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout(
                    f"no part of the request body arrived for {math.ceil(timeout)} seconds",
                    headers={"Connection": "close"},
                ) from None
            return message

        return timed_receive
