"""The HubSpot client: the shared HTTP layer (:mod:`backends.http`) set up for HubSpot.

What is HubSpot's here, and nothing else: the bearer token, the path table (:mod:`.paths`),
the two rate budgets (``general``, 100 or 190 calls per 10 s per app; ``search``, 5 per second
per account, on top of ``general``), the ``X-HubSpot-RateLimit-*`` headers, the retry policy's
quirks and the error table (:mod:`.errors`). Retries, the time budget, the limiter (per process,
or in Redis with ``rate_limit.redis_url``) and secret-safe logging live in :mod:`backends.http`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

import httpx

from backends.http import (
    Budget,
    HttpClient,
    HttpResponse,
    Limiter,
    RateHeader,
    build_limiter,
)
from backends.http.limiter import Clock, Sleep
from backends.hubspot.errors import HubSpotRetryPolicy, describe, error_for
from backends.hubspot.options import HubSpotOptions
from backends.hubspot.paths import Paths

__all__ = ["GENERAL", "SEARCH", "HubSpotClient", "HubSpotResponse", "Sleep"]

log = logging.getLogger("backends.hubspot")

#: Budget names (also the Redis key suffixes).
GENERAL, SEARCH = "general", "search"

#: HubSpot's answer type (the shared layer's).
HubSpotResponse = HttpResponse


class HubSpotClient:
    """Thin async client for the HubSpot REST API (one per driver instance)."""

    def __init__(
        self,
        options: HubSpotOptions,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        jitter: Callable[[], float] = random.random,
        limiter: Limiter | None = None,
    ) -> None:
        self.options = options
        self.paths = Paths(options.api_version)
        token = options.token.get_secret_value()
        limits = options.rate_limit
        self.limiter = limiter or build_limiter(
            limits,
            [
                Budget(GENERAL, limits.requests_per_10s, 10.0),
                Budget(SEARCH, limits.searches_per_second, 1.0),
            ],
            driver="hubspot",
            credential=token,
            clock=clock,
            sleep=sleep,
        )
        self.http = HttpClient(
            base_url=options.base_url,
            limiter=self.limiter,
            errors=error_for,
            policy=HubSpotRetryPolicy(),
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": "enginy-crm-adapter",
            },
            secrets=[token],
            timeout=httpx.Timeout(
                connect=options.connect_timeout,
                read=options.read_timeout,
                write=options.write_timeout,
                pool=options.pool_timeout,
            ),
            max_connections=options.max_connections,
            max_attempts=options.max_attempts,
            budget_seconds=options.budget_seconds,
            # Search answers carry none of these (HubSpot: "missing means unknown").
            rate_headers=[
                RateHeader("X-HubSpot-RateLimit-Remaining", GENERAL, "X-HubSpot-RateLimit-Max")
            ],
            describe=describe,
            transport=transport,
            sleep=sleep,
            clock=clock,
            jitter=jitter,
            logger=log,
            name="HubSpot",
        )

    @property
    def attempts(self) -> int:
        """HTTP attempts sent so far (for logs and the bench)."""
        return self.http.attempts

    @property
    def on_retry(self) -> Callable[[str], None] | None:
        return self.http.on_retry

    @on_retry.setter
    def on_retry(self, hook: Callable[[str], None] | None) -> None:
        self.http.on_retry = hook

    async def aclose(self) -> None:
        await self.http.aclose()

    @contextlib.contextmanager
    def budget(self, seconds: float | None = None) -> Iterator[None]:
        """Run the enclosed calls under one deadline (nested budgets keep the outer one)."""
        with self.http.budget(seconds):
            yield

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        search: bool = False,
        accept: Collection[int] = (),
    ) -> HttpResponse:
        """Send one call; ``search`` calls also take a slot of the search budget.

        Returns any 2xx (HubSpot swaps 200/201 in practice) or a status in ``accept``; raises
        the mapped :class:`backends.base.BackendError` otherwise.
        """
        return await self.http.request(
            method,
            path,
            json=json,
            params=params,
            budgets=(GENERAL, SEARCH) if search else (GENERAL,),
            accept=accept,
        )
