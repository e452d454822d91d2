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
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from cachetools import TTLCache

from backends.base import InvalidRecord
from backends.hubspot.client import HubSpotClient

__all__ = [
    "Prepared",
    "PropertyCatalog",
    "from_hubspot_value",
    "hubspot_name",
    "to_hubspot_value",
]

log = logging.getLogger("backends.hubspot")

#: What HubSpot accepts as an internal property name.
#: Minimum age of the cached definitions before an unknown name triggers a re-read.
_REFRESH_AFTER = 60.0

_VALID_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")


def to_hubspot_value(value: Any, *, created: bool = False) -> str:
    """HubSpot property values are strings: numbers as text, booleans ``true``/``false``,
    dates ISO-8601 UTC, multi-select ``;``-joined, and the empty string clears.

    In a text property the driver created for an Enginy field (``created``), a list or object
    is kept as JSON so it reads back as sent."""
    if created and isinstance(value, (list, tuple, Mapping)):
        return json.dumps(value, separators=(",", ":"), default=str)
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


_INTEGER = re.compile(r"^-?[0-9]{1,4000}$")


def from_hubspot_value(definition: Mapping[str, Any] | None, value: Any) -> Any:
    """Turn a property string back into a JSON value using the property's ``type``.

    A text property the driver created for an Enginy field gives JSON numbers, booleans,
    lists and objects back as such (``"5"`` → ``5``), so engagement fields sync back as sent;
    any other text stays text."""
    if not isinstance(value, str) or definition is None:
        return value
    if _aliased(definition) is not None and value[:1] in "-0123456789tf[{":
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        return value if isinstance(decoded, str) else decoded
    kind = definition.get("type")
    try:
        if kind == "number":
            if _INTEGER.match(value):
                return int(value)  # exactly: a double would round 2**63 - 1
            number = float(value)
            if not math.isfinite(number):
                return value  # "inf" is no JSON number: left as the text it is
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

    def _warn_once(self, object_type: str, name: str, why: str, verb: str = "dropping") -> None:
        if (object_type, name) not in self._warned:
            self._warned.add((object_type, name))
            log.warning("hubspot: %s field %r on %s: %s", verb, name, object_type, why)

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

    async def prepare(self, object_type: str, fields: Mapping[str, Any]) -> Prepared:
        """Translate ``fields`` to HubSpot property strings.

        * An enumeration value is matched to an option by label or internal value, ignoring
          case (``"computer software"`` → ``COMPUTER_SOFTWARE``); a value with no option drops
          that one field, named in :attr:`Prepared.dropped`.
        * A field with no property follows ``unknown_properties``: ``create`` a text property
          in the adapter's group (a field name HubSpot cannot take, such as
          ``campaignEngagementStatus``, gets its snake_case alias, labelled with the original
          name so reads give it back under it), ``note`` (kept in :attr:`Prepared.unstored` for
          a note on the record), ``drop`` (named in ``dropped``) or ``reject`` (the record's
          error).
        * Read-only properties are dropped and named.
        """
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
        out = Prepared()
        rejected: list[str] = []
        for name, value in fields.items():
            target = name if name in known else self._alias(known, name)
            if target is None:
                if self.policy == "reject":
                    rejected.append(name)
                    continue
                if self.policy in ("drop", "note"):
                    if self.policy == "note":
                        out.unstored[name] = value
                    else:
                        out.dropped[name] = "no such HubSpot property"
                    self._warn_once(
                        object_type,
                        name,
                        "no such HubSpot property (map it in mapping.*.fields, or set "
                        "backend.options.unknown_properties: create)",
                        verb="keeping in a note" if self.policy == "note" else "dropping",
                    )
                    continue
                target = name if _VALID_NAME.match(name) else hubspot_name(name)
                if target in known:  # the alias name is taken by an unrelated property
                    out.dropped[name] = f"{target} exists for another field"
                    self._warn_once(object_type, name, out.dropped[name])
                    continue
                # Always text: a type guessed from the first value ("5") refuses later ones
                # ("5+"). Values read back in their JSON type (see from_hubspot_value).
                await self.ensure(
                    object_type,
                    target,
                    name if target != name else name.replace("_", " ").capitalize(),
                    description=f"{_ALIAS_MARK}{name}",
                )
                known = await self.definitions(object_type)
            definition = known.get(target) or {}
            if (definition.get("modificationMetadata") or {}).get("readOnlyValue"):
                out.dropped[name] = "read-only in HubSpot"
                self._warn_once(object_type, name, "read-only in HubSpot")
                continue
            text = to_hubspot_value(value, created=_aliased(definition) is not None)
            if definition.get("type") == "enumeration" and text:
                option = _option_for(definition, text)
                if option is None:
                    out.dropped[name] = (
                        f"{text!r} is not an option of {object_type}.{target} "
                        f"(options: {_option_list(definition)})"
                    )
                    self._warn_option(object_type, target, text)
                    continue
                text = option
            out.properties[target] = text
        if rejected:
            out.error = InvalidRecord(
                f"unknown HubSpot {object_type} properties: {', '.join(sorted(rejected))}"
            )
        return out

    def _warn_option(self, object_type: str, name: str, value: str) -> None:
        if (object_type, f"{name}={value}") not in self._warned:
            self._warned.add((object_type, f"{name}={value}"))
            log.warning(
                "hubspot: dropping %s.%s = %r: not one of the property's options (labels or "
                "internal values); the rest of the record is written",
                object_type,
                name,
                value[:80],
            )


@dataclass(slots=True)
class Prepared:
    """Fields translated for one HubSpot write."""

    #: property → value string, ready to send.
    properties: dict[str, str] = field(default_factory=dict)
    #: field → why it was not written (reported in the record's result and logged).
    dropped: dict[str, str] = field(default_factory=dict)
    #: fields with no property under ``unknown_properties: note`` (written into a note).
    unstored: dict[str, Any] = field(default_factory=dict)
    #: set under ``unknown_properties: reject`` when the record must fail.
    error: InvalidRecord | None = None


def _option_for(definition: Mapping[str, Any], text: str) -> str | None:
    """The internal value(s) for ``text``: each ``;``-separated part matched by label or
    value, ignoring case and surrounding spaces; ``None`` when one part matches nothing."""
    options = [o for o in definition.get("options") or [] if isinstance(o, Mapping)]
    if not options:  # an options-less enumeration (hubspot_owner_id): HubSpot checks it
        return text
    lookup: dict[str, str] = {}
    for option in options:
        value = str(option.get("value") or "")
        lookup.setdefault(value.strip().casefold(), value)
    for option in options:  # labels second: an internal value wins over another's label
        lookup.setdefault(str(option.get("label") or "").strip().casefold(), str(option["value"]))
    parts = [lookup.get(part.strip().casefold()) for part in text.split(";")]
    if any(p is None for p in parts):
        return None
    return ";".join(p for p in parts if p is not None)


def _option_list(definition: Mapping[str, Any], limit: int = 8) -> str:
    labels = [str(o.get("label") or o.get("value")) for o in definition.get("options") or []]
    more = f", ... ({len(labels)} in all)" if len(labels) > limit else ""
    return ", ".join(labels[:limit]) + more


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
