"""server.limits in the ASGI layer: requests in flight and the budget of request-body bytes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from adapter.ops.limits import BodyBudget
from backends.base import Entity, ItemResult, MatchKey, NewRecord, StoredRecord
from backends.memory import MemoryBackend
from tests.conftest import error_body, make_settings, serve_app

pytestmark = pytest.mark.anyio


class Gate(MemoryBackend):
    """Writes and lookups wait until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.entered = 0

    async def create_records(
        self, entity: Entity, records: Sequence[NewRecord]
    ) -> list[ItemResult]:
        self.entered += 1
        await self.release.wait()
        return await super().create_records(entity, records)

    async def find_records(
        self, entity: Entity, key: MatchKey, values: Sequence[str]
    ) -> dict[str, StoredRecord]:
        self.entered += 1
        await self.release.wait()
        return await super().find_records(entity, key, values)


def body_of(size: int) -> bytes:
    """A create body of about ``size`` bytes."""
    pad = "x" * max(0, size - 60)
    return ('{"contacts": [{"externalId": "a", "note": "' + pad + '"}]}').encode()


async def until(condition: Any, timeout: float = 5.0) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await asyncio.sleep(0.01)


# -- the budget -----------------------------------------------------------------------------


async def test_budget_grants_in_arrival_order_and_gives_back() -> None:
    budget = BodyBudget(100)
    assert await budget.acquire(60, timeout=0)
    order: list[str] = []

    async def take(name: str, size: int) -> None:
        assert await budget.acquire(size, timeout=5)
        order.append(name)

    big = asyncio.create_task(take("big", 80))
    await asyncio.sleep(0.01)
    small = asyncio.create_task(take("small", 10))  # fits now, but waits behind "big"
    await asyncio.sleep(0.05)
    assert order == [] and budget.waiting == 2
    budget.release(60)
    await asyncio.gather(big, small)
    assert order == ["big", "small"] and budget.free == 10


async def test_budget_times_out_without_taking_anything() -> None:
    budget = BodyBudget(100)
    assert await budget.acquire(90, timeout=0)
    assert not await budget.acquire(20, timeout=0.05)
    assert budget.free == 10 and budget.waiting == 0
    budget.release(90)
    assert budget.free == 100


async def test_a_body_larger_than_the_budget_gets_all_of_it_once_free() -> None:
    budget = BodyBudget(100)
    assert budget.grant_size(500) == 100
    assert await budget.acquire(500, timeout=0)
    assert budget.free == 0
    budget.release(budget.grant_size(500))
    assert budget.free == 100


async def test_a_cancelled_waiter_does_not_block_the_queue() -> None:
    budget = BodyBudget(100)
    assert await budget.acquire(100, timeout=0)
    stuck = asyncio.create_task(budget.acquire(100, timeout=10))
    await asyncio.sleep(0.01)
    later = asyncio.create_task(budget.acquire(10, timeout=10))
    await asyncio.sleep(0.01)
    stuck.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stuck
    budget.release(50)
    assert await later
    assert budget.free == 40


# -- through the app ------------------------------------------------------------------------


async def test_bodies_beyond_the_budget_wait_then_get_503_with_retry_after(
    access_lines: list[logging.LogRecord],
) -> None:
    backend = Gate()
    settings = make_settings(
        server={"limits": {"max_body_bytes_in_flight": 5000, "body_wait_seconds": 0.2}}
    )
    headers = {"content-type": "application/json"}
    async with serve_app(settings, backend) as client:
        first = asyncio.create_task(
            client.post("/contacts", content=body_of(4000), headers=headers)
        )
        await until(lambda: backend.entered == 1)
        # 4,000 bytes are held until the first answer is sent: 2,000 more do not fit.
        with anyio.fail_after(5):
            refused = await client.post("/contacts", content=body_of(2000), headers=headers)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "2"
        assert error_body(refused)["error"] == "overloaded"
        # One that fits in what is left is admitted meanwhile.
        small = asyncio.create_task(
            client.post("/contacts/sync", content=body_of(500), headers=headers)
        )
        await until(lambda: backend.entered == 2)
        backend.release.set()
        assert (await first).status_code == 200
        assert (await small).status_code == 200
        again = await client.post("/contacts", content=body_of(2000), headers=headers)
        assert again.status_code == 200
    statuses = {r.access["status"]: r.access for r in access_lines}  # type: ignore[attr-defined]
    assert statuses[503]["route"] == "overloaded"


async def test_a_waiting_body_is_served_when_room_is_made_in_time() -> None:
    backend = Gate()
    settings = make_settings(
        server={"limits": {"max_body_bytes_in_flight": 5000, "body_wait_seconds": 5}}
    )
    headers = {"content-type": "application/json"}
    async with serve_app(settings, backend) as client:
        first = asyncio.create_task(
            client.post("/contacts", content=body_of(4000), headers=headers)
        )
        await until(lambda: backend.entered == 1)
        second = asyncio.create_task(
            client.post("/contacts", content=body_of(3000), headers=headers)
        )
        await asyncio.sleep(0.1)
        assert backend.entered == 1  # the second waits for room, unread
        backend.release.set()
        assert (await first).status_code == 200
        assert (await second).status_code == 200


async def test_requests_beyond_the_in_flight_cap_get_503_overloaded() -> None:
    backend = Gate()
    settings = make_settings(server={"limits": {"max_requests_in_flight": 2}})
    async with serve_app(settings, backend) as client:
        busy = [
            asyncio.create_task(
                client.post("/contacts/sync", json={"contacts": [{"externalId": str(i)}]})
            )
            for i in range(2)
        ]
        await until(lambda: backend.entered == 2)
        # Keyless requests are refused too: the cap is outside the key check.
        for key in ("nope", None):
            headers = {"X-API-Key": key} if key else {}
            with anyio.fail_after(5):
                extra = await client.get("/health", headers=headers)
            assert extra.status_code == 503
            assert extra.headers["retry-after"] == "2"
            assert error_body(extra)["error"] == "overloaded"
        backend.release.set()
        assert [(await t).status_code for t in busy] == [200, 200]
        assert (await client.get("/health")).status_code == 200


async def test_a_body_that_stops_arriving_is_a_408() -> None:
    settings = make_settings(server={"limits": {"body_timeout_seconds": 0.2}})

    async def stalled() -> Any:
        yield b'{"contacts": ['
        await asyncio.sleep(5)
        yield b"]}"

    async with serve_app(settings) as client:
        with anyio.fail_after(5):
            response = await client.post(
                "/contacts", content=stalled(), headers={"content-type": "application/json"}
            )
    assert response.status_code == 408
    assert error_body(response)["error"] == "request_timeout"
    assert response.headers["connection"] == "close"


def test_limits_are_configurable_and_validated() -> None:
    from pydantic import ValidationError

    settings = make_settings(server={"limits": {"max_connections": 5}})
    assert settings.server.limits.max_connections == 5
    assert settings.server.limits.header_timeout_seconds == 10
    assert make_settings(server={"limits": None}).server.limits.max_requests_in_flight == 128
    with pytest.raises(ValidationError):
        make_settings(server={"limits": {"max_conections": 5}})
    with pytest.raises(ValidationError):
        make_settings(server={"limits": {"header_timeout_seconds": 0}})
