"""Users = HubSpot owners (``/crm/v3/owners``, paged), cached with a TTL."""

from __future__ import annotations

import asyncio
from typing import Any

from cachetools import TTLCache

from backends.base import User
from backends.hubspot.core import HubSpotCore

__all__ = ["OwnersMixin"]

#: HubSpot caps the owners page at 500; 100 is its default.
OWNERS_PAGE = 100


class OwnersMixin(HubSpotCore):
    """``list_users`` for :class:`backends.hubspot.HubSpotBackend`."""

    _owners_cache: TTLCache[str, list[User]]
    _owners_lock: asyncio.Lock

    def _owners_state(self) -> tuple[TTLCache[str, list[User]], asyncio.Lock]:
        if not hasattr(self, "_owners_cache"):
            # ttl=0 would make cachetools reject every insert; a tiny TTL means "no cache".
            ttl = max(self.options.owners_ttl_seconds, 1e-6)
            self._owners_cache = TTLCache(maxsize=1, ttl=ttl, timer=self._clock)
            self._owners_lock = asyncio.Lock()
        return self._owners_cache, self._owners_lock

    async def list_users(self) -> list[User]:
        """Active owners (people and queues) as users; ``id`` is the *owner* id, the value
        HubSpot accepts in ``hubspot_owner_id`` (not the user id). Fetched at most once per
        ``owners_ttl_seconds``, however many concurrent requests ask. Read-only."""
        cache, lock = self._owners_state()
        users = cache.get("owners")
        if users is not None:
            return list(users)
        async with lock:
            users = cache.get("owners")
            if users is None:
                users = await self._fetch_owners()
                cache["owners"] = users
        return list(users)

    async def _fetch_owners(self) -> list[User]:
        users: list[User] = []
        after: str | None = None
        with self.client.budget():
            while True:
                params: dict[str, Any] = {"limit": str(OWNERS_PAGE), "archived": "false"}
                if after:
                    params["after"] = after
                # No trailing slash: "/crm/v3/owners/" matches the {ownerId} route.
                response = await self.client.request(
                    "GET", self.client.paths.owners(), params=params
                )
                data = response.json_dict()
                for owner in data.get("results") or []:
                    users.append(_to_user(owner))
                after = ((data.get("paging") or {}).get("next") or {}).get("after")
                if not after:
                    break
        return users


def _to_user(owner: dict[str, Any]) -> User:
    email = owner.get("email") or None
    name = " ".join(p for p in (owner.get("firstName"), owner.get("lastName")) if p).strip()
    return User(id=str(owner.get("id")), name=name or email or str(owner.get("id")), email=email)
