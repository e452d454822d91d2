"""Fixtures of the shared HTTP layer's tests: a virtual clock and a Redis server.

Redis tests use the server named by ``ENGINY_TEST_REDIS_URL`` (default: the local one). When it
is unreachable they skip with the reason, unless ``ENGINY_REQUIRE_DATABASES=1`` (CI), where they
fail. Every test gets its own key prefix, so concurrent runs never share a window.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from urllib.parse import urlsplit

import pytest

REDIS_URL = os.environ.get("ENGINY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


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


def require_redis() -> str:
    """``REDIS_URL`` when its server answers; otherwise skip (or fail in CI)."""
    parts = urlsplit(REDIS_URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 2):
            return REDIS_URL
    except OSError:
        message = f"Redis not reachable at {parts.hostname}:{parts.port or 6379}"
        if os.environ.get("ENGINY_REQUIRE_DATABASES") == "1":
            pytest.fail(f"{message} (ENGINY_REQUIRE_DATABASES=1)")
        pytest.skip(f"{message}; set ENGINY_REQUIRE_DATABASES=1 to make this mandatory")


@pytest.fixture
def redis_url() -> str:
    return require_redis()


@pytest.fixture
def key_prefix() -> str:
    """A Redis key prefix no other test (or concurrent run) uses."""
    return f"enginy-test:{uuid.uuid4().hex}"
