"""Contacts the driver created lately, by e-mail domain (see :mod:`.autocompanies`): kept in the
process, and in Redis for every replica when ``rate_limit.redis_url`` is set, so that a
company created on one replica sees the contacts another replica created a moment before.

Each contact is filed under its e-mail domain (``acme.co.uk``) and under that domain's name
(``acme``, for ``domain_any_extension`` keys), for :data:`RECENT_CONTACTS_SECONDS`. In Redis a
set per value, with a TTL, under the rate limiter's key prefix. If Redis cannot be reached the
process's own memory still answers (logged at most once a minute).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from cachetools import TTLCache

from backends.hubspot.keys import normalise_for_key
from backends.hubspot.options import HubSpotOptions

__all__ = ["RECENT_CONTACTS_SECONDS", "RecentContacts", "RedisRecentContacts", "build_recent"]

log = logging.getLogger("backends.hubspot")

#: How long a created contact is remembered: well past the few seconds search lags writes,
#: after which a search on ``domain`` finds the company HubSpot made.
RECENT_CONTACTS_SECONDS = 600.0
#: The kinds of company lookups the memory answers.
KINDS = ("domain", "domain_any_extension")


class RecentContacts:
    """The process's memory: ``{kind: {value: contact ids}}`` with a TTL."""

    def __init__(self, *, ttl: float = RECENT_CONTACTS_SECONDS, clock: Callable[[], float]):
        self.ttl = ttl
        self._local: dict[str, TTLCache[str, frozenset[str]]] = {
            kind: TTLCache(maxsize=10_000, ttl=ttl, timer=clock) for kind in KINDS
        }

    @staticmethod
    def entries(contacts: Iterable[tuple[str, str]]) -> list[tuple[str, str, str]]:
        """``(kind, value, contact id)`` for ``(contact id, e-mail)`` pairs."""
        out = []
        for crm_id, email in contacts:
            domain = normalise_for_key("domain", email.rsplit("@", 1)[-1]) if "@" in email else None
            for kind in KINDS:
                value = normalise_for_key(kind, domain) if domain else None
                if value:
                    out.append((kind, value, crm_id))
        return out

    async def remember(self, contacts: Iterable[tuple[str, str]]) -> None:
        """File ``(contact id, e-mail)`` pairs under their domain and its name."""
        for kind, value, crm_id in self.entries(contacts):
            cache = self._local[kind]
            cache[value] = cache.get(value, frozenset()) | {crm_id}

    async def recall(self, kind: str, values: Sequence[str]) -> set[str]:
        """The contacts filed under any of ``values`` (``kind``: ``domain`` or
        ``domain_any_extension``)."""
        cache = self._local[kind]
        return {crm_id for value in values for crm_id in cache.get(value, frozenset())}

    async def aclose(self) -> None:
        """Release connections (none here)."""


class RedisRecentContacts(RecentContacts):
    """The same memory shared by every replica through Redis (and kept locally too)."""

    WARN_EVERY = 60.0

    def __init__(
        self,
        *,
        url: str,
        key_prefix: str,
        ttl: float = RECENT_CONTACTS_SECONDS,
        clock: Callable[[], float],
    ) -> None:
        super().__init__(ttl=ttl, clock=clock)
        import redis.asyncio

        self._redis: Any = redis.asyncio.Redis.from_url(
            url, socket_connect_timeout=2.0, socket_timeout=2.0
        )
        self.key_prefix = key_prefix
        self._clock = clock
        self._warned_at: float | None = None

    def _key(self, kind: str, value: str) -> str:
        return f"{self.key_prefix}/recent-contacts/{kind}/{value}"

    def _down(self, exc: Exception) -> None:
        now = self._clock()
        if self._warned_at is None or now - self._warned_at >= self.WARN_EVERY:
            self._warned_at = now
            log.warning(
                "hubspot: Redis unreachable for recent contacts (%s); this process's own memory "
                "answers until it is back",
                type(exc).__name__,
            )

    async def remember(self, contacts: Iterable[tuple[str, str]]) -> None:
        pairs = list(contacts)
        await super().remember(pairs)
        entries = self.entries(pairs)
        if not entries:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for kind, value, crm_id in entries:
                    key = self._key(kind, value)
                    pipe.sadd(key, crm_id)
                    pipe.pexpire(key, int(self.ttl * 1000))
                await pipe.execute()
        except (OSError, ConnectionError, TimeoutError, _redis_error()) as exc:
            self._down(exc)

    async def recall(self, kind: str, values: Sequence[str]) -> set[str]:
        found = await super().recall(kind, values)
        if not values:
            return found
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for value in values:
                    pipe.smembers(self._key(kind, value))
                answers = await pipe.execute()
        except (OSError, ConnectionError, TimeoutError, _redis_error()) as exc:
            self._down(exc)
            return found
        for members in answers:
            found.update(m.decode() if isinstance(m, bytes) else str(m) for m in members)
        return found

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):  # closing must not raise
            await self._redis.aclose()


def _redis_error() -> type[Exception]:
    from redis.exceptions import RedisError

    return RedisError


def build_recent(options: HubSpotOptions, clock: Callable[[], float]) -> RecentContacts:
    """Redis-shared when ``rate_limit.redis_url`` is set (under the rate limiter's key prefix:
    replicas with the same token share it), else per process."""
    limits = options.rate_limit
    if limits.redis_url is None:
        return RecentContacts(clock=clock)
    digest = hashlib.sha256(options.token.get_secret_value().encode()).hexdigest()[:16]
    return RedisRecentContacts(
        url=limits.redis_url.get_secret_value(),
        key_prefix=limits.key_prefix or f"enginy:hubspot:{digest}",
        clock=clock,
    )
