"""The outbox as the app runs it: the store, the deliverer and the writes, together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from adapter.config import OutboxConfig
from adapter.outbox.delivery import Deliverer
from adapter.outbox.events import OutboxEvents
from adapter.outbox.items import OutboxItem, State
from adapter.outbox.rows import OutboxStats
from adapter.outbox.store import OutboxStore
from adapter.outbox.writes import QueueingWrites
from backends.base import Backend

__all__ = ["Outbox", "OutboxStatus", "format_duration"]

logger = logging.getLogger("adapter.outbox")


def format_duration(seconds: float) -> str:
    """An age for people: ``42s``, ``3m 05s``, ``2h 07m``, ``3d 04h``."""
    total = int(max(seconds, 0))
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m {total % 60:02d}s"
    if total < 86400:
        return f"{total // 3600}h {total % 3600 // 60:02d}m"
    return f"{total // 86400}d {total % 86400 // 3600:02d}h"


@dataclass(frozen=True, slots=True)
class OutboxStatus:
    """What the dashboard shows of the outbox."""

    where: str
    stats: OutboxStats
    now: float
    #: Deliveries and dead letters made by this process since it started.
    delivered_here: int
    dead_here: int
    #: Whether this process is the one delivering (an SQLite queue has one deliverer).
    delivering: bool
    backend_down: bool
    oldest: list[OutboxItem]
    dead: list[OutboxItem]

    @property
    def oldest_age(self) -> float | None:
        at = self.stats.oldest_pending_at
        return None if at is None else max(0.0, self.now - at)


class Outbox:
    """The queue (:class:`OutboxStore`), its :class:`Deliverer` and the
    :class:`QueueingWrites` the service uses, for one backend.

    ``ready`` says whether the backend has opened (the start-up gate).
    """

    def __init__(
        self,
        config: OutboxConfig,
        backend: Backend,
        *,
        ready: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.clock = clock
        self.store = OutboxStore(config, clock)
        self.deliverer = Deliverer(self.store, backend, config, ready=ready, clock=clock)
        self.writes = QueueingWrites(backend, self.store, self.deliverer, ready=ready)
        self._task: asyncio.Task[None] | None = None

    @property
    def events(self) -> OutboxEvents:
        return self.deliverer.events

    @events.setter
    def events(self, events: OutboxEvents) -> None:
        self.deliverer.events = events

    async def start(self) -> None:
        """Open the queue (creating its table when missing) and start delivering in the
        background. Raises :class:`~adapter.outbox.store.OutboxUnavailable` when the queue
        cannot be opened."""
        await self.store.open()
        try:
            stats = await self.store.stats()
        except BaseException:
            await self.store.close()
            raise
        logger.info(
            "outbox: queue at %s (%d pending, %d dead letters)",
            self.store.where,
            stats.pending,
            stats.dead,
        )
        self.events.stats(stats)
        self._task = asyncio.create_task(self.deliverer.run(), name="enginy-outbox-deliverer")

    async def stop(self) -> None:
        """Stop delivering and close the queue. A delivery interrupted here is made again at
        the next start: every queued call is idempotent."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.store.close()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """:meth:`start`, then :meth:`stop` on exit."""
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def status(self, *, items: int = 20) -> OutboxStatus:
        """The queue's state now, with its oldest pending items and its dead letters."""
        stats = await self.store.stats()
        counts = self.deliverer.counts
        return OutboxStatus(
            where=self.store.where,
            stats=stats,
            now=self.clock(),
            delivered_here=sum(n for k, n in counts.items() if k.startswith("delivered:")),
            dead_here=sum(n for k, n in counts.items() if k.startswith("dead:")),
            delivering=self.store.holds_delivery,
            backend_down=self.deliverer.down,
            oldest=await self.store.list_items(State.PENDING, limit=items) if items else [],
            dead=await self.store.list_items(State.DEAD, limit=items) if items else [],
        )
