"""Contacts and companies: idempotent batch creates, finds by key, batch updates, associations.

Call budget for a batch of 100 (see ``bench/hubspot.py``): create = ``batch/read`` by the
external-id property + ``batch/create``; find = one ``batch/read`` per key that HubSpot can read
by (external id, contact email) and one search per other key; update = one ``batch/update``;
associations = one ``batch/associate/default`` (:mod:`.associations`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from backends.base import (
    EXTERNAL_ID,
    BackendError,
    Conflict,
    Entity,
    ItemResult,
    MatchKey,
    NewRecord,
    NotFound,
    RecordUpdate,
    StoredRecord,
)
from backends.hubspot.core import BATCH_LIMIT, OBJECT_TYPES, HubSpotCore, chunks, is_record_id
from backends.hubspot.errors import existing_id, item_error

__all__ = ["RecordsMixin", "normalise_for_key"]

log = logging.getLogger("backends.hubspot")

#: Search limits (current docs): body ≤ 3,000 chars, page ≤ 200, ≤ 10,000 results per query.
SEARCH_BODY_LIMIT = 3_000
SEARCH_PAGE = 200
SEARCH_MAX_RESULTS = 10_000
#: IN values per search (each value counts against the body limit too).
SEARCH_MAX_VALUES = 100


def _key_kind(key_name: str) -> str:
    name = key_name.lower()
    if "linkedin" in name or "url" in name or "website" in name:
        return "url"
    if "domain" in name:
        return "domain"
    if "email" in name:
        return "email"
    if "phone" in name:
        return "phone"
    return "name"


def normalise_for_key(key_name: str, value: Any) -> str | None:
    """The normalised form of a stored value, to compare with the front's normalised keys
    (same rules as ``adapter/matching.py``; duplicated so the driver has no front import)."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    kind = _key_kind(key_name)
    if kind == "email":
        return text.lower()
    if kind in ("url", "domain"):
        text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text.lower())
        text = re.sub(r"^www\.", "", text)
        text = re.split(r"[?#]", text, maxsplit=1)[0]
        if kind == "domain":
            text = text.split("/", 1)[0].split(":", 1)[0]
            return text.rstrip(".") or None
        return text.rstrip("/") or None
    if kind == "phone":
        digits = re.sub(r"\D", "", text)
        return ("+" + digits if text.startswith("+") else digits) or None
    return " ".join(text.casefold().split()) or None


def _variants(key_name: str, value: str) -> list[str]:
    """Stored spellings worth asking for in an ``IN`` filter (values must be lower-case).

    ``IN`` is exact, so a normalised LinkedIn URL is asked for in the spellings people and
    Enginy actually store; the results are re-normalised before matching anyway.
    """
    value = value.lower()
    kind = _key_kind(key_name)
    if kind == "url":
        return [value, f"https://www.{value}", f"https://{value}", f"https://www.{value}/"]
    if kind == "domain":
        return [value, f"www.{value}"]
    return [value]


class RecordsMixin(HubSpotCore):
    """Record operations of :class:`backends.hubspot.HubSpotBackend`."""

    # -- create -------------------------------------------------------------------------------

    async def create_record(self, entity: Entity, record: NewRecord) -> ItemResult:
        """Create one record idempotently (see :meth:`create_records`)."""
        return (await self.create_records(entity, [record]))[0]

    async def create_records(
        self, entity: Entity, records: Sequence[NewRecord]
    ) -> list[ItemResult]:
        """Create records idempotently on their external id.

        ``batch/read`` by the unique external-id property first (the primary store, not the
        lagging search index), then ``batch/create`` for the missing ones with a unique
        ``objectWriteTraceId`` per input so one bad record fails only itself (207). A 409 on a
        duplicate email, or a unique-value clash with a concurrent create, is resolved by
        reading the existing record, which is returned with ``created=False``.
        """
        object_type = OBJECT_TYPES[entity]
        outcome: dict[str, ItemResult] = {}
        with self.client.budget():
            unique: dict[str, NewRecord] = {}
            for record in records:
                unique.setdefault(record.external_id, record)
            for part in chunks(list(unique.values())):
                outcome.update(await self._create_chunk(object_type, part))
        results: list[ItemResult] = []
        seen: set[str] = set()
        for record in records:
            result = outcome[record.external_id]
            if record.external_id in seen and result.ok:
                result = ItemResult(crm_id=result.crm_id, created=False)
            seen.add(record.external_id)
            results.append(result)
        return results

    async def _create_chunk(
        self, object_type: str, records: Sequence[NewRecord]
    ) -> dict[str, ItemResult]:
        ext = self.options.external_id_property
        outcome: dict[str, ItemResult] = {}
        existing = await self._read_by_external_id(object_type, [r.external_id for r in records])
        pending: list[tuple[NewRecord, dict[str, str]]] = []
        for record in records:
            if record.external_id in existing:
                outcome[record.external_id] = ItemResult(crm_id=existing[record.external_id])
                continue
            properties, error = await self.catalog.prepare(object_type, record.fields)
            if error is not None:
                outcome[record.external_id] = ItemResult(error=error)
                continue
            properties[ext] = record.external_id
            pending.append((record, properties))
        # HubSpot allows one contact per email: later inputs sharing an email wait for the first.
        followers: dict[str, str] = {}
        if object_type == "contacts":
            leaders: dict[str, str] = {}
            kept = []
            for record, properties in pending:
                email = (properties.get("email") or "").strip().lower()
                if email and email in leaders:
                    followers[record.external_id] = leaders[email]
                else:
                    if email:
                        leaders[email] = record.external_id
                    kept.append((record, properties))
            pending = kept
        if pending:
            outcome.update(await self._create_missing(object_type, pending))
        for follower, leader in followers.items():
            lead = outcome[leader]
            outcome[follower] = ItemResult(crm_id=lead.crm_id, error=lead.error, created=False)
        return outcome

    async def _read_by_external_id(self, object_type: str, ids: Sequence[str]) -> dict[str, str]:
        ext = self.options.external_id_property
        found = await self.batch_read(object_type, ids, [ext], id_property=ext)
        return self._oldest_by(object_type, found, ext)

    def _oldest_by(
        self, object_type: str, objects: Sequence[Mapping[str, Any]], prop: str
    ) -> dict[str, str]:
        by_value: dict[str, str] = {}
        for obj in sorted(objects, key=lambda o: int(str(o.get("id", "0")) or 0)):
            value = (obj.get("properties") or {}).get(prop)
            if value:
                by_value.setdefault(
                    str(value).lower() if prop == "email" else str(value), str(obj["id"])
                )
                self._known[(object_type, str(obj["id"]))] = True
        return by_value

    async def _create_missing(
        self, object_type: str, pending: list[tuple[NewRecord, dict[str, str]]]
    ) -> dict[str, ItemResult]:
        outcome: dict[str, ItemResult] = {}
        # Each round either creates or resolves at least one record; three rounds cover a 409
        # (duplicate email) followed by a concurrent unique-value clash.
        for _round in range(4):
            if not pending:
                break
            resolved = await self._create_round(object_type, pending, outcome)
            pending = [(r, p) for r, p in pending if r.external_id not in outcome]
            if not resolved:
                break
        for record, _ in pending:
            outcome[record.external_id] = ItemResult(
                error=Conflict("HubSpot kept refusing the create as a duplicate")
            )
        return outcome

    async def _create_round(
        self,
        object_type: str,
        pending: list[tuple[NewRecord, dict[str, str]]],
        outcome: dict[str, ItemResult],
    ) -> bool:
        traces = {f"enginy-{i}": record for i, (record, _) in enumerate(pending)}
        body = {
            "inputs": [
                {"properties": props, "associations": [], "objectWriteTraceId": f"enginy-{i}"}
                for i, (_, props) in enumerate(pending)
            ]
        }
        response = await self.client.request(
            "POST", self.client.paths.batch(object_type, "create"), json=body, accept=(400, 409)
        )
        data = response.json_dict()
        if response.status == 409:
            log.info("hubspot: batch create conflict: %s", data.get("message"))
            return await self._resolve_conflicts(object_type, pending, outcome, data)
        if response.status == 400:
            return await self._split_invalid(object_type, pending, outcome, data)
        ext = self.options.external_id_property
        by_ext = {record.external_id: record for record, _ in pending}
        progress = False
        for obj in data.get("results") or []:
            record = traces.get(str(obj.get("objectWriteTraceId") or "")) or by_ext.get(
                str((obj.get("properties") or {}).get(ext) or "")
            )
            if record is not None:
                outcome[record.external_id] = ItemResult(crm_id=str(obj["id"]), created=True)
                self._known[(object_type, str(obj["id"]))] = True
                progress = True
        failures: dict[str, BackendError] = {}
        for item in data.get("errors") or []:
            for trace in (item.get("context") or {}).get("objectWriteTraceId") or []:
                record = traces.get(str(trace))
                if record is not None:
                    failures[record.external_id] = item_error(item)
        unresolved = [(r, p) for r, p in pending if r.external_id not in outcome]
        if unresolved:
            # Read back before reporting: a failed input may clash with a concurrent create
            # of the same external id (HubSpot reports unique-value clashes as conflicts or as
            # validation errors), and an input with no outcome at all (a 207 with empty
            # arrays has been seen) may or may not exist.
            progress |= await self._resolve_conflicts(object_type, unresolved, outcome, {})
        for external_id, error in failures.items():
            if external_id not in outcome:
                outcome[external_id] = ItemResult(error=error)
                progress = True
        return progress

    async def _resolve_conflicts(
        self,
        object_type: str,
        pending: list[tuple[NewRecord, dict[str, str]]],
        outcome: dict[str, ItemResult],
        data: Mapping[str, Any],
    ) -> bool:
        """Map inputs to records that already exist: by external id (a concurrent create),
        then, for contacts, by email (HubSpot's 409 names one existing id in its message)."""
        before = len(outcome)
        existing = await self._read_by_external_id(object_type, [r.external_id for r, _ in pending])
        for record, _ in pending:
            if record.external_id in existing:
                outcome[record.external_id] = ItemResult(crm_id=existing[record.external_id])
        left = [(r, p) for r, p in pending if r.external_id not in outcome]
        if object_type == "contacts" and left:
            emails = [p["email"].strip().lower() for _, p in left if p.get("email")]
            found = await self.batch_read(object_type, emails, ["email"], id_property="email")
            by_email = self._oldest_by(object_type, found, "email")
            for record, props in left:
                crm_id = by_email.get((props.get("email") or "").strip().lower())
                if crm_id:
                    log.info(
                        "hubspot: contact %s resolved to existing %s by email",
                        record.external_id,
                        crm_id,
                    )
                    outcome[record.external_id] = ItemResult(crm_id=crm_id)
        named = existing_id(str(data.get("message") or ""))
        if len(outcome) == before and named and len(pending) == 1:
            outcome[pending[0][0].external_id] = ItemResult(crm_id=named)
        return len(outcome) > before

    async def _split_invalid(
        self,
        object_type: str,
        pending: list[tuple[NewRecord, dict[str, str]]],
        outcome: dict[str, ItemResult],
        data: Mapping[str, Any],
    ) -> bool:
        """A whole-batch 400 (HubSpot did not give per-input results): a single input gets the
        error; larger batches are halved until the bad record is alone."""
        if len(pending) == 1:
            if not await self._resolve_conflicts(object_type, pending, outcome, {}):
                outcome[pending[0][0].external_id] = ItemResult(error=item_error(data))
            return True
        middle = len(pending) // 2
        progress = False
        for half in (pending[:middle], pending[middle:]):
            progress |= await self._create_round(object_type, half, outcome)
        return progress

    # -- find / get ----------------------------------------------------------------------------

    async def find_records(
        self, entity: Entity, key: MatchKey, values: Sequence[str]
    ) -> dict[str, StoredRecord]:
        """Find records by one key (see :class:`backends.base.Backend`).

        External id → ``batch/read`` by the external-id property; contact email →
        ``batch/read`` with ``idProperty=email``; any other key → search with lower-cased
        ``IN`` filters on ``key.field``, results re-normalised and the oldest kept.
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
            field = key.field or self.default_field_map.get(entity, {}).get(key.name, key.name)
            if object_type == "contacts" and field == "email":
                lowered = [v.lower() for v in wanted]
                found = await self.batch_read(object_type, lowered, properties, id_property="email")
                return await self._index(object_type, found, "email", wanted, key_name="email")
            found = await self._search_in(object_type, field, key.name, wanted, properties)
            return await self._index(object_type, found, field, wanted, key_name=key.name)

    async def _index(
        self,
        object_type: str,
        found: Sequence[Mapping[str, Any]],
        prop: str,
        wanted: Sequence[str],
        *,
        key_name: str = "",
        exact: bool = False,
    ) -> dict[str, StoredRecord]:
        wanted_set = set(wanted)
        result: dict[str, StoredRecord] = {}
        # Oldest record wins when several hold the value: ascending numeric id ~ creation order.
        for obj in sorted(found, key=lambda o: (str(o.get("createdAt") or ""), int(o["id"]))):
            raw = (obj.get("properties") or {}).get(prop)
            value = str(raw) if exact and raw else normalise_for_key(key_name or prop, raw)
            if value in wanted_set and value not in result:
                result[value] = await self._to_record(object_type, obj)
        return result

    async def _search_in(
        self,
        object_type: str,
        field: str,
        key_name: str,
        values: Sequence[str],
        properties: Sequence[str],
    ) -> list[dict[str, Any]]:
        """Search ``field IN values`` (lower-cased, as HubSpot requires), chunked to stay under
        the 3,000-character body limit, paged by 200 up to HubSpot's 10,000 results."""
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

        if values and len(json.dumps(body_for(_variants(key_name, values[0]), "10000"))) > (
            SEARCH_BODY_LIMIT // 2
        ):
            # Many custom properties: their names alone would eat the body limit. Search for
            # ids only and read the records with batch/read (one more call, no size limit).
            names, reread = [field, self.options.external_id_property], True
        # Fill each search up to the body limit (measured on the real JSON, "after" included).
        groups: list[list[str]] = []
        batch: list[str] = []
        for value in values:
            spellings = _variants(key_name, value)
            trial = batch + spellings
            too_big = len(json.dumps(body_for(trial, "10000"))) > SEARCH_BODY_LIMIT
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
                body = body_for(group, after)
                response = await self.client.request(
                    "POST", self.client.paths.search(object_type), json=body, search=True
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
        """Fetch records by id with ``batch/read`` (unknown ids are absent)."""
        object_type = OBJECT_TYPES[entity]
        ids = [i for i in dict.fromkeys(crm_ids) if is_record_id(i)]
        if not ids:
            return {}
        with self.client.budget():
            properties = await self._read_properties(object_type)
            found = await self.batch_read(object_type, ids, properties)
            records = [await self._to_record(object_type, obj) for obj in found]
        return {r.crm_id: r for r in records if r.crm_id in set(ids)}

    # -- update ---------------------------------------------------------------------------------

    async def update_record(self, entity: Entity, update: RecordUpdate) -> ItemResult:
        """Partially update one record (see :meth:`update_records`)."""
        return (await self.update_records(entity, [update]))[0]

    async def update_records(
        self, entity: Entity, updates: Sequence[RecordUpdate]
    ) -> list[ItemResult]:
        """``batch/update`` by record id (HubSpot cannot update by email), 100 per call, each
        input with an ``objectWriteTraceId``; an unknown id or rejected value fails only its
        item. Cleared fields are sent as ``""``."""
        object_type = OBJECT_TYPES[entity]
        results: list[ItemResult | None] = [None] * len(updates)
        pending: list[tuple[int, str, dict[str, str]]] = []
        with self.client.budget():
            for index, update in enumerate(updates):
                if not is_record_id(update.crm_id):
                    results[index] = ItemResult(
                        error=NotFound(f"No record exists with ID: {update.crm_id}")
                    )
                    continue
                fields = dict(update.fields)
                fields.pop(self.options.external_id_property, None)
                properties, error = await self.catalog.prepare(object_type, fields)
                if error is not None:
                    results[index] = ItemResult(error=error)
                    continue
                clear, _ = await self.catalog.prepare(object_type, dict.fromkeys(update.clear, ""))
                properties.update(clear)
                pending.append((index, update.crm_id, properties))
            # HubSpot rejects a batch naming one id twice: later updates of an id go in a later
            # call, keeping their order.
            while pending:
                batch: list[tuple[int, str, dict[str, str]]] = []
                later: list[tuple[int, str, dict[str, str]]] = []
                ids: set[str] = set()
                for item in pending:
                    if item[1] in ids or len(batch) >= BATCH_LIMIT:
                        later.append(item)
                    else:
                        ids.add(item[1])
                        batch.append(item)
                await self._update_batch(object_type, batch, results)
                pending = later
        return [r if r is not None else ItemResult(error=NotFound("no outcome")) for r in results]

    async def _update_batch(
        self,
        object_type: str,
        batch: Sequence[tuple[int, str, dict[str, str]]],
        results: list[ItemResult | None],
    ) -> None:
        traces = {f"enginy-{index}": (index, crm_id) for index, crm_id, _ in batch}
        body = {
            "inputs": [
                {"id": crm_id, "properties": props, "objectWriteTraceId": f"enginy-{index}"}
                for index, crm_id, props in batch
            ]
        }
        response = await self.client.request(
            "POST", self.client.paths.batch(object_type, "update"), json=body, accept=(400, 404)
        )
        data = response.json_dict()
        if response.status in (400, 404):
            if len(batch) == 1:
                position, crm_id, _ = batch[0]
                error: BackendError = item_error(data)
                if response.status == 404:
                    error = NotFound(f"No record exists with ID: {crm_id}")
                results[position] = ItemResult(error=error)
                return
            middle = len(batch) // 2
            await self._update_batch(object_type, batch[:middle], results)
            await self._update_batch(object_type, batch[middle:], results)
            return
        by_id = {crm_id: index for index, crm_id, _ in batch}
        for obj in data.get("results") or []:
            trace = traces.get(str(obj.get("objectWriteTraceId") or ""))
            index: int | None = trace[0] if trace else by_id.get(str(obj.get("id")))
            if index is not None:
                results[index] = ItemResult(crm_id=str(obj.get("id")))
        for item in data.get("errors") or []:
            context = item.get("context") or {}
            for trace_id in context.get("objectWriteTraceId") or []:
                if str(trace_id) in traces:
                    index, crm_id = traces[str(trace_id)]
                    error = item_error(item)
                    if isinstance(error, NotFound):
                        error = NotFound(f"No record exists with ID: {crm_id} ({error.message})")
                    results[index] = ItemResult(error=error)
            for crm_id in context.get("ids") or []:
                if str(crm_id) in by_id and results[by_id[str(crm_id)]] is None:
                    results[by_id[str(crm_id)]] = ItemResult(error=item_error(item))
        for index, crm_id, _ in batch:
            if results[index] is None:
                # HubSpot has answered 207 with neither a result nor an error for bad ids.
                results[index] = ItemResult(error=NotFound(f"No record exists with ID: {crm_id}"))
