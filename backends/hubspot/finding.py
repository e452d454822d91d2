"""Finding records: by external id, email and the driver's key properties through ``batch/read``
(HubSpot's primary store); by anything else, and by hand-made records' fields, through search.

Call budget for a batch of values (see ``bench/hubspot.py``): external id, contact email, a
LinkedIn URL or a company domain (either normaliser) cost one ``batch/read`` per 100 values.
Values the key property did not find go to a search on the field (:mod:`.search`): for a
LinkedIn URL or a domain under any extension, one search when the portal has at most 200
records with the field but without the key (else more, see there); for a domain, one ``IN``
search per ~25 values; a company domain still unmatched that a contact created in the last
minutes has costs two more calls (:mod:`.autocompanies`). A key without a property of its own
(company name) costs one search per ~100 values.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from backends.base import EXTERNAL_ID, Entity, MatchKey, StoredRecord
from backends.hubspot.autocompanies import AutoCompaniesMixin
from backends.hubspot.core import OBJECT_TYPES, is_record_id
from backends.hubspot.keys import key_kind, normalise_for_key
from backends.hubspot.owned import OwnedKeysMixin
from backends.hubspot.search import oldest_first

__all__ = ["FindingMixin"]

log = logging.getLogger("backends.hubspot")

#: Kinds whose unmatched company values may be a company HubSpot just made from an e-mail.
DOMAIN_KINDS = frozenset({"domain", "domain_any_extension"})


class FindingMixin(OwnedKeysMixin, AutoCompaniesMixin):
    """``find_records`` and ``get_records`` of :class:`backends.hubspot.HubSpotBackend`."""

    async def find_records(
        self, entity: Entity, key: MatchKey, values: Sequence[str]
    ) -> dict[str, StoredRecord]:
        """Find records by one key (see :class:`backends.base.Backend`).

        External id, contact email and the keys with a driver property → ``batch/read`` by
        that property; then, for the values not found, a search on the key's field for
        records that hold no key (made in HubSpot by hand, by HubSpot itself or by another
        integration), each candidate confirmed by the key's normaliser (``key.normaliser``,
        else guessed from its name); any other key → search. A key whose property the portal
        lacks finds nothing (logged once; ``check`` reports it). Read-only.
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
                return await self._index(object_type, found, ext, wanted)
            if key.fields:
                return await self._find_compound(object_type, key, wanted, properties)
            field = key.field or self.default_field_map.get(entity, {}).get(key.name, key.name)
            kind = key_kind(key.name, key.normaliser)
            held = await self.usable_key_property(entity, key.name, kind)
            result: dict[str, StoredRecord] = {}
            if held is not None:
                found = await self.batch_read(object_type, wanted, properties, id_property=held)
                result = await self._index(object_type, found, held, wanted)
            if field not in await self.catalog.definitions(object_type):
                self._warn_missing_key(object_type, key.name, field)
                return result
            rest = [v for v in wanted if v not in result]
            if not rest:
                return result
            if object_type == "contacts" and field == "email":
                lowered = [v.lower() for v in rest]
                found = await self.batch_read(object_type, lowered, properties, id_property="email")
                result.update(await self._index(object_type, found, field, rest, kind=kind))
                return result
            hits = await self.search_field(
                object_type, field, kind, rest, properties, key_property=held
            )
            rest = [v for v in rest if v not in hits]
            if rest and entity is Entity.COMPANY and field == "domain" and kind in DOMAIN_KINDS:
                hits.update(await self.companies_from_emails(kind, rest, properties))
            for value, obj in hits.items():
                result[value] = await self._to_record(object_type, obj)
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
        candidates, reread = await self.in_candidates(
            object_type, key.fields[0], "name", firsts, properties, need=key.fields
        )
        hits: dict[str, dict[str, Any]] = {}
        # Oldest record wins when several hold the value, as for every key.
        for obj in oldest_first(candidates):
            props = obj.get("properties") or {}
            stored = tuple(normalise_for_key("name", props.get(f)) or "" for f in key.fields)
            hit = parts.get(stored)
            if hit is not None and hit not in hits:
                hits[hit] = obj
        if reread and hits:
            full = await self.read_again(object_type, hits.values(), properties)
            hits = {v: full[str(o["id"])] for v, o in hits.items() if str(o["id"]) in full}
        return {v: await self._to_record(object_type, obj) for v, obj in hits.items()}

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
        kind: str | None = None,
    ) -> dict[str, StoredRecord]:
        """``{value: record}`` of ``found`` by ``prop``'s value: as stored (a key the driver
        wrote), or normalised as ``kind``. The oldest record wins."""
        wanted_set = set(wanted)
        result: dict[str, StoredRecord] = {}
        for obj in oldest_first([dict(o) for o in found]):
            raw = (obj.get("properties") or {}).get(prop)
            value = normalise_for_key(kind, raw) if kind else (str(raw) if raw else None)
            if value is not None and value in wanted_set and value not in result:
                result[value] = await self._to_record(object_type, obj)
        return result

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
