"""Fixtures of the shared HTTP layer's tests: a virtual clock and a Redis server
(:mod:`tests.redis_support`). Every test gets its own key prefix, so concurrent runs never
share a window.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.redis_support import require_redis


class VirtualClock:
    """A monotonic clock that only moves when someone sleeps (waits are instant and
    recorded in ``sleeps``)."""

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
def redis_url() -> str:
    return require_redis()


@pytest.fixture
def key_prefix() -> str:
    """A Redis key prefix no other test (or concurrent run) uses."""
    return f"enginy-test:{uuid.uuid4().hex}"
