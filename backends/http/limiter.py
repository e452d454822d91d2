"""Client-side rate limiting: named budgets, per process or shared by every replica in Redis.

A *budget* is "at most ``calls`` per rolling ``period`` seconds" (HubSpot: ``general`` = 100 per
10 s per app, ``search`` = 5 per second per account). :meth:`Limiter.acquire` waits for a slot
of one budget, in arrival order within a process, and gives up with :class:`OverBudget` when the
wait would pass the caller's deadline. The server's own view can only make the limiter slower:
:meth:`Limiter.observe` takes the ``remaining`` count of a ``X-RateLimit-Remaining``-style header
and, when the server has fewer calls left than the limiter thinks (another replica without the
shared store, another client of the same credentials), uses the difference up at once, so the
next calls wait for the window to roll instead of running into a 429. A 429 is the server
saying ``remaining = 0``.

Two implementations of the same sliding window:

* :class:`LocalLimiter` keeps the call times in the process. Its clock and sleep are
  injectable, so tests and benches run it on virtual time.
* :class:`RedisLimiter` keeps them in Redis through the ``limits`` library's moving-window
  strategy (an atomic Lua script per acquisition, so concurrent replicas never overrun the
  window together) on redis-py's asyncio client. ``limits`` does exactly this job across
  processes and is well kept; it reads the wall clock, which is why the local limiter (used on
  virtual time) is our own ~30 lines instead of ``limits``' memory storage. When Redis cannot be
  reached the limiter falls back to the local window and logs it (at most once a minute):
  upstream 429s are still retried, so an outage of the shared store slows nothing down to zero.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Budget",
    "Clock",
    "Limiter",
    "LocalLimiter",
    "OverBudget",
    "RedisLimiter",
    "Sleep",
]

log = logging.getLogger("backends.http")

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Budget:
    """At most ``calls`` requests per rolling ``period`` seconds, under the name ``name``."""

    name: str
    calls: int
    period: float

    def __post_init__(self) -> None:
        if self.calls < 1 or self.period <= 0:
            raise ValueError(f"budget {self.name!r}: calls must be >= 1 and period > 0")


class OverBudget(Exception):
    """The next slot of ``budget`` is ``wait`` seconds away, past the caller's deadline."""

    def __init__(self, budget: str, wait: float) -> None:
        super().__init__(f"the next {budget} slot is {wait:.1f}s away")
        self.budget, self.wait = budget, wait


class Limiter(ABC):
    """Waits for slots of named budgets (see the module docstring)."""

    def __init__(self, budgets: Iterable[Budget], *, clock: Clock, sleep: Sleep) -> None:
        self.budgets = {b.name: b for b in budgets}
        self._clock, self._sleep = clock, sleep
        # One waiter per budget at a time: callers are served in arrival order.
        self._locks = {name: asyncio.Lock() for name in self.budgets}

    async def acquire(self, name: str, deadline: float | None = None) -> None:
        """Take one slot of budget ``name``, waiting as needed. Raises :class:`OverBudget`
        when the wait would end after ``deadline`` (a :func:`time.monotonic`-style time of the
        limiter's clock); ``KeyError`` for an unknown budget."""
        budget = self.budgets[name]
        async with self._locks[name]:
            while True:
                wait = await self._take(budget)
                if wait <= 0:
                    return
                if deadline is not None and self._clock() + wait > deadline:
                    raise OverBudget(name, wait)
                await self._sleep(wait)

    async def observe(self, name: str, remaining: int) -> None:
        """The server says only ``remaining`` calls of budget ``name`` are left in its current
        window: use up whatever the limiter thinks is left beyond that. Unknown names are
        ignored (a header for a budget the driver does not keep)."""
        budget = self.budgets.get(name)
        if budget is not None:
            await self._shrink(budget, max(0, remaining))

    async def pause(self, name: str, seconds: float) -> None:
        """The server refused a call of budget ``name`` (a 429) and asked for ``seconds``:
        nobody takes a slot of it before then. Unknown names are ignored."""
        budget = self.budgets.get(name)
        if budget is not None and seconds > 0:
            await self._pause(budget, seconds)

    async def aclose(self) -> None:
        """Release connections (the Redis pool); nothing to release by default."""
        return None

    @abstractmethod
    async def _take(self, budget: Budget) -> float:
        """Take a slot and return 0, or return the seconds until one frees up."""

    @abstractmethod
    async def _shrink(self, budget: Budget, remaining: int) -> None:
        """Leave at most ``remaining`` slots free in the current window."""

    @abstractmethod
    async def _pause(self, budget: Budget, seconds: float) -> None:
        """Give no slot of ``budget`` for ``seconds``."""


class LocalLimiter(Limiter):
    """The sliding window kept in this process (one deque of call times per budget)."""

    def __init__(
        self,
        budgets: Iterable[Budget],
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__(budgets, clock=clock, sleep=sleep)
        self._calls: dict[str, collections.deque[float]] = {
            name: collections.deque() for name in self.budgets
        }
        self._paused_until: dict[str, float] = {}

    def _window(self, budget: Budget) -> collections.deque[float]:
        calls, now = self._calls[budget.name], self._clock()
        while calls and calls[0] <= now - budget.period:
            calls.popleft()
        return calls

    async def _take(self, budget: Budget) -> float:
        calls = self._window(budget)
        now = self._clock()
        paused = self._paused_until.get(budget.name, 0.0) - now
        if paused > 0:
            return paused
        if len(calls) < budget.calls:
            calls.append(now)
            return 0.0
        return max(calls[0] + budget.period - now, 1e-3)

    async def _shrink(self, budget: Budget, remaining: int) -> None:
        calls = self._window(budget)
        spare = budget.calls - len(calls) - remaining
        calls.extend([self._clock()] * max(0, spare))

    async def _pause(self, budget: Budget, seconds: float) -> None:
        until = self._clock() + seconds
        self._paused_until[budget.name] = max(self._paused_until.get(budget.name, 0.0), until)


class RedisLimiter(Limiter):
    """The sliding window in Redis, shared by every process that uses the same ``key_prefix``
    (``limits``' moving window; see the module docstring)."""

    #: Seconds between two "Redis unreachable" log lines.
    WARN_EVERY = 60.0

    def __init__(
        self,
        budgets: Iterable[Budget],
        *,
        url: str,
        key_prefix: str,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        connect_timeout: float = 2.0,
    ) -> None:
        super().__init__(budgets, clock=clock, sleep=sleep)
        try:
            import redis.asyncio
            from limits import RateLimitItemPerSecond
            from limits.aio.storage import RedisStorage
            from limits.aio.strategies import MovingWindowRateLimiter
        except ImportError as exc:  # pragma: no cover - the extra names the fix
            raise RuntimeError(
                'a Redis-shared rate limit needs: pip install "enginy-crm-adapter[redis]"'
            ) from exc
        self._pool = redis.asyncio.ConnectionPool.from_url(
            url, socket_connect_timeout=connect_timeout, socket_timeout=connect_timeout
        )
        storage = RedisStorage(
            "async+" + url,
            implementation="redispy",
            key_prefix=key_prefix,
            # limits types **options as scalars; redis-py takes the pool we keep to close it.
            connection_pool=self._pool,  # type: ignore[arg-type]
        )
        self._strategy = MovingWindowRateLimiter(storage)
        self._redis = redis.asyncio.Redis(connection_pool=self._pool)
        self._items: dict[str, Any] = {
            name: RateLimitItemPerSecond(b.calls, max(1, round(b.period)))
            for name, b in self.budgets.items()
        }
        self._fallback = LocalLimiter(self.budgets.values(), clock=clock, sleep=sleep)
        self._warned_at: float | None = None
        self.key_prefix = key_prefix

    def _down(self, exc: Exception) -> None:
        now = self._clock()
        if self._warned_at is None or now - self._warned_at >= self.WARN_EVERY:
            self._warned_at = now
            log.warning(
                "rate limit store unreachable (%s); limiting per process until it is back",
                type(exc).__name__,
            )

    def _pause_key(self, budget: Budget) -> str:
        return f"{self.key_prefix}/pause/{budget.name}"

    async def _take(self, budget: Budget) -> float:
        item = self._items[budget.name]
        try:
            paused_ms = await self._redis.pttl(self._pause_key(budget))
            if paused_ms > 0:
                return float(paused_ms) / 1000.0
            if await self._strategy.hit(item, budget.name):
                return 0.0
            stats = await self._strategy.get_window_stats(item, budget.name)
        except (OSError, ConnectionError, TimeoutError, _redis_error()) as exc:
            self._down(exc)
            return await self._fallback._take(budget)
        return max(stats.reset_time - time.time(), 1e-3)

    async def _shrink(self, budget: Budget, remaining: int) -> None:
        item = self._items[budget.name]
        try:
            stats = await self._strategy.get_window_stats(item, budget.name)
            spare = stats.remaining - remaining
            if spare > 0:
                await self._strategy.hit(item, budget.name, cost=spare)
        except (OSError, ConnectionError, TimeoutError, _redis_error()) as exc:
            self._down(exc)
            await self._fallback._shrink(budget, remaining)

    async def _pause(self, budget: Budget, seconds: float) -> None:
        try:
            # Keep the longer of two pauses (a later, shorter 429 must not shorten it).
            key, ms = self._pause_key(budget), max(1, round(seconds * 1000))
            if await self._redis.pttl(key) < ms:
                await self._redis.set(key, "1", px=ms)
        except (OSError, ConnectionError, TimeoutError, _redis_error()) as exc:
            self._down(exc)
            await self._fallback._pause(budget, seconds)

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):  # closing must not raise
            await self._pool.disconnect()


def _redis_error() -> type[Exception]:
    from redis.exceptions import RedisError

    return RedisError
