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

__all__ = ["PropertyCatalog", "from_hubspot_value", "hubspot_name", "to_hubspot_value"]

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
        description: str | None = None,
        options: list[dict[str, Any]] | None = None,
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
            if description:
                body["description"] = description
            if options:
                body["options"] = options
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

    def _alias(self, known: Mapping[str, Mapping[str, Any]], name: str) -> str | None:
        """The property that stands for a field name HubSpot cannot use as is
        (``campaignEngagementStatus`` → ``campaign_engagement_status``), when the driver made
        it: in our group, labelled with the original name."""
        alias = hubspot_name(name)
        definition = known.get(alias)
        if alias != name and definition is not None and _aliased(definition) == name:
            return alias
        return None

    def original_names(self, object_type: str) -> dict[str, str]:
        """``{HubSpot name: field name}`` for the aliased properties of ``object_type``
        (from the cached definitions; empty before the first read)."""
        known = self._cache.get(object_type) or {}
        out = {}
        for name, definition in known.items():
            original = _aliased(definition)
            if original and hubspot_name(original) == name:
                out[name] = original
        return out

    async def prepare(
        self, object_type: str, fields: Mapping[str, Any]
    ) -> tuple[dict[str, str], InvalidRecord | None]:
        """Translate ``fields`` to HubSpot property strings, applying the unknown-property
        policy. Returns ``(properties, error)``; ``error`` is set when the record must be
        rejected (policy ``reject``).

        A field name HubSpot cannot take (camelCase engagement fields Enginy sends) is written
        to its snake_case alias, created under policy ``create`` with the original name as
        label, so that reads give it back under the original name."""
        known = await self.definitions(object_type)

        def missing(name: str) -> bool:
            return name not in known and self._alias(known, name) is None

        if any(missing(n) for n in fields) and (
            self._timer() - self._fetched_at.get(object_type, 0.0) > _REFRESH_AFTER
        ):
            # Someone may have created them since we cached: refresh (at most once a minute)
            # before judging, so a property added in the portal is picked up without a restart.
            self._cache.pop(object_type, None)
            known = await self.definitions(object_type)
        out: dict[str, str] = {}
        rejected: list[str] = []
        for name, value in fields.items():
            target = name if name in known else self._alias(known, name)
            if target is None:
                if self.policy == "reject":
                    rejected.append(name)
                    continue
                if self.policy != "create":
                    self._warn_once(
                        object_type,
                        name,
                        "no such HubSpot property (map it in mapping.*.fields, or set "
                        "backend.options.unknown_properties: create)",
                    )
                    continue
                target = name if _VALID_NAME.match(name) else hubspot_name(name)
                if target in known:  # the alias name is taken by an unrelated property
                    self._warn_once(object_type, name, f"{target} exists for another field")
                    continue
                kind, field_type, options = _property_type(value)
                await self.ensure(
                    object_type,
                    target,
                    name if target != name else name.replace("_", " ").capitalize(),
                    type=kind,
                    field_type=field_type,
                    options=options,
                    description=f"{_ALIAS_MARK}{name}" if target != name else None,
                )
                known = await self.definitions(object_type)
            definition = known.get(target) or {}
            if (definition.get("modificationMetadata") or {}).get("readOnlyValue"):
                self._warn_once(object_type, name, "read-only in HubSpot")
                continue
            out[target] = to_hubspot_value(value)
        if rejected:
            return out, InvalidRecord(
                f"unknown HubSpot {object_type} properties: {', '.join(sorted(rejected))}"
            )
        return out, None


def _property_type(value: Any) -> tuple[str, str, list[dict[str, Any]] | None]:
    """(type, fieldType, options) for a property created from the first value written, so
    numbers and booleans read back as numbers and booleans."""
    if isinstance(value, bool):
        return (
            "bool",
            "booleancheckbox",
            [
                {"label": "Yes", "value": "true", "displayOrder": 0},
                {"label": "No", "value": "false", "displayOrder": 1},
            ],
        )
    if isinstance(value, (int, float)):
        return "number", "number", None
    return "string", "text", None


#: Description prefix of a property standing for a field name HubSpot could not take.
_ALIAS_MARK = "Enginy field: "


def _aliased(definition: Mapping[str, Any]) -> str | None:
    description = definition.get("description")
    if isinstance(description, str) and description.startswith(_ALIAS_MARK):
        return description[len(_ALIAS_MARK) :]
    return None


def hubspot_name(name: str) -> str:
    """A valid HubSpot internal name for a field name: snake_case, lower-case, ``[a-z0-9_]``,
    starting with a letter (``campaignEngagementStatus`` → ``campaign_engagement_status``)."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.strip())
    snake = re.sub(r"[^a-z0-9_]+", "_", snake.lower()).strip("_")
    if not snake or not snake[0].isalpha():
        snake = f"f_{snake}"
    return snake[:100]
