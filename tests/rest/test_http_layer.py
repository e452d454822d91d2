"""What the REST driver added to the shared HTTP layer (backends/http), for every HTTP driver:
calls that must not be resent blindly, per-call headers, error tables that read headers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from backends.base import BackendError, InvalidRecord, RateLimited, Unavailable
from backends.http import Budget, HttpClient, LocalLimiter
from tests.rest.support import VirtualClock

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def errors(
    status: int,
    body: Mapping[str, Any],
    *,
    retry_after: float | None = None,
    headers: Mapping[str, str] | None = None,
) -> BackendError:
    if status == 429 or (headers or {}).get("x-limit") == "0":
        return RateLimited("slow down", retry_after=retry_after)
    return Unavailable("down") if status >= 500 else InvalidRecord(f"bad {status}")


def client(answers: list[httpx.Response | Exception], seen: list[httpx.Request]) -> HttpClient:
    clock = VirtualClock()

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return HttpClient(
        base_url="https://api.test", limiter=LocalLimiter([Budget("general", 100, 1)], clock=clock,
                                                          sleep=clock.sleep),
        errors=errors, transport=httpx.MockTransport(handle), sleep=clock.sleep, clock=clock,
        jitter=lambda: 0.0,
    )  # fmt: skip


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(500),
        httpx.Response(503),
        httpx.ReadTimeout("lost"),
        httpx.RemoteProtocolError("reset"),
    ],
    ids=["500", "503", "read-timeout", "reset"],
)
async def test_a_call_the_server_may_have_acted_on_is_not_resent(failure: Any) -> None:
    seen: list[httpx.Request] = []
    http = client([failure, httpx.Response(201)], seen)
    with pytest.raises(Unavailable):
        await http.request("POST", "/contacts", json={}, idempotent=False)
    assert len(seen) == 1
    seen.clear()
    http = client([failure, httpx.Response(201)], seen)
    assert (await http.request("POST", "/contacts", json={})).status == 201  # idempotent: resent
    assert len(seen) == 2


@pytest.mark.parametrize(
    "failure",
    [httpx.Response(429, headers={"Retry-After": "1"}), httpx.ConnectError("refused")],
    ids=["429", "connection-refused"],
)
async def test_a_call_the_server_cannot_have_acted_on_is_resent(failure: Any) -> None:
    seen: list[httpx.Request] = []
    http = client([failure, httpx.Response(201)], seen)
    assert (await http.request("POST", "/contacts", json={}, idempotent=False)).status == 201
    assert len(seen) == 2


async def test_per_call_headers_and_an_error_table_that_reads_headers() -> None:
    seen: list[httpx.Request] = []
    http = client([httpx.Response(403, headers={"x-limit": "0"})], seen)
    with pytest.raises(RateLimited):  # the table read the header; the status alone says 403
        await http.request("GET", "/x", headers={"Idempotency-Key": "k1"})
    assert seen[0].headers["idempotency-key"] == "k1"
    http = client([httpx.Response(200)], seen)
    await http.request("GET", "/y")
    assert "idempotency-key" not in seen[1].headers  # for that call only
