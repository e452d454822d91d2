"""Helpers of the REST driver's tests: a virtual clock, and a driver built from a manifest."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from backends.rest import RestBackend, RestOptions


class VirtualClock:
    """A monotonic clock that only moves when someone sleeps (waits are instant and recorded)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


def make_driver(
    options: dict[str, Any], transport: httpx.AsyncBaseTransport, clock: VirtualClock | None = None
) -> RestBackend:
    """A driver (not opened) on ``transport``, with instant waits."""
    clock = clock or VirtualClock()
    return RestBackend(
        RestOptions.model_validate(options),
        transport=transport,
        sleep=clock.sleep,
        clock=clock,
        jitter=lambda: 0.0,
    )
