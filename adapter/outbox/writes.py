"""The writes Enginy does not wait on, made now or queued: what the service calls.

:class:`DirectWrites` calls the driver (the outbox off). :class:`QueueingWrites` (the outbox
on) decides per record:

1. a record with queued writes gets the new write queued behind them, even when the backend is
   up (a later update must never overtake an earlier one);
2. the others go to the driver; if that call fails for a reason that can pass
   (:class:`~backends.base.Unavailable`, which :class:`~backends.base.RateLimited` is: the
   backend unreachable, a timeout, a 429 or an upstream 503 after the driver's own retries),
   they are queued too;
3. while the deliverer knows the backend is down (until its probe sees it answer again) or
   rate-limited (until the limit's ``Retry-After``), and before the backend has opened (the
   service started during an outage), writes are queued without trying: a down CRM is not
   asked again for every request, a rate-limited one is not pushed further over its limit,
   and Enginy is answered at once.

A queued write is answered with :class:`Queued` (the service renders the contract's success
shape with ``"queued": true``). Per-record failures (an unknown id, a rejected value) are
answered as before: they are not transient, a queue would not help. Order is kept between
writes the adapter *answered* one after the other: two requests for the same record in flight
at the same moment have no order to keep, with or without the outbox.

If the queue itself cannot be written, the request fails with the backend's own error (503):
nothing is accepted that is not stored.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

from adapter.outbox.items import (
    Write,
    encode_activity,
    encode_association,
    encode_record_update,
    encode_task_update,
    receipt,
)
from adapter.outbox.store import OutboxStore, OutboxUnavailable
from backends.base import (
    Activity,
    AssociationPair,
    Backend,
    Entity,
    ItemResult,
    NewActivity,
    RecordUpdate,
    Task,
    TaskChanges,
    Unavailable,
)

__all__ = ["DirectWrites", "Queued", "QueueingWrites", "Writes"]

logger = logging.getLogger("adapter.outbox")

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Queued:
    """A write accepted into the outbox: it will be delivered, in order, once the backend
    takes it. ``receipt`` names the queued item (``queued-<uid>``)."""

    receipt: str


class Writes(Protocol):
    """The driver writes the outbox can take, as the service makes them."""

    async def update_records(
        self, entity: Entity, updates: Sequence[RecordUpdate]
    ) -> list[ItemResult | Queued]: ...

    async def create_associations(
        self, pairs: Sequence[AssociationPair]
    ) -> list[ItemResult | Queued]: ...

    async def create_activity(self, activity: NewActivity) -> Activity | Queued: ...

    async def update_task(self, task_id: str, changes: TaskChanges) -> Task | Queued: ...

    async def update_tasks(
        self, ids: Sequence[str], changes: TaskChanges
    ) -> tuple[list[Task], dict[str, Queued]]:
        """The tasks updated now (unknown ids skipped) and the ids queued."""
        ...


class DirectWrites:
    """Every write straight to the driver (the outbox off)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    async def update_records(
        self, entity: Entity, updates: Sequence[RecordUpdate]
    ) -> list[ItemResult | Queued]:
        return list(await self.backend.update_records(entity, updates))

    async def create_associations(
        self, pairs: Sequence[AssociationPair]
    ) -> list[ItemResult | Queued]:
        return list(await self.backend.create_associations(pairs))

    async def create_activity(self, activity: NewActivity) -> Activity | Queued:
        return await self.backend.create_activity(activity)

    async def update_task(self, task_id: str, changes: TaskChanges) -> Task | Queued:
        return await self.backend.update_task(task_id, changes)

    async def update_tasks(
        self, ids: Sequence[str], changes: TaskChanges
    ) -> tuple[list[Task], dict[str, Queued]]:
        return await self.backend.update_tasks(ids, changes), {}


class DeliveryHooks(Protocol):
    """What the request path tells the deliverer (:class:`adapter.outbox.delivery.Deliverer`)."""

    def queued(self, kind: str, count: int) -> None:
        """Writes were queued (wake up: some may be deliverable now)."""

    def backend_failed(self, error: Unavailable) -> None:
        """A direct call found the backend unavailable."""

    def backend_answered(self) -> None:
        """A direct call went through: the backend is up."""

    def known_failure(self) -> Unavailable | None:
        """Why the backend cannot take writes now (down, or rate-limited), if it is known."""


class QueueingWrites:
    """Direct when possible, queued when the backend cannot take the write now (module doc).

    ``ready`` says whether the backend has opened (the start-up gate).
    """

    def __init__(
        self,
        backend: Backend,
        store: OutboxStore,
        hooks: DeliveryHooks,
        *,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self.backend = backend
        self.store = store
        self.hooks = hooks
        self.ready = ready

    async def update_records(
        self, entity: Entity, updates: Sequence[RecordUpdate]
    ) -> list[ItemResult | Queued]:
        writes = [encode_record_update(entity, u) for u in updates]

        async def direct(chosen: list[int]) -> list[ItemResult]:
            return await self.backend.update_records(entity, [updates[i] for i in chosen])

        return await self._batch(writes, direct)

    async def create_associations(
        self, pairs: Sequence[AssociationPair]
    ) -> list[ItemResult | Queued]:
        writes = [encode_association(p) for p in pairs]

        async def direct(chosen: list[int]) -> list[ItemResult]:
            return await self.backend.create_associations([pairs[i] for i in chosen])

        return await self._batch(writes, direct)

    async def create_activity(self, activity: NewActivity) -> Activity | Queued:
        async def direct(chosen: list[int]) -> list[Activity]:
            return [await self.backend.create_activity(activity)]

        def queued_form() -> Write:
            # A delivery replayed after a crash must find the activity the first one stored:
            # an activity without Enginy's messageId gets a key of its own for the queue.
            key = activity.idempotency_key or f"outbox:{uuid.uuid4().hex}"
            return encode_activity(replace(activity, idempotency_key=key))

        (outcome,) = await self._batch([queued_form()], direct)
        return outcome

    async def update_task(self, task_id: str, changes: TaskChanges) -> Task | Queued:
        async def direct(chosen: list[int]) -> list[Task]:
            return [await self.backend.update_task(task_id, changes)]

        (outcome,) = await self._batch(
            [encode_task_update(task_id, changes, skip_unknown=False)], direct
        )
        return outcome

    async def update_tasks(
        self, ids: Sequence[str], changes: TaskChanges
    ) -> tuple[list[Task], dict[str, Queued]]:
        unique = list(dict.fromkeys(ids))
        writes = [encode_task_update(i, changes, skip_unknown=True) for i in unique]
        updated: list[Task] = []

        async def direct(chosen: list[int]) -> list[str]:
            # update_tasks skips unknown ids: its answer is not one per input.
            sent = [unique[i] for i in chosen]
            updated.extend(await self.backend.update_tasks(sent, changes))
            return sent

        outcomes = await self._batch(writes, direct)
        queued = {i: o for i, o in zip(unique, outcomes, strict=True) if isinstance(o, Queued)}
        return updated, queued

    # -- the decision -----------------------------------------------------------------------------

    async def _batch(
        self, writes: list[Write], direct: Callable[[list[int]], Awaitable[list[R]]]
    ) -> list[R | Queued]:
        """Queue the writes that must wait, call ``direct`` with the indexes of the others
        (its answer is one result per index), queue those too if it fails transiently."""
        outcomes: dict[int, R | Queued] = {}
        reason = "queued behind earlier writes of the same record"
        known = self.hooks.known_failure()
        if not self.ready():
            wait = list(range(len(writes)))
            reason = "the backend is not open yet"
            failure: Unavailable | None = Unavailable(reason)
        elif known is not None:
            wait = list(range(len(writes)))
            reason = f"{known.code}: {known.message}"
            failure = known
        else:
            behind = await self.store.pending_keys([w.key for w in writes])
            wait = [i for i, w in enumerate(writes) if w.key in behind]
            go = [i for i, w in enumerate(writes) if w.key not in behind]
            failure = None
            if go:
                try:
                    results = await direct(go)
                except OutboxUnavailable:
                    raise
                except Unavailable as exc:
                    failure = exc
                    self.hooks.backend_failed(exc)
                    wait = sorted(wait + go)
                    reason = f"{exc.code}: {exc.message}"
                else:
                    self.hooks.backend_answered()
                    for index, result in zip(go, results, strict=True):
                        outcomes[index] = result
        if wait:
            try:
                uids = await self.store.enqueue([writes[i] for i in wait], reason)
            except OutboxUnavailable as exc:
                logger.error("could not queue %d write(s): %s", len(wait), exc.message)
                # Nothing is accepted that is not stored: Enginy gets the 503 it would have.
                raise (failure or exc) from exc
            for index, uid in zip(wait, uids, strict=True):
                outcomes[index] = Queued(receipt(uid))
            for kind in {writes[i].kind for i in wait}:
                self.hooks.queued(kind.value, sum(1 for i in wait if writes[i].kind is kind))
        return [outcomes[i] for i in range(len(writes))]
