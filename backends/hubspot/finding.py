"""Finding records: by external id, email and the driver's key properties through ``batch/read``
(HubSpot's primary store); by anything else, and by hand-made records' fields, through search.

Call budget for a batch of values (see ``bench/hubspot.py``): external id, contact email, a
LinkedIn URL or a company domain cost one ``batch/read`` per 100 values; values a key property
did not find cost one fallback search per ~25 values (the spellings of each value share the
3,000-character body); a key without a property of its own (company name) costs one search per
~100 values.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from backends.base import EXTERNAL_ID, Entity, MatchKey, StoredRecord
from backends.hubspot.core import OBJECT_TYPES, HubSpotCore, is_record_id
from backends.hubspot.keys import KEY_KINDS, fallback_spellings, key_kind, normalise_for_key

__all__ = ["FindingMixin"]

log = logging.getLogger("backends.hubspot")

#: Search limits (current docs): body ≤ 3,000 chars, page ≤ 200, ≤ 10,000 results per query.
SEARCH_BODY_LIMIT = 3_000
SEARCH_PAGE = 200
SEARCH_MAX_RESULTS = 10_000
#: IN values per search (each value counts against the body limit too).
SEARCH_MAX_VALUES = 100


class FindingMixin(HubSpotCore):
    """``find_records`` and ``get_records`` of :class:`backends.hubspot.HubSpotBackend`."""

    def key_property(self, entity: Entity, key_name: str) -> str | None:
        """The driver-owned property holding key ``key_name`` of ``entity``, if any."""
        kind = KEY_KINDS.get(entity, {}).get(key_name)
        if kind == "linkedin":
            return self.options.linkedin_key_property
        if kind == "domain":
            return self.options.domain_key_property
        return None

    async def find_records(
        self, entity: Entity, key: MatchKey, values: Sequence[str]
    ) -> dict[str, StoredRecord]:
        """Find records by one key (see :class:`backends.base.Backend`).

        External id, contact email and the keys with a driver property → ``batch/read`` by
        that property; then, for a keyed field, a fallback search on the field itself for the
        values not found (records made in HubSpot by hand); any other key → search with
        lower-cased ``IN`` filters, results re-normalised and the oldest kept. A key whose
        property the portal lacks finds nothing (logged once; ``check`` reports it).
        """
        object_type = OBJECT_TYPES[entity]
        wanted = [v for v in dict.fromkeys(values) if v]
        if not wanted:
            return {}
        with self.client.budget():
            properties = await self._read_properties(object_type)
            if key.name == EXTERNAL_ID:
                ext = self.options.external_id_property
                found = await self.batch_read(object_type, wanted, properties, id_property=ext)
                return await self._index(object_type, found, ext, wanted, exact=True)
            if key.fields:
                return await self._find_compound(object_type, key, wanted, properties)
            field = key.field or self.default_field_map.get(entity, {}).get(key.name, key.name)
            definitions = await self.catalog.definitions(object_type)
            kind = key_kind(key.name)
            held = self.key_property(entity, key.name)
            result: dict[str, StoredRecord] = {}
            if held is not None and held in definitions:
                found = await self.batch_read(object_type, wanted, properties, id_property=held)
                result = await self._index(object_type, found, held, wanted, exact=True)
            if field not in definitions:
                self._warn_missing_key(object_type, key.name, field)
                return result
            rest = [v for v in wanted if v not in result]
            if not rest:
                return result
            if object_type == "contacts" and field == "email":
                lowered = [v.lower() for v in rest]
                found = await self.batch_read(object_type, lowered, properties, id_property="email")
            else:
                found = await self._search_in(object_type, field, kind, rest, properties)
            result.update(await self._index(object_type, found, field, rest, kind=kind))
            return result

    async def _find_compound(
        self, object_type: str, key: MatchKey, wanted: Sequence[str], properties: Sequence[str]
    ) -> dict[str, StoredRecord]:
        """A compound key (first name + last name + company): one ``IN`` search on its first
        part's property, each result's parts normalised and compared together (the front
        folds names: case and spaces). Search lags writes: a record created a moment ago is
        found once HubSpot's index has it (its externalId finds it at once)."""
        definitions = await self.catalog.definitions(object_type)
        for field in key.fields:
            if field not in definitions:
                self._warn_missing_key(object_type, key.name, field)
                return {}
        parts: dict[tuple[str, ...], str] = {}
        for value in wanted:
            try:
                decoded = json.loads(value)
            except ValueError:
                continue
            if isinstance(decoded, list) and len(decoded) == len(key.fields):
                parts[tuple(str(p) for p in decoded)] = value
        if not parts:
            return {}
        firsts = sorted({t[0] for t in parts})
        names = sorted(set(properties) | set(key.fields))
        found = await self._search_in(object_type, key.fields[0], "name", firsts, names)
        result: dict[str, StoredRecord] = {}
        # Oldest record wins when several hold the value, as for every key.
        for obj in sorted(found, key=lambda o: (str(o.get("createdAt") or ""), int(o["id"]))):
            props = obj.get("properties") or {}
            stored = tuple(normalise_for_key("name", props.get(f)) or "" for f in key.fields)
            hit = parts.get(stored)
            if hit is not None and hit not in result:
                result[hit] = await self._to_record(object_type, obj)
        return result

    def _warn_missing_key(self, object_type: str, key_name: str, field: str) -> None:
        warned = self.__dict__.setdefault("_missing_key_warned", set())
        if (object_type, field) not in warned:
            warned.add((object_type, field))
            log.warning(
                "hubspot: match key %s is skipped on %s: the portal has no property %r "
                "(map the key's field to one that exists, or create it)",
                key_name,
                object_type,
                field,
            )

    async def _index(
        self,
        object_type: str,
        found: Sequence[Mapping[str, Any]],
        prop: str,
        wanted: Sequence[str],
        *,
        kind: str = "name",
        exact: bool = False,
    ) -> dict[str, StoredRecord]:
        wanted_set = set(wanted)
        result: dict[str, StoredRecord] = {}
        # Oldest record wins when several hold the value: ascending numeric id ~ creation order.
        for obj in sorted(found, key=lambda o: (str(o.get("createdAt") or ""), int(o["id"]))):
            raw = (obj.get("properties") or {}).get(prop)
            value = str(raw) if exact and raw else normalise_for_key(kind, raw)
            if value in wanted_set and value not in result:
                result[value] = await self._to_record(object_type, obj)
        return result

    async def _search_in(
        self,
        object_type: str,
        field: str,
        kind: str,
        values: Sequence[str],
        properties: Sequence[str],
    ) -> list[dict[str, Any]]:
        """Search ``field IN spellings`` (lower-cased, as HubSpot requires), packed under the
        3,000-character body limit, paged by 200 up to HubSpot's 10,000 results."""
        found: dict[str, dict[str, Any]] = {}
        names = sorted(set(properties) | {field})
        reread = False

        def body_for(values: list[str], after: str | None = None) -> dict[str, Any]:
            body: dict[str, Any] = {
                "filterGroups": [
                    {"filters": [{"propertyName": field, "operator": "IN", "values": values}]}
                ],
                "properties": names,
                "sorts": [{"propertyName": "createdate", "direction": "ASCENDING"}],
                "limit": SEARCH_PAGE,
            }
            if after:
                body["after"] = after
            return body

        def size(body: dict[str, Any]) -> int:
            return len(json.dumps(body, separators=(",", ":")))

        if size(body_for(fallback_spellings(kind, values[0]), "10000")) > SEARCH_BODY_LIMIT // 2:
            # Many custom properties: their names alone would eat the body limit. Search for
            # ids only and read the records with batch/read (one more call, no size limit).
            names, reread = [field, self.options.external_id_property], True
        groups: list[list[str]] = []
        batch: list[str] = []
        for value in values:
            spellings = fallback_spellings(kind, value)
            trial = batch + spellings
            too_big = size(body_for(trial, "10000")) > SEARCH_BODY_LIMIT
            if batch and (too_big or len(trial) > SEARCH_MAX_VALUES):
                groups.append(batch)
                trial = spellings
            batch = trial
        if batch:
            groups.append(batch)
        for group in groups:
            after: str | None = None
            seen = 0
            while True:
                response = await self.client.request(
                    "POST",
                    self.client.paths.search(object_type),
                    json=body_for(group, after),
                    search=True,
                )
                data = response.json_dict()
                for obj in data.get("results") or []:
                    found.setdefault(str(obj.get("id")), obj)
                seen += len(data.get("results") or [])
                after = ((data.get("paging") or {}).get("next") or {}).get("after")
                if not after or seen + SEARCH_PAGE > SEARCH_MAX_RESULTS:
                    break
        if reread and found:
            return await self.batch_read(object_type, list(found), properties)
        return list(found.values())

    async def get_records(self, entity: Entity, crm_ids: Sequence[str]) -> dict[str, StoredRecord]:
        """Fetch records by id with ``batch/read`` (unknown ids are absent). Read-only."""
        object_type = OBJECT_TYPES[entity]
        ids = [i for i in dict.fromkeys(crm_ids) if is_record_id(i)]
        if not ids:
            return {}
        with self.client.budget():
            properties = await self._read_properties(object_type)
            found = await self.batch_read(object_type, ids, properties)
            records = [await self._to_record(object_type, obj) for obj in found]
        return {r.crm_id: r for r in records if r.crm_id in set(ids)}
