"""The retry policy (HubSpot's rules), the client-side limiter and the per-call budget."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from backends.base import (
    AuthFailed,
    Conflict,
    InvalidRecord,
    NotFound,
    RateLimited,
    Unavailable,
)
from backends.hubspot import HubSpotClient, HubSpotOptions

from .conftest import TOKEN, VirtualClock

pytestmark = pytest.mark.anyio

API = "https://api.hubapi.com"
PATH = "/crm/v3/objects/contacts/batch/read"

TEN_SECONDLY = {
    "status": "error",
    "message": "You have reached your ten_secondly_rolling limit.",
    "errorType": "RATE_LIMIT",
    "policyName": "TEN_SECONDLY_ROLLING",
    "groupName": "publicapi:private_app-api-calls-ten-secondly:1",
}
DAILY = {
    "status": "error",
    "message": "You have reached your daily limit.",
    "errorType": "RATE_LIMIT",
    "policyName": "DAILY",
}
SECONDLY = {
    "status": "error",
    "message": "You have reached your secondly limit.",
    "errorType": "RATE_LIMIT",
}
OK = {"status": "COMPLETE", "results": []}


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=API) as router:
        yield router


def client(clock: VirtualClock, **options: Any) -> HubSpotClient:
    # jitter pinned to 0 so waits are exact
    return HubSpotClient(
        HubSpotOptions(token=TOKEN, **options), sleep=clock.sleep, clock=clock, jitter=lambda: 0.0
    )


async def call(c: HubSpotClient, **kwargs: Any) -> Any:
    return await c.request("POST", PATH, json={"inputs": []}, **kwargs)


async def test_ten_secondly_429_waits_the_window(
    api: respx.MockRouter, clock: VirtualClock
) -> None:
    route = api.post(PATH).mock(
        side_effect=[
            httpx.Response(
                429,
                json=TEN_SECONDLY,
                headers={"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"},
            ),
            httpx.Response(200, json=OK),
        ]
    )
    response = await call(client(clock))
    assert response.status == 200
    assert route.call_count == 2
    assert sum(clock.sleeps) >= 10.0


async def test_ten_secondly_window_comes_from_the_header(
    api: respx.MockRouter, clock: VirtualClock
) -> None:
    api.post(PATH).mock(
        side_effect=[
            httpx.Response(
                429,
                json=TEN_SECONDLY,
                headers={"X-HubSpot-RateLimit-Interval-Milliseconds": "3000"},
            ),
            httpx.Response(200, json=OK),
        ]
    )
    await call(client(clock))
    assert 3.0 <= sum(clock.sleeps) < 10.0


async def test_search_secondly_429_waits_about_a_second(
    api: respx.MockRouter, clock: VirtualClock
) -> None:
    route = api.post(PATH).mock(
        side_effect=[httpx.Response(429, json=SECONDLY), httpx.Response(200, json=OK)]
    )
    await call(client(clock), search=True)
    assert route.call_count == 2
    assert 1.0 <= sum(clock.sleeps) < 3.0


async def test_daily_429_is_not_retried(api: respx.MockRouter, clock: VirtualClock) -> None:
    route = api.post(PATH).respond(429, json=DAILY)
    with pytest.raises(RateLimited) as info:
        await call(client(clock))
    assert route.call_count == 1
    assert "daily" in info.value.message.lower()
    assert clock.sleeps == []


async def test_5xx_is_retried_with_growing_backoff(
    api: respx.MockRouter, clock: VirtualClock
) -> None:
    route = api.post(PATH).mock(
        side_effect=[
            httpx.Response(502),
            httpx.Response(503),
            httpx.Response(500),
            httpx.Response(200, json=OK),
        ]
    )
    await call(client(clock))
    assert route.call_count == 4
    assert clock.sleeps == sorted(clock.sleeps) and clock.sleeps[0] < clock.sleeps[-1]


@pytest.mark.parametrize(
    "error",
    [httpx.ReadTimeout("slow"), httpx.ConnectError("refused"), httpx.RemoteProtocolError("eof")],
)
async def test_timeouts_and_connection_errors_are_retried(
    api: respx.MockRouter, clock: VirtualClock, error: Exception
) -> None:
    route = api.post(PATH).mock(side_effect=[error, httpx.Response(200, json=OK)])
    assert (await call(client(clock))).status == 200
    assert route.call_count == 2


async def test_423_waits_at_least_two_seconds(api: respx.MockRouter, clock: VirtualClock) -> None:
    api.post(PATH).mock(side_effect=[httpx.Response(423), httpx.Response(200, json=OK)])
    await call(client(clock))
    assert clock.sleeps[0] >= 2.0


async def test_477_honours_retry_after(api: respx.MockRouter, clock: VirtualClock) -> None:
    api.post(PATH).mock(
        side_effect=[
            httpx.Response(477, headers={"Retry-After": "7"}),
            httpx.Response(200, json=OK),
        ]
    )
    await call(client(clock))
    assert clock.sleeps[0] == 7.0


async def test_477_longer_than_the_budget_fails_at_once_with_retry_after(
    api: respx.MockRouter, clock: VirtualClock
) -> None:
    route = api.post(PATH).respond(477, headers={"Retry-After": "3600"})
    with pytest.raises(Unavailable) as info:
        await call(client(clock))
    assert route.call_count == 1
    assert info.value.retry_after == 3600.0


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, InvalidRecord),
        (401, AuthFailed),
        (403, AuthFailed),
        (404, NotFound),
        (409, Conflict),
        (414, InvalidRecord),
    ],
)
async def test_client_errors_are_not_retried(
    api: respx.MockRouter, clock: VirtualClock, status: int, error: type[Exception]
) -> None:
    route = api.post(PATH).respond(
        status, json={"status": "error", "message": "nope", "category": "VALIDATION_ERROR"}
    )
    with pytest.raises(error):
        await call(client(clock))
    assert route.call_count == 1


async def test_budget_exhaustion_gives_unavailable(
    api: respx.MockRouter, clock: VirtualClock
) -> None:
    route = api.post(PATH).respond(503)
    c = client(clock, budget_seconds=10, max_attempts=50)
    start = clock.now
    with pytest.raises(Unavailable) as info:
        await call(c)
    assert not isinstance(info.value, RateLimited)
    assert clock.now - start <= 10.0  # never slept past the budget
    assert 1 < route.call_count < 50
    assert info.value.retry_after is not None


async def test_attempts_are_capped(api: respx.MockRouter, clock: VirtualClock) -> None:
    route = api.post(PATH).respond(500)
    with pytest.raises(Unavailable):
        await call(client(clock, max_attempts=3))
    assert route.call_count == 3


async def test_persistent_ten_secondly_429_ends_as_rate_limited(
    api: respx.MockRouter, clock: VirtualClock
) -> None:
    api.post(PATH).respond(429, json=TEN_SECONDLY)
    with pytest.raises(RateLimited) as info:
        await call(client(clock, budget_seconds=25))
    assert info.value.retry_after is not None and info.value.retry_after >= 10


async def test_any_2xx_is_success(api: respx.MockRouter, clock: VirtualClock) -> None:
    api.post(PATH).respond(201, json=OK)  # HubSpot swaps 200/201 in practice
    assert (await call(client(clock))).body == OK


async def test_limiter_spaces_calls_within_the_window(
    api: respx.MockRouter, clock: VirtualClock
) -> None:
    api.post(PATH).respond(200, json=OK)
    c = client(clock, rate_limit={"requests_per_10s": 3})
    start = clock.now
    for _ in range(7):
        await call(c)
    # 7 calls at 3 per 10 s need two full waits
    assert clock.now - start >= 20.0


async def test_search_limiter_is_separate(api: respx.MockRouter, clock: VirtualClock) -> None:
    api.post(PATH).respond(200, json=OK)
    c = client(clock, rate_limit={"searches_per_second": 2})
    for _ in range(4):
        await call(c, search=True)
    assert clock.now - 1000.0 >= 1.0
    before = clock.now
    for _ in range(4):
        await call(c)  # non-search calls are not held by the search limiter
    assert clock.now == before


async def test_each_retry_is_reported_to_the_driver_hook(clock: VirtualClock) -> None:
    # The front points Backend.on_upstream_retry at its retry metric after building the driver.
    from backends.hubspot import HubSpotBackend

    backend = HubSpotBackend(HubSpotOptions(token=TOKEN), sleep=clock.sleep, clock=clock)
    reported: list[str] = []
    backend.on_upstream_retry = reported.append
    with respx.mock(base_url=API) as router:
        router.post(PATH).mock(
            side_effect=[
                httpx.Response(502),
                httpx.Response(429, json=SECONDLY),
                httpx.Response(200, json=OK),
            ]
        )
        await backend.client.request("POST", PATH, json={"inputs": []})
    await backend.client.aclose()
    assert len(reported) == 2 and all(reported)
