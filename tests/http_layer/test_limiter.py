"""The rate limiter alone: local windows on virtual time, and the window shared in Redis."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from backends.http import Budget, LocalLimiter, OverBudget, RateLimitOptions, RedisLimiter
from backends.http.options import build_limiter

from .conftest import VirtualClock

pytestmark = pytest.mark.anyio


def local(clock: VirtualClock, *budgets: Budget) -> LocalLimiter:
    return LocalLimiter(budgets or (Budget("general", 3, 10.0),), clock=clock, sleep=clock.sleep)


async def test_calls_beyond_the_window_wait_for_it_to_roll(clock: VirtualClock) -> None:
    limiter = local(clock)
    for _ in range(7):
        await limiter.acquire("general")
    # 7 calls at 3 per 10 s: two full waits
    assert clock.now - 1000.0 == pytest.approx(20.0)


async def test_budgets_are_independent(clock: VirtualClock) -> None:
    limiter = local(clock, Budget("general", 100, 10.0), Budget("search", 2, 1.0))
    for _ in range(4):
        await limiter.acquire("search")
    assert clock.now - 1000.0 == pytest.approx(1.0)
    before = clock.now
    for _ in range(4):
        await limiter.acquire("general")
    assert clock.now == before


async def test_a_wait_past_the_deadline_fails_at_once(clock: VirtualClock) -> None:
    limiter = local(clock)
    for _ in range(3):
        await limiter.acquire("general")
    with pytest.raises(OverBudget) as info:
        await limiter.acquire("general", deadline=clock.now + 5)
    assert info.value.wait == pytest.approx(10.0)
    assert clock.sleeps == []


async def test_waiters_are_served_in_arrival_order(clock: VirtualClock) -> None:
    limiter = local(clock, Budget("general", 1, 1.0))
    order: list[int] = []

    async def one(n: int) -> None:
        await limiter.acquire("general")
        order.append(n)

    await asyncio.gather(*(one(n) for n in range(5)))
    assert order == [0, 1, 2, 3, 4]


async def test_observed_remaining_uses_up_the_difference(clock: VirtualClock) -> None:
    limiter = local(clock, Budget("general", 10, 10.0))
    await limiter.acquire("general")
    await limiter.observe("general", 2)  # someone else used most of the window
    await limiter.acquire("general")
    await limiter.acquire("general")
    assert clock.now == 1000.0
    await limiter.acquire("general")
    assert clock.now > 1000.0  # the fourth call waited for the window


async def test_observed_remaining_never_speeds_up(clock: VirtualClock) -> None:
    limiter = local(clock, Budget("general", 2, 10.0))
    await limiter.acquire("general")
    await limiter.observe("general", 50)
    await limiter.acquire("general")
    await limiter.acquire("general")
    assert clock.now - 1000.0 == pytest.approx(10.0)


async def test_pause_blocks_everyone_for_the_time_asked(clock: VirtualClock) -> None:
    limiter = local(clock, Budget("search", 5, 1.0))
    await limiter.pause("search", 2.5)
    await limiter.pause("search", 1.0)  # a shorter pause does not shorten it
    await limiter.acquire("search")
    assert clock.now - 1000.0 == pytest.approx(2.5)


async def test_unknown_budget_names(clock: VirtualClock) -> None:
    limiter = local(clock)
    await limiter.observe("daily", 0)  # a header for a budget not kept: ignored
    with pytest.raises(KeyError):
        await limiter.acquire("daily")


def test_budget_must_allow_a_call() -> None:
    with pytest.raises(ValueError, match="calls must be"):
        Budget("general", 0, 10.0)


def test_options_pick_the_implementation() -> None:
    options = RateLimitOptions.model_validate({"redis_url": "redis://127.0.0.1:1/0"})
    built = build_limiter(
        options,
        [Budget("general", 1, 1.0)],
        driver="hubspot",
        credential="pat-na1-secret",
        clock=time.monotonic,
        sleep=asyncio.sleep,
    )
    assert isinstance(built, RedisLimiter)
    assert built.key_prefix.startswith("enginy:hubspot:")
    assert "secret" not in built.key_prefix
    assert "127.0.0.1:1" not in repr(options)  # the URL may hold a password
    local_one = build_limiter(
        RateLimitOptions(),
        [Budget("general", 1, 1.0)],
        driver="hubspot",
        credential="x",
        clock=time.monotonic,
        sleep=asyncio.sleep,
    )
    assert isinstance(local_one, LocalLimiter)
    with pytest.raises(ValueError, match="redis://"):
        RateLimitOptions.model_validate({"redis_url": "http://127.0.0.1:6379"})


# -- shared in Redis ---------------------------------------------------------------------------


def shared(redis_url: str, key_prefix: str, calls: int = 5, period: float = 2.0) -> RedisLimiter:
    return RedisLimiter([Budget("general", calls, period)], url=redis_url, key_prefix=key_prefix)


async def test_two_limiters_on_one_redis_share_one_window(redis_url: str, key_prefix: str) -> None:
    # Two "replicas" (separate limiters, separate connection pools) on one key prefix.
    first, second = shared(redis_url, key_prefix), shared(redis_url, key_prefix)
    try:
        stamps: list[float] = []

        async def call(limiter: RedisLimiter) -> None:
            await limiter.acquire("general")
            stamps.append(time.time())

        start = time.time()
        await asyncio.gather(*(call(first if n % 2 else second) for n in range(12)))
        # 12 calls at 5 per 2 s across both: the last ones waited for two window rolls
        assert time.time() - start >= 3.5
        for stamp in stamps:  # never more than 5 in any 2-second window
            assert sum(1 for s in stamps if stamp <= s < stamp + 1.95) <= 5
    finally:
        await first.aclose()
        await second.aclose()


async def test_redis_keys_are_separate_per_prefix(redis_url: str, key_prefix: str) -> None:
    a, b = shared(redis_url, key_prefix + ":a", 1, 5), shared(redis_url, key_prefix + ":b", 1, 5)
    try:
        await a.acquire("general")
        start = time.time()
        await b.acquire("general")  # another prefix: its own window
        assert time.time() - start < 1.0
        with pytest.raises(OverBudget):
            await a.acquire("general", deadline=time.monotonic() + 1)
    finally:
        await a.aclose()
        await b.aclose()


async def test_redis_observe_and_pause_reach_every_replica(redis_url: str, key_prefix: str) -> None:
    first, second = shared(redis_url, key_prefix, 10, 3), shared(redis_url, key_prefix, 10, 3)
    try:
        await first.observe("general", 0)  # the server says the window is used up
        with pytest.raises(OverBudget) as info:
            await second.acquire("general", deadline=time.monotonic() + 0.5)
        assert 2.0 < info.value.wait <= 3.0
        await first.pause("general", 7.0)  # a 429 asking for 7 s
        with pytest.raises(OverBudget) as info:
            await second.acquire("general", deadline=time.monotonic() + 0.5)
        assert 6.0 < info.value.wait <= 7.0
    finally:
        await first.aclose()
        await second.aclose()


async def test_unreachable_redis_falls_back_to_the_local_window(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock()
    limiter = RedisLimiter(
        [Budget("general", 2, 10.0)],
        url="redis://127.0.0.1:1/0",  # nothing listens on port 1
        key_prefix="unused",
        clock=clock,
        sleep=clock.sleep,
        connect_timeout=0.5,
    )
    with caplog.at_level(logging.WARNING, "backends.http"):
        for _ in range(3):
            await limiter.acquire("general")
    assert clock.now - 1000.0 == pytest.approx(10.0)  # still limited, per process
    warnings = [r for r in caplog.records if "rate limit store unreachable" in r.getMessage()]
    assert len(warnings) == 1
    await limiter.aclose()
