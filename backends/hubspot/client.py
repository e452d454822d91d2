"""The HTTP client: pooled httpx, bearer auth, client-side limits, tenacity retries, budgets.

* One ``httpx.AsyncClient`` per driver (connection pooling, explicit timeouts); the transport is
  injectable so tests and the bench serve a fake with no network.
* A sliding-window limiter shared by every concurrent request keeps the driver under the
  10-second window and, separately, search's per-second limit; a 429 from HubSpot also pauses
  the limiter so concurrent requests stop hammering.
* tenacity retries follow :func:`backends.hubspot.errors.retry_decision`.
* Every call runs inside a *budget* (a deadline in a context variable, shared by all the HTTP
  calls of one driver operation); when the next wait would pass it, the call fails with
  ``Unavailable``/``RateLimited`` carrying ``retry_after``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import logging
import random
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from backends.base import BackendError, RateLimited, Unavailable
from backends.hubspot.errors import describe, error_for, retry_decision
from backends.hubspot.options import HubSpotOptions
from backends.hubspot.paths import Paths

__all__ = ["HubSpotClient", "HubSpotResponse", "SlidingWindowLimiter"]

log = logging.getLogger("backends.hubspot")

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "hubspot_deadline", default=None
)


@dataclass(slots=True)
class HubSpotResponse:
    """A decoded HubSpot answer (any 2xx, or an accepted error status)."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json_dict(self) -> dict[str, Any]:
        return self.body if isinstance(self.body, dict) else {}


class _OverBudget(Exception):
    def __init__(self, wait: float) -> None:
        super().__init__(f"waiting {wait:.1f}s would pass the budget")
        self.wait = wait


class SlidingWindowLimiter:
    """At most ``max_calls`` per rolling ``period`` seconds, shared by concurrent callers.

    Waiters queue behind one lock, so they are served in arrival order.
    """

    def __init__(self, max_calls: int, period: float, clock: Clock, sleep: Sleep) -> None:
        self.max_calls, self.period = max_calls, period
        self._clock, self._sleep = clock, sleep
        self._calls: collections.deque[float] = collections.deque()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        """Stop everyone for ``seconds`` (HubSpot said the window is full)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    async def acquire(self, deadline: float | None) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                while self._calls and self._calls[0] <= now - self.period:
                    self._calls.popleft()
                wait = self._paused_until - now
                if wait <= 0 and len(self._calls) < self.max_calls:
                    self._calls.append(now)
                    return
                if wait <= 0:
                    wait = self._calls[0] + self.period - now
                if deadline is not None and now + wait > deadline:
                    raise _OverBudget(wait)
                await self._sleep(wait)


class _Retry(Exception):
    """One attempt failed in a retryable way; ``wait`` is the pause before the next one."""

    def __init__(self, error: BackendError, wait: float, kind: str) -> None:
        super().__init__(error.message)
        self.error, self.wait, self.kind = error, wait, kind


class HubSpotClient:
    """Thin async client for the HubSpot REST API (one per driver instance)."""

    def __init__(
        self,
        options: HubSpotOptions,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.options = options
        self.paths = Paths(options.api_version)
        self._sleep, self._clock, self._jitter = sleep, clock, jitter
        self._secret = options.token.get_secret_value()
        self.timeout = httpx.Timeout(
            connect=options.connect_timeout,
            read=options.read_timeout,
            write=options.write_timeout,
            pool=options.pool_timeout,
        )
        self._http = httpx.AsyncClient(
            base_url=options.base_url,
            headers={
                "Authorization": f"Bearer {self._secret}",
                "Accept": "application/json",
                "User-Agent": "enginy-crm-adapter",
            },
            timeout=self.timeout,
            limits=httpx.Limits(
                max_connections=options.max_connections,
                max_keepalive_connections=options.max_connections,
            ),
            transport=transport,
            follow_redirects=False,
        )
        self.limiter = SlidingWindowLimiter(options.requests_per_10s, 10.0, clock, sleep)
        self.search_limiter = SlidingWindowLimiter(options.searches_per_second, 1.0, clock, sleep)
        #: Number of HTTP attempts sent (for logs and the bench).
        self.attempts = 0
        #: Called with the failure's kind before each retry (the front's retry metric).
        self.on_retry: Callable[[str], None] | None = None

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self._http.aclose()

    # -- budget -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def budget(self, seconds: float | None = None) -> Any:
        """Run the enclosed calls under one deadline (nested budgets keep the outer one)."""
        if _deadline.get() is not None:
            yield
            return
        token = _deadline.set(self._clock() + (seconds or self.options.budget_seconds))
        try:
            yield
        finally:
            _deadline.reset(token)

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "[token]") if self._secret else text

    # -- requests -----------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        search: bool = False,
        accept: Collection[int] = (),
    ) -> HubSpotResponse:
        """Send one call with limits and retries.

        Returns any 2xx (HubSpot swaps 200/201 in practice, so no exact code is expected) or a
        status listed in ``accept``; raises the mapped :class:`BackendError` otherwise.
        """
        with self.budget():
            deadline = _deadline.get()
            assert deadline is not None

            def stop(state: RetryCallState) -> bool:
                exc = state.outcome.exception() if state.outcome else None
                if not isinstance(exc, _Retry):
                    return True
                if state.attempt_number >= self.options.max_attempts:
                    return True
                return self._clock() + exc.wait > deadline

            def wait(state: RetryCallState) -> float:
                exc = state.outcome.exception() if state.outcome else None
                return exc.wait if isinstance(exc, _Retry) else 0.0

            def before_sleep(state: RetryCallState) -> None:
                exc = state.outcome.exception() if state.outcome else None
                if self.on_retry is not None and isinstance(exc, _Retry):
                    self.on_retry(exc.kind)

            retrying = AsyncRetrying(
                retry=retry_if_exception_type(_Retry),
                stop=stop,
                wait=wait,
                before_sleep=before_sleep,
                sleep=self._sleep,
                reraise=True,
            )
            try:
                async for attempt in retrying:
                    with attempt:
                        return await self._attempt(
                            method,
                            path,
                            json,
                            params,
                            search,
                            accept,
                            deadline,
                            attempt.retry_state.attempt_number,
                        )
            except _Retry as exc:
                error = exc.error
                if isinstance(error, Unavailable):
                    remaining = max(0.0, exc.wait)
                    error = type(error)(
                        f"{error.message} (gave up after {self.options.max_attempts} attempts "
                        f"or the {self.options.budget_seconds:g}s budget)",
                        retry_after=error.retry_after or (remaining or None),
                    )
                raise error from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(
        self,
        method: str,
        path: str,
        json: Any,
        params: Mapping[str, Any] | None,
        search: bool,
        accept: Collection[int],
        deadline: float,
        number: int,
    ) -> HubSpotResponse:
        try:
            await self.limiter.acquire(deadline)
            if search:
                await self.search_limiter.acquire(deadline)
        except _OverBudget as exc:
            raise RateLimited(
                f"client-side rate limit: the next slot is {exc.wait:.1f}s away, past the "
                f"{self.options.budget_seconds:g}s budget",
                retry_after=exc.wait,
            ) from None
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise Unavailable("HubSpot call budget exhausted", retry_after=1.0)
        timeout = httpx.Timeout(
            connect=min(self.timeout.connect or remaining, remaining),
            read=min(self.timeout.read or remaining, remaining),
            write=min(self.timeout.write or remaining, remaining),
            pool=min(self.timeout.pool or remaining, remaining),
        )
        self.attempts += 1
        try:
            response = await self._http.request(
                method, path, json=json, params=params, timeout=timeout
            )
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            kind = type(exc).__name__
            failure = Unavailable(self._redact(f"HubSpot {method} {path}: {kind}: {exc}"))
            log.warning("hubspot %s %s attempt %d failed: %s", method, path, number, kind)
            backoff = min(30.0, 1.0 * 2 ** (number - 1))
            raise _Retry(failure, backoff * (0.5 + self._jitter() / 2), "network") from None
        body: Any = None
        if response.content:
            try:
                body = response.json()
            except ValueError:
                body = {"message": response.text[:200]}
        status = response.status_code
        if 200 <= status < 300 or status in accept:
            return HubSpotResponse(status, body, response.headers)
        data = body if isinstance(body, dict) else {}
        correlation = response.headers.get("x-hubspot-correlation-id")
        if correlation and "correlationId" not in data:
            data = {**data, "correlationId": correlation}
        decision = retry_decision(status, data, response.headers, number)
        retry_after = decision.wait if decision.retry else None
        error: BackendError = error_for(status, data, retry_after=retry_after)
        error.message = self._redact(error.message)
        log.warning(
            "hubspot %s %s attempt %d: %s",
            method,
            path,
            number,
            self._redact(describe(data, status)),
        )
        if not decision.retry:
            raise error
        wait = decision.wait
        if decision.kind in ("ten_secondly", "search"):
            (self.search_limiter if decision.kind == "search" else self.limiter).pause(wait)
        # Exact waits (windows, Retry-After) get jitter added so concurrent requests don't
        # return in lock-step; backoffs get "equal jitter" (half fixed, half random).
        wait = wait + self._jitter() if decision.exact else wait * (0.5 + self._jitter() / 2)
        raise _Retry(error, wait, decision.kind)
