"""The portal's property definitions: read once per TTL, checked before every write.

HubSpot rejects a write naming a property that does not exist (400 ``PROPERTY_DOESNT_EXIST``,
failing the whole batch unless 207 is opted into), so names are checked locally first and an
unknown one follows ``unknown_properties``: drop (one warning per field), reject (the record's
error) or create (a text property in the ``enginy`` group).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from cachetools import TTLCache

from backends.base import InvalidRecord
from backends.hubspot.client import HubSpotClient

__all__ = ["PropertyCatalog", "from_hubspot_value", "to_hubspot_value"]

log = logging.getLogger("backends.hubspot")

#: What HubSpot accepts as an internal property name.
#: Minimum age of the cached definitions before an unknown name triggers a re-read.
_REFRESH_AFTER = 60.0

_VALID_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")


def to_hubspot_value(value: Any) -> str:
    """HubSpot property values are strings: numbers as text, booleans ``true``/``false``,
    dates ISO-8601 UTC, multi-select ``;``-joined, and the empty string clears."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return str(value.astimezone(UTC).isoformat()).replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple, set)):
        return ";".join(to_hubspot_value(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def from_hubspot_value(definition: Mapping[str, Any] | None, value: Any) -> Any:
    """Turn a property string back into a JSON value using the property's ``type``."""
    if not isinstance(value, str) or definition is None:
        return value
    kind = definition.get("type")
    try:
        if kind == "number":
            number = float(value)
            return int(number) if number.is_integer() and "." not in value else number
        if kind == "bool":
            return value.lower() == "true"
    except ValueError:
        return value
    return value


class PropertyCatalog:
    """Cached property definitions per object type, plus the unknown-property policy."""

    def __init__(
        self,
        client: HubSpotClient,
        *,
        policy: str,
        group: str,
        ttl: float,
        timer: Callable[[], float],
    ) -> None:
        self._client = client
        self.policy = policy
        self.group = group
        self._cache: TTLCache[str, dict[str, dict[str, Any]]] = TTLCache(
            maxsize=32, ttl=ttl, timer=timer
        )
        self._locks: dict[str, asyncio.Lock] = {}
        self._groups_done: set[str] = set()
        self._warned: set[tuple[str, str]] = set()
        self._timer = timer
        self._fetched_at: dict[str, float] = {}

    def _lock(self, object_type: str) -> asyncio.Lock:
        return self._locks.setdefault(object_type, asyncio.Lock())

    async def definitions(self, object_type: str) -> dict[str, dict[str, Any]]:
        """``{name: Property}`` for ``object_type``, fetched at most once per TTL."""
        cached = self._cache.get(object_type)
        if cached is not None:
            return cached
        async with self._lock(object_type):
            cached = self._cache.get(object_type)
            if cached is None:
                cached = await self._fetch(object_type)
        return cached

    async def _fetch(self, object_type: str) -> dict[str, dict[str, Any]]:
        response = await self._client.request(
            "GET", self._client.paths.properties(object_type), params={"archived": "false"}
        )
        results = response.json_dict().get("results") or []
        found = {p["name"]: p for p in results if isinstance(p, dict) and "name" in p}
        self._cache[object_type] = found
        self._fetched_at[object_type] = self._timer()
        return found

    def invalidate(self, object_type: str) -> None:
        """Forget the cached definitions of ``object_type`` (the next use re-reads them)."""
        self._cache.pop(object_type, None)

    async def option_values(self, object_type: str, name: str) -> list[str]:
        """The internal values of an enumeration property (e.g. ``hs_task_type``)."""
        definition = (await self.definitions(object_type)).get(name) or {}
        return [str(o.get("value")) for o in definition.get("options") or [] if isinstance(o, dict)]

    async def ensure(
        self,
        object_type: str,
        name: str,
        label: str,
        *,
        type: str = "string",
        field_type: str = "text",
        unique: bool = False,
        create: bool = True,
    ) -> bool:
        """Make sure ``name`` exists on ``object_type``; create it when allowed.

        Returns whether it exists afterwards. Idempotent (a 409 means someone else made it).
        """
        if name in await self.definitions(object_type):
            return True
        if not create:
            return False
        async with self._lock(object_type):
            if name in (self._cache.get(object_type) or {}):
                return True
            await self._ensure_group(object_type)
            body = {
                "name": name,
                "label": label,
                "type": type,
                "fieldType": field_type,
                "groupName": self.group,
                "hasUniqueValue": unique,
            }
            response = await self._client.request(
                "POST", self._client.paths.properties(object_type), json=body, accept=(409,)
            )
            log.info(
                "hubspot: created property %s.%s (status %s)", object_type, name, response.status
            )
            cached = self._cache.get(object_type)
            if response.ok and cached is not None:
                # Add what HubSpot answered instead of re-reading every definition.
                answer = response.json_dict()
                cached[name] = answer if answer.get("name") == name else body
            else:
                self._cache.pop(object_type, None)  # 409: someone else made it; re-read
        return True

    async def _ensure_group(self, object_type: str) -> None:
        if object_type in self._groups_done:
            return
        await self._client.request(
            "POST",
            self._client.paths.property_groups(object_type),
            json={"name": self.group, "label": "Enginy", "displayOrder": -1},
            accept=(409,),  # already there
        )
        self._groups_done.add(object_type)

    def _warn_once(self, object_type: str, name: str, why: str) -> None:
        if (object_type, name) not in self._warned:
            self._warned.add((object_type, name))
            log.warning("hubspot: dropping field %r on %s: %s", name, object_type, why)

    async def prepare(
        self, object_type: str, fields: Mapping[str, Any]
    ) -> tuple[dict[str, str], InvalidRecord | None]:
        """Translate ``fields`` to HubSpot property strings, applying the unknown-property
        policy. Returns ``(properties, error)``; ``error`` is set when the record must be
        rejected (policy ``reject``)."""
        known = await self.definitions(object_type)
        unknown = [name for name in fields if name not in known]
        if unknown and self._timer() - self._fetched_at.get(object_type, 0.0) > _REFRESH_AFTER:
            # Someone may have created them since we cached: refresh (at most once a minute)
            # before judging, so a property added in the portal is picked up without a restart.
            self._cache.pop(object_type, None)
            known = await self.definitions(object_type)
            unknown = [name for name in fields if name not in known]
        out: dict[str, str] = {}
        rejected: list[str] = []
        for name, value in fields.items():
            definition = known.get(name)
            if definition is None:
                if self.policy == "reject":
                    rejected.append(name)
                    continue
                if self.policy == "create" and _VALID_NAME.match(name):
                    await self.ensure(object_type, name, name.replace("_", " ").capitalize())
                    known = await self.definitions(object_type)
                else:
                    why = (
                        "no such HubSpot property (map it in mapping.*.fields, or set "
                        "backend.options.unknown_properties: create)"
                        if self.policy != "create"
                        else "not a valid HubSpot property name (lower-case, digits, _)"
                    )
                    self._warn_once(object_type, name, why)
                    continue
            elif (definition.get("modificationMetadata") or {}).get("readOnlyValue"):
                self._warn_once(object_type, name, "read-only in HubSpot")
                continue
            out[name] = to_hubspot_value(value)
        if rejected:
            return out, InvalidRecord(
                f"unknown HubSpot {object_type} properties: {', '.join(sorted(rejected))}"
            )
        return out, None
