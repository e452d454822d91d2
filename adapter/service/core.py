"""The :class:`Service`: everything between the wire models and the driver."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from adapter.config import NullPolicy
from adapter.errors import HealthUnavailable
from adapter.mapping import FieldMapper
from adapter.matching import Matcher
from adapter.outbox import DirectWrites, Writes
from adapter.service.engagements import KNOWN_ACTIVITY_TYPES, EngagementOperations, SeenTypes
from adapter.service.health import HealthCheck
from adapter.service.records import RecordOperations
from adapter.service.references import UserDirectory
from backends.base import Backend, Entity, User

__all__ = ["Service"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Service(RecordOperations, EngagementOperations):
    """Everything between the wire models and the driver.

    ``mappers`` and ``nulls`` hold one entry per :class:`Entity`; ``users`` is the static YAML
    list (``None`` when not configured); ``clock`` is the time used for task completion.
    ``writes`` makes the writes the outbox can take (:mod:`adapter.outbox.writes`): straight
    to the driver unless given. ``scrub`` removes secrets and the backend's location (host,
    user, database, file) from a driver's message before it is put in an answer.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        mappers: Mapping[Entity, FieldMapper],
        matcher: Matcher,
        nulls: Mapping[Entity, NullPolicy],
        users: Sequence[User] | None = None,
        health_cache_seconds: float = 5.0,
        clock: Callable[[], datetime] = _utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        writes: Writes | None = None,
        scrub: Callable[[str], str] = lambda text: text,
    ) -> None:
        self.backend = backend
        self.writes: Writes = writes if writes is not None else DirectWrites(backend)
        self.mappers = dict(mappers)
        self.matcher = matcher
        self.nulls = dict(nulls)
        self.users = list(users) if users is not None else None
        self.health = HealthCheck(backend, health_cache_seconds, monotonic)
        self.clock = clock
        self.scrub = scrub
        self.directory = UserDirectory(backend, self.users, clock=monotonic)
        self._seen_activity_types = SeenTypes(KNOWN_ACTIVITY_TYPES)

    async def check_health(self) -> None:
        """Return when the backend is reachable; raise a 503 error otherwise (A.12)."""
        error = await self.health.check()
        if error is not None:
            raise HealthUnavailable(error)
