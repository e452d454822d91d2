"""Helpers of the REST driver's tests: a virtual clock, and a driver built from a manifest."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from adapter.config import Settings, load_settings
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


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "rest"


def preset_settings(name: str, base_url: str, token: str, **environ: str) -> Settings:
    """The configuration of ``examples/rest/<name>.yaml`` for a server at ``base_url``."""
    env = {"CRM_BASE_URL": base_url, "CRM_TOKEN": token, "ENGINY_API_KEY": API_KEY, **environ}
    return load_settings(EXAMPLES / f"{name}.yaml", environ=env)


def preset_driver(
    name: str,
    base_url: str,
    token: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    **overrides: Any,
) -> RestBackend:
    """The preset's driver (not opened); ``overrides`` replace top-level manifest keys."""
    settings = preset_settings(name, base_url, token)
    options = {**settings.backend.options, **overrides}
    return RestBackend(RestOptions.model_validate(options), transport=transport)


#: The key the adapter accepts in preset tests.
API_KEY = "preset-test-key-5f1e"
