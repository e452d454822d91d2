"""The backend's reachability for ``/health``, checked at most once per ``ttl`` (A.12)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from backends.base import Backend, BackendError, Unavailable

__all__ = ["HealthCheck"]

logger = logging.getLogger("adapter.service")


@dataclass(frozen=True, slots=True)
class _Probe:
    at: float
    error: BackendError | None


class HealthCheck:
    """The backend's reachability, checked at most once per ``ttl`` seconds (A.12).

    Concurrent callers while a ping is running all wait for that one ping: a burst of probes
    reaches the CRM once.
    """

    def __init__(
        self, backend: Backend, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._backend = backend
        self._ttl = ttl
        self._clock = clock
        self._last: _Probe | None = None
        self._running: asyncio.Future[_Probe] | None = None

    async def check(self) -> BackendError | None:
        """``None`` when the backend is reachable, else the error that says why not."""
        last = self._last
        if last is not None and self._clock() - last.at < self._ttl:
            return last.error
        if self._running is None:
            self._running = asyncio.ensure_future(self._probe())
            self._running.add_done_callback(self._finished)
        # shield: a caller that goes away must not cancel the ping the others wait for.
        probe = await asyncio.shield(self._running)
        return probe.error

    def _finished(self, future: asyncio.Future[_Probe]) -> None:
        self._running = None
        if not future.cancelled() and future.exception() is None:
            self._last = future.result()

    async def _probe(self) -> _Probe:
        error: BackendError | None = None
        try:
            await self._backend.ping()
        except BackendError as exc:
            error = exc
        except Exception as exc:
            # A driver bug must not turn /health into a 500; the detail goes to the log only.
            logger.error("backend ping raised an unexpected error", exc_info=exc)
            error = Unavailable("the backend check failed unexpectedly; see the server log")
        if error is not None:
            logger.warning("health check: backend unavailable: %s", error)
        return _Probe(at=self._clock(), error=error)
