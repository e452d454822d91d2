"""The deliverer: a background task that hands queued writes to the backend.

Each round claims the heads of the queue (:meth:`OutboxStore.claim`: at most one item per
record, oldest first) and makes their driver calls: record updates in one
``update_records`` call per entity, associations in one ``create_associations`` call,
activities and task updates one by one, ``outbox.concurrency`` at a time. Each item is then

* **delivered**: deleted from the queue;
* **retried later**: the call failed for a reason that can pass (a retryable
  :class:`~backends.base.BackendError`: unavailable, rate-limited, credentials refused): it
  waits ``outbox.backoff`` (tenacity's exponential wait, with jitter; at least the
  ``Retry-After`` of a rate limit) and stays at the head of its record's writes;
* **a dead letter**: the backend refused it for good (an unknown record, a rejected value),
  or it was still undelivered ``outbox.max_age_seconds`` after it was queued. Dead letters
  are kept, with the reason, until an operator retries or drops them
  (``enginy-adapter outbox``); later writes of the same record are delivered meanwhile.

While the backend is down the deliverer does not try the queue item by item: it checks the
backend (``ping``) every ``outbox.probe_seconds``, and once it answers, every item waiting on
the outage is due at once. A rate limit pauses deliveries until it passes. Meanwhile the
request path queues new writes without trying the backend (:meth:`Deliverer.known_failure`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

from tenacity import AsyncRetrying, RetryCallState, wait_exponential, wait_random
from tenacity.wait import wait_base

from adapter.config import OutboxConfig
from adapter.outbox.events import NoEvents, OutboxEvents
from adapter.outbox.items import (
    OutboxItem,
    WriteKind,
    decode_activity,
    decode_association,
    decode_record_update,
    decode_task_update,
)
from adapter.outbox.rows import Claim, OutboxStats
from adapter.outbox.store import OutboxStore, OutboxUnavailable
from backends.base import Backend, BackendError, Entity, ItemResult, RateLimited, Unavailable

__all__ = ["EXPIRED", "Deliverer"]

logger = logging.getLogger("adapter.outbox")

#: How often the queue's statistics are read for the gauges, at most.
_STATS_SECONDS = 2.0
#: How often a process that does not hold an SQLite queue's delivery lock tries to take it.
_LOCK_RETRY_SECONDS = 5.0
#: The dead-letter code of an item that was undelivered for ``max_age_seconds``.
EXPIRED = "expired"


def _backoff(config: OutboxConfig) -> Callable[[int], float]:
    b = config.backoff
    wait: wait_base = wait_exponential(multiplier=b.first, exp_base=b.factor, max=b.cap)
    if b.jitter:
        wait = wait + wait_random(0, b.jitter)

    def delay(attempt: int) -> float:
        state = RetryCallState(AsyncRetrying(), None, (), {})
        state.attempt_number = attempt
        return float(wait(state))

    return delay


class Deliverer:
    """Delivers the queue to ``backend`` until cancelled (:meth:`run`).

    ``ready`` says whether the backend has opened (deliveries wait for it). ``events``
    receives the counts (settable: the composition root wires the metrics after building).
    ``counts`` holds this process's deliveries and dead letters since start, by kind.
    """

    def __init__(
        self,
        store: OutboxStore,
        backend: Backend,
        config: OutboxConfig,
        *,
        ready: Callable[[], bool] = lambda: True,
        events: OutboxEvents | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.backend = backend
        self.config = config
        self.ready = ready
        self.events: OutboxEvents = events or NoEvents()
        self.clock = clock
        self.delay = _backoff(config)
        self.counts: Counter[str] = Counter()
        #: The backend failed transiently; deliveries wait for a successful probe.
        self.down = False
        self._back = False
        self._paused_until = 0.0
        self._last_failure: Unavailable | None = None
        self._next_probe = 0.0
        self._limited = 0  # rate limits met since the last delivery
        self._wake = asyncio.Event()
        self._stats_at = 0.0

    # -- hooks from the request path (adapter.outbox.writes.DeliveryHooks) ------------------------

    def queued(self, kind: str, count: int) -> None:
        self.events.enqueued(kind, count)
        if self.known_failure() is None:
            self._wake.set()  # queued behind a record's earlier writes: deliverable soon

    def backend_failed(self, error: Unavailable) -> None:
        self._last_failure = error
        if isinstance(error, RateLimited):
            self._pause(error)
        else:
            self.down = True

    def backend_answered(self) -> None:
        if self.down:
            self._back = True
            self._wake.set()

    def known_failure(self) -> Unavailable | None:
        """The failure that made the backend down or paused, while it is; else ``None``."""
        if self._last_failure is not None and (self.down or self.clock() < self._paused_until):
            return self._last_failure
        return None

    # -- the loop -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver until cancelled. Never raises otherwise: a failure of the queue's own
        database is logged and retried after ``poll_seconds``."""
        failing = False
        while True:
            try:
                await self.step()
                if failing:
                    logger.info("outbox: the queue's database answers again")
                failing = False
            except asyncio.CancelledError:
                raise
            except OutboxUnavailable as exc:
                if not failing:
                    logger.error("outbox: %s; deliveries wait", exc.message)
                failing = True
                await self._idle(self.config.poll_seconds)
            except Exception:
                logger.exception("outbox: unexpected error in the deliverer; continuing")
                await self._idle(self.config.poll_seconds)

    async def step(self) -> bool:
        """One turn of the loop: deliver a round if possible, else wait a little. Returns
        whether a round was delivered (tests drive the deliverer with it)."""
        await self.refresh_stats()
        if not self.ready():
            await self._idle(self.config.poll_seconds)
            return False
        # Every process probes a backend it found down, delivering or not: its request path
        # queues without trying until the backend is known to be back.
        if self.down and not await self._recovered():
            return False
        if not self.store.try_acquire_delivery():
            await self._idle(min(_LOCK_RETRY_SECONDS, self.config.probe_seconds))
            return False
        now = self.clock()
        if now < self._paused_until:
            await self._idle(min(self._paused_until - now, self.config.poll_seconds))
            return False
        if await self.deliver_round():
            return True
        await self._idle(self.config.poll_seconds)
        return False

    async def refresh_stats(self, *, force: bool = False) -> OutboxStats | None:
        now = time.monotonic()
        if not force and now - self._stats_at < _STATS_SECONDS:
            return None
        self._stats_at = now
        stats = await self.store.stats()
        self.events.stats(stats)
        return stats

    async def _idle(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=max(seconds, 0.0))
        self._wake.clear()

    async def _recovered(self) -> bool:
        """While down: is the backend back (a probe at most every ``probe_seconds``, or a
        direct write that went through)? When it is, the items waiting on the outage are made
        due now. When it is not, waits until the next probe is due (or a wake-up)."""
        if not self._back:
            wait = self._next_probe - time.monotonic()
            if wait > 0:
                await self._idle(wait)
                return False
            self._next_probe = time.monotonic() + self.config.probe_seconds
            try:
                await self.backend.ping()
            except Exception as exc:
                if not isinstance(exc, BackendError):  # a driver bug: say so, keep probing
                    logger.error("outbox: the backend's ping raised unexpectedly", exc_info=exc)
                await self._idle(self.config.probe_seconds)
                return False
        self._back = False
        self.down = False
        released = await self.store.release_backoff(keep_codes=(RateLimited.code,))
        logger.info("outbox: the backend answers again; %d queued write(s) due now", released)
        return True

    def _pause(self, error: Unavailable) -> None:
        # A limit that gives no Retry-After (HubSpot's daily quota) is waited out with the
        # backoff, growing while it lasts: a limited CRM is asked less and less often.
        self._limited += 1
        wait = error.retry_after if error.retry_after is not None else self.delay(self._limited)
        self._paused_until = max(self._paused_until, self.clock() + wait)

    # -- a round ----------------------------------------------------------------------------------

    async def deliver_round(self) -> bool:
        """Claim the heads of the queue and deliver them. Returns whether any were claimed."""
        async with self.store.claim(self.config.batch_size) as claim:
            if not claim.items:
                return False
            await self._deliver(claim)
        await self.refresh_stats(force=True)
        return True

    async def _deliver(self, claim: Claim) -> None:
        updates: dict[Entity, list[OutboxItem]] = {}
        associations: list[OutboxItem] = []
        singles: list[OutboxItem] = []
        for item in claim.items:
            if item.kind in (WriteKind.CONTACTS_UPDATE, WriteKind.COMPANIES_UPDATE):
                entity, _ = decode_record_update(item.payload)
                updates.setdefault(entity, []).append(item)
            elif item.kind == WriteKind.ASSOCIATIONS_CREATE:
                associations.append(item)
            else:
                singles.append(item)

        for entity, items in updates.items():
            await self._batch(claim, items, self._update_records(entity, items))
        if associations:
            await self._batch(claim, associations, self._associations(associations))
        if singles:
            gate = asyncio.Semaphore(self.config.concurrency)

            async def one(item: OutboxItem) -> None:
                async with gate:
                    await self._single(claim, item)

            await asyncio.gather(*(one(item) for item in singles))

    def _update_records(
        self, entity: Entity, items: Sequence[OutboxItem]
    ) -> Callable[[], Awaitable[list[ItemResult]]]:
        updates = [decode_record_update(item.payload)[1] for item in items]
        return lambda: self.backend.update_records(entity, updates)

    def _associations(
        self, items: Sequence[OutboxItem]
    ) -> Callable[[], Awaitable[list[ItemResult]]]:
        pairs = [decode_association(item.payload) for item in items]
        return lambda: self.backend.create_associations(pairs)

    def _stopped(self) -> bool:
        # After a transient failure the rest of the round is left as it was (not attempted).
        return self.down or self.clock() < self._paused_until

    async def _batch(
        self,
        claim: Claim,
        items: Sequence[OutboxItem],
        call: Callable[[], Awaitable[list[ItemResult]]],
    ) -> None:
        if self._stopped():
            return
        try:
            results = await call()
        except BackendError as exc:
            self._failed(claim, items, exc)
            return
        except Exception as exc:
            self._crashed(claim, items, exc)
            return
        for item, result in zip(items, results, strict=True):
            if result.error is None:
                self._done(claim, item)
            else:
                self._failed(claim, [item], result.error)

    async def _single(self, claim: Claim, item: OutboxItem) -> None:
        if self._stopped():
            return
        try:
            detail = await self._call_single(item)
        except BackendError as exc:
            self._failed(claim, [item], exc)
            return
        except Exception as exc:
            self._crashed(claim, [item], exc)
            return
        if detail:
            logger.info("outbox: delivered %s %s: %s", item.kind, item.receipt, detail)
        self._done(claim, item)

    async def _call_single(self, item: OutboxItem) -> str:
        """Make the driver call of an activity or task item; returns a note for the log."""
        if item.kind == WriteKind.ACTIVITIES_CREATE:
            activity = await self.backend.create_activity(decode_activity(item.payload))
            return f"activity id {activity.id}"
        task_id, changes, skip_unknown = decode_task_update(item.payload)
        if skip_unknown:
            if not await self.backend.update_tasks([task_id], changes):
                # As PATCH /tasks/batch answers an unknown id: skipped, not a failure.
                return f"task {task_id} does not exist; skipped as PATCH /tasks/batch does"
            return ""
        await self.backend.update_task(task_id, changes)
        return ""

    # -- outcomes ---------------------------------------------------------------------------------

    def _done(self, claim: Claim, item: OutboxItem) -> None:
        self._limited = 0
        claim.done(item)
        self.counts[f"delivered:{item.kind}"] += 1
        self.events.delivered(item.kind, 1)

    def _failed(self, claim: Claim, items: Sequence[OutboxItem], error: BackendError) -> None:
        now = self.clock()
        if not error.retryable:
            for item in items:
                self._dead(claim, item, error.code, error.message, now)
            return
        if isinstance(error, Unavailable):
            self.backend_failed(error)
        else:
            self.down = True  # credentials refused: the probe tells when they work again
        logger.warning(
            "outbox: %d %s item(s) not delivered (%s: %s); retrying later",
            len(items),
            items[0].kind,
            error.code,
            error.message,
        )
        retry_after = getattr(error, "retry_after", None) or 0.0
        max_age = self.config.max_age_seconds
        for item in items:
            if max_age is not None and now - item.since >= max_age:
                message = (
                    f"undelivered {int(now - item.since)}s after it was queued "
                    f"({item.attempts + 1} attempts); last error {error.code}: {error.message}"
                )
                self._dead(claim, item, EXPIRED, message, now)
                continue
            at = now + max(self.delay(item.attempts + 1), retry_after)
            claim.retry(item, error.code, error.message, at, now)
            self.events.attempt_failed(item.kind, error.code)

    def _crashed(self, claim: Claim, items: Sequence[OutboxItem], exc: Exception) -> None:
        # A driver bug: retrying the same call would most likely fail the same way, and an
        # item retried forever blocks its record's later writes. It becomes a dead letter an
        # operator can retry once the driver is fixed; the stack goes to the log.
        logger.error("outbox: the driver raised unexpectedly on %s", items[0].kind, exc_info=exc)
        message = f"the driver raised {type(exc).__name__}; see the server log"
        for item in items:
            self._dead(claim, item, "internal_error", message, self.clock())

    def _dead(self, claim: Claim, item: OutboxItem, code: str, message: str, now: float) -> None:
        claim.give_up(item, code, message, now)
        self.counts[f"dead:{item.kind}"] += 1
        self.events.dead_letter(item.kind, code)
        logger.warning(
            "outbox: dead letter %d (%s, %s): %s: %s", item.id, item.kind, item.key, code, message
        )
