"""The shared client alone, on an httpx MockTransport: retries, budgets, headers, secrets."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import pytest

from backends.base import (
    AuthFailed,
    BackendError,
    InvalidRecord,
    NotFound,
    RateLimited,
    Unavailable,
)
from backends.http import Budget, HttpClient, LocalLimiter, RateHeader, RetryPolicy

from .conftest import VirtualClock

pytestmark = pytest.mark.anyio

SECRET = "tok-0123456789-very-secret"


def errors(
    status: int, body: Mapping[str, Any], *, retry_after: float | None = None
) -> BackendError:
    message = str(body.get("message") or status)
    table: dict[int, type[BackendError]] = {401: AuthFailed, 404: NotFound, 429: RateLimited}
    cls = table.get(status) or (Unavailable if status >= 500 else InvalidRecord)
    if issubclass(cls, Unavailable):
        return cls(message, retry_after=retry_after)
    return cls(message)


Handler = Callable[[httpx.Request], httpx.Response]


def client(
    clock: VirtualClock,
    handler: Handler,
    *,
    calls: int = 100,
    **kwargs: Any,
) -> HttpClient:
    limiter = LocalLimiter([Budget("general", calls, 10.0)], clock=clock, sleep=clock.sleep)
    return HttpClient(
        base_url="https://api.example.test",
        limiter=limiter,
        errors=errors,
        headers={"Authorization": f"Bearer {SECRET}"},
        secrets=[SECRET],
        transport=httpx.MockTransport(handler),
        sleep=clock.sleep,
        clock=clock,
        jitter=lambda: 0.0,
        **kwargs,
    )


def script(*answers: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler, seen


async def test_transient_failures_are_retried_until_success(clock: VirtualClock) -> None:
    handler, seen = script(
        httpx.Response(502), httpx.ConnectError("refused"), httpx.Response(200, json={"ok": 1})
    )
    c = client(clock, handler)
    retries: list[str] = []
    c.on_retry = retries.append
    response = await c.request("GET", "/things")
    assert response.body == {"ok": 1} and len(seen) == 3
    assert retries == ["5xx", "network"]
    assert clock.sleeps == [0.5, 1.0]  # equal jitter at 0: half of 1 s, half of 2 s


async def test_a_permanent_error_is_raised_after_one_attempt(clock: VirtualClock) -> None:
    handler, seen = script(httpx.Response(404, json={"message": "no such thing"}))
    with pytest.raises(NotFound, match="no such thing"):
        await client(clock, handler).request("GET", "/things/1")
    assert len(seen) == 1 and clock.sleeps == []


async def test_an_accepted_status_is_returned(clock: VirtualClock) -> None:
    handler, _ = script(httpx.Response(404, json={"message": "gone"}))
    response = await client(clock, handler).request("GET", "/x", accept=(404,))
    assert response.status == 404 and not response.ok


async def test_429_pauses_every_caller_for_the_time_asked(clock: VirtualClock) -> None:
    handler, seen = script(
        httpx.Response(429, headers={"Retry-After": "4"}), httpx.Response(200, json={})
    )
    c = client(clock, handler, max_attempts=1)
    with pytest.raises(RateLimited):
        await c.request("GET", "/x")  # no retry allowed: fails, but pauses the budget
    assert clock.now == 1000.0
    await c.request("GET", "/y")  # another caller waits out the pause before sending
    assert clock.now - 1000.0 == pytest.approx(4.0)
    assert len(seen) == 2


async def test_the_time_budget_ends_retries_with_retry_after(clock: VirtualClock) -> None:
    handler, seen = script(httpx.Response(503))
    c = client(clock, handler, budget_seconds=10, max_attempts=50)
    with pytest.raises(Unavailable) as info:
        await c.request("GET", "/x")
    assert clock.now - 1000.0 <= 10.0
    assert 1 < len(seen) < 50
    assert info.value.retry_after is not None and "gave up" in info.value.message


async def test_a_limiter_wait_past_the_budget_is_rate_limited(clock: VirtualClock) -> None:
    handler, _ = script(httpx.Response(200, json={}))
    c = client(clock, handler, calls=1, budget_seconds=5)
    await c.request("GET", "/x")
    with pytest.raises(RateLimited) as info:
        await c.request("GET", "/y")
    assert info.value.retry_after == pytest.approx(10.0)


async def test_rate_headers_slow_down_before_a_429(clock: VirtualClock) -> None:
    headers = {"X-RateLimit-Remaining": "1", "X-RateLimit-Limit": "100"}
    handler, seen = script(httpx.Response(200, json={}, headers=headers))
    c = client(
        clock,
        handler,
        calls=90,
        rate_headers=[RateHeader("X-RateLimit-Remaining", "general", "X-RateLimit-Limit")],
    )
    await c.request("GET", "/x")
    # 1 left of the server's 100 is less than the 10 kept as headroom: wait for the window
    before = clock.now
    await c.request("GET", "/y")
    assert clock.now - before == pytest.approx(10.0)
    assert len(seen) == 2


async def test_missing_rate_headers_mean_unknown(clock: VirtualClock) -> None:
    handler, _ = script(httpx.Response(200, json={}))
    c = client(clock, handler, calls=5, rate_headers=[RateHeader("X-RateLimit-Remaining")])
    for _ in range(5):
        await c.request("GET", "/x")
    assert clock.now == 1000.0


async def test_secrets_never_reach_logs_or_errors(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    handler, _ = script(
        httpx.ConnectError(f"cannot reach with Bearer {SECRET}"),
        httpx.Response(400, json={"message": f"bad token {SECRET}"}),
    )
    c = client(clock, handler, max_attempts=3)
    with caplog.at_level(logging.DEBUG, "backends.http"), pytest.raises(InvalidRecord) as info:
        await c.request("GET", "/x", params={"hapikey": SECRET, "q": "ok"})
    assert SECRET not in str(info.value)
    assert SECRET not in caplog.text
    assert "hapikey=[redacted]" in caplog.text and "q=ok" in caplog.text


async def test_policy_subclass_decides_quirks(clock: VirtualClock) -> None:
    class Quirky(RetryPolicy):
        def for_response(self, status: int, body: Any, headers: Any, attempt: int) -> Any:
            if status == 477:
                return super().for_response(503, body, headers, attempt)
            return super().for_response(status, body, headers, attempt)

    handler, seen = script(httpx.Response(477), httpx.Response(200, json={}))
    await client(clock, handler, policy=Quirky()).request("GET", "/x")
    assert len(seen) == 2


async def test_any_2xx_is_success(clock: VirtualClock) -> None:
    handler, _ = script(httpx.Response(201, json={"id": "1"}))
    assert (await client(clock, handler).request("POST", "/x", json={})).body == {"id": "1"}
