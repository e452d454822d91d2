"""Fixtures of the HubSpot driver tests: a virtual clock, the fake, an opened driver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from adapter.app import create_app
from adapter.config import Settings
from backends.hubspot import HubSpotBackend, HubSpotOptions
from backends.testing.hubspot import FakeHubSpot

TOKEN = "pat-na1-0123456789-secret-token"
#: The adapter's API key in tests that go through the HTTP front.
KEY = "test-key-hubspot"


class VirtualClock:
    """A monotonic clock that only moves when someone sleeps: retries and limiter waits are
    instant, and their lengths are recorded in ``sleeps``."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def fake(clock: VirtualClock) -> FakeHubSpot:
    fake = FakeHubSpot(token=TOKEN, clock=clock)
    fake.add_owner("Ada", "Lovelace", "ada@example.com")
    return fake


MakeBackend = Callable[..., HubSpotBackend]


@pytest.fixture
def make_backend(fake: FakeHubSpot, clock: VirtualClock) -> MakeBackend:
    """Build (not open) a driver on the fake; keyword arguments become options."""

    def make(**options: Any) -> HubSpotBackend:
        opts = HubSpotOptions(token=options.pop("token", TOKEN), **options)
        return HubSpotBackend(opts, transport=fake.transport(), sleep=clock.sleep, clock=clock)

    return make


@pytest.fixture
async def backend(make_backend: MakeBackend) -> AsyncIterator[HubSpotBackend]:
    driver = make_backend(unknown_properties="create")
    await driver.open()
    try:
        yield driver
    finally:
        await driver.close()


@asynccontextmanager
async def serve(backend: HubSpotBackend, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The adapter's HTTP front on ``backend`` (``settings``: more of the YAML, such as
    ``matching``), with a client that sends the API key."""
    app = create_app(Settings.model_validate({"auth": {"keys": [KEY]}, **settings}), backend)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app),
            base_url="http://adapter",
            headers={"X-API-Key": KEY},
        ) as client,
    ):
        yield client
