"""Contacts and companies: idempotent batch creates, de-duplication, batch updates.

Call budget for a batch of 100 new records (see ``bench/hubspot.py``): contacts =
``batch/read`` by the external-id property + ``batch/create``; companies = the same plus
``batch/read`` by the domain key and one fallback search by domain (companies made by hand or
by HubSpot from contact email domains carry no key). Updates: one ``batch/update``.

Idempotency and de-duplication, all against HubSpot's primary store (never the lagging search,
except for the domain fallback, which can only add safety):

* an external id already held → that record (``created=False``);
* a contact email already held (HubSpot's own rule: 409 "Contact already exists. Existing
  ID: n") → that contact; the same email twice in one batch → one contact;
* a company domain already held (our unique ``enginy_domain_key``, else the ``domain`` field
  of a company made by hand or by HubSpot) → that company, which gets our key so the next
  lookup is exact; the same domain twice in one batch → one company;
* a LinkedIn key held by another record → the record is created without the key (HubSpot
  allows two contacts with one LinkedIn URL; the older one keeps being the match).

A create that races a concurrent one is settled by reading back and trying again, at most
three rounds, through tenacity like every other retry of the driver.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from backends.base import (
    BackendError,
    Conflict,
    Entity,
    ItemResult,
    NewRecord,
    NotFound,
    RecordUpdate,
)
from backends.hubspot.core import BATCH_LIMIT, OBJECT_TYPES, chunks, is_record_id
from backends.hubspot.errors import existing_id, item_error
from backends.hubspot.finding import FindingMixin
from backends.hubspot.keys import KEY_KINDS, normalise_for_key
from backends.hubspot.properties import Prepared

__all__ = ["RecordsMixin"]

log = logging.getLogger("backends.hubspot")

#: Rounds of create → read back → create again when concurrent writers keep clashing.
CREATE_ROUNDS = 3


@dataclass(slots=True)
class _Pending:
    """One record on its way to ``batch/create``."""

    record: NewRecord
    properties: dict[str, str]
    dropped: dict[str, str] = field(default_factory=dict)
    unstored: dict[str, Any] = field(default_factory=dict)


class _Unsettled(Exception):
    """Some inputs of a create round neither landed nor failed for good: go again."""


def _identity(item: _Pending, prop: str) -> str:
    """The value of ``prop`` that identifies ``item`` (its external id, email or domain key)."""
    value = item.properties.get(prop) or ""
    return value.strip().lower() if prop == "email" else value


class RecordsMixin(FindingMixin):
    """Record writes of :class:`backends.hubspot.HubSpotBackend`."""

    # -- create -------------------------------------------------------------------------------

    async def create_record(self, entity: Entity, record: NewRecord) -> ItemResult:
        """Create one record idempotently (see :meth:`create_records`)."""
        return (await self.create_records(entity, [record]))[0]

    async def create_records(
        self, entity: Entity, records: Sequence[NewRecord]
    ) -> list[ItemResult]:
        """Create records idempotently on their external id, de-duplicated as the module
        docstring says; one result per input, in order. Fields the portal could not take
        are named in :attr:`ItemResult.dropped`; the record is written without them."""
        outcome: dict[str, ItemResult] = {}
        with self.client.budget():
            unique: dict[str, NewRecord] = {}
            for record in records:
                unique.setdefault(record.external_id, record)
            for part in chunks(list(unique.values())):
                outcome.update(await self._create_chunk(entity, part))
        results: list[ItemResult] = []
        seen: set[str] = set()
        for record in records:
            result = outcome[record.external_id]
            if record.external_id in seen and result.ok:
                result = ItemResult(crm_id=result.crm_id, dropped=result.dropped)
            seen.add(record.external_id)
            results.append(result)
        return results

    def _keys_of(self, entity: Entity, record: NewRecord) -> dict[str, str]:
        """``{key property: normalised value}`` for the driver-owned keys of ``record``: the
        front's match keys, or the default-mapped field normalised here when called directly."""
        out: dict[str, str] = {}
        for key_name, kind in KEY_KINDS[entity].items():
            prop = self.key_property(entity, key_name)
            value = record.match_keys.get(key_name)
            if value is None:
                field_name = self.default_field_map.get(entity, {}).get(key_name, key_name)
                value = normalise_for_key(kind, record.fields.get(field_name))
            if prop and value:
                out[prop] = value
        return out

    async def _create_chunk(
        self, entity: Entity, records: Sequence[NewRecord]
    ) -> dict[str, ItemResult]:
        object_type = OBJECT_TYPES[entity]
        ext = self.options.external_id_property
        outcome: dict[str, ItemResult] = {}
        existing = await self._read_by(object_type, ext, [r.external_id for r in records])
        definitions = await self.catalog.definitions(object_type)
        pending: list[_Pending] = []
        for record in records:
            if record.external_id in existing:
                outcome[record.external_id] = ItemResult(crm_id=existing[record.external_id])
                continue
            prepared: Prepared = await self.catalog.prepare(object_type, record.fields)
            if prepared.error is not None:
                outcome[record.external_id] = ItemResult(error=prepared.error)
                continue
            properties = prepared.properties
            properties[ext] = record.external_id
            for prop, value in self._keys_of(entity, record).items():
                if prop in definitions:
                    properties[prop] = value
            pending.append(_Pending(record, properties, prepared.dropped, prepared.unstored))
        if entity is Entity.COMPANY:
            pending = await self._adopt_by_domain(pending, outcome)
        followers = self._twins(entity, pending)
        pending = [p for p in pending if p.record.external_id not in followers]
        if pending:
            outcome.update(await self._create_missing(entity, pending))
            await self._note_unstored(object_type, pending, outcome)
        for follower, leader in followers.items():
            lead = outcome[leader]
            outcome[follower] = ItemResult(crm_id=lead.crm_id, error=lead.error)
        return outcome

    async def _read_by(self, object_type: str, prop: str, values: Sequence[str]) -> dict[str, str]:
        """``{value: oldest record id}`` by a unique property (``batch/read``)."""
        if not values:
            return {}
        found = await self.batch_read(object_type, values, [prop], id_property=prop)
        return self._oldest_by(object_type, found, prop)

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

    def _twins(self, entity: Entity, pending: list[_Pending]) -> dict[str, str]:
        """Inputs that would be a second record for one identity (a contact email, a company
        domain key): ``{follower external id: leader external id}``. A LinkedIn key shared in
        the batch stays with its first holder only."""
        same = "email" if entity is Entity.CONTACT else self.options.domain_key_property
        leaders: dict[str, str] = {}
        followers: dict[str, str] = {}
        linkedin: set[str] = set()
        for item in pending:
            value = (item.properties.get(same) or "").strip().lower()
            if value and value in leaders:
                followers[item.record.external_id] = leaders[value]
                continue
            if value:
                leaders[value] = item.record.external_id
            key = item.properties.get(self.options.linkedin_key_property)
            if key and key in linkedin:
                del item.properties[self.options.linkedin_key_property]
            elif key:
                linkedin.add(key)
        return followers

    async def _adopt_by_domain(
        self, pending: list[_Pending], outcome: dict[str, ItemResult]
    ) -> list[_Pending]:
        """Companies whose domain already has a company: answer with it instead of creating
        a second one. The domain key first (exact, immediate), then a search on ``domain``
        for companies without the key (made by hand, or by HubSpot from contact email
        domains; subject to the search index's lag). An adopted company gets our key (and
        the external id when it has none), so the next lookup is exact."""
        key_prop = self.options.domain_key_property
        domains = {p.record.external_id: p.properties.get(key_prop) for p in pending}
        wanted = sorted({d for d in domains.values() if d})
        if not wanted:
            return pending
        held = await self._read_by("companies", key_prop, wanted)
        missing = [d for d in wanted if d not in held]
        searched: dict[str, str] = {}
        if missing and "domain" in await self.catalog.definitions("companies"):
            found = await self._search_in("companies", "domain", "domain", missing, ["domain"])
            for obj in sorted(found, key=lambda o: int(str(o.get("id") or 0))):
                value = normalise_for_key("domain", (obj.get("properties") or {}).get("domain"))
                if value in missing and value not in searched:
                    searched[value] = str(obj["id"])
        adopted: dict[str, str] = {}
        rest: list[_Pending] = []
        for item in pending:
            domain = domains[item.record.external_id]
            crm_id = held.get(domain or "") or searched.get(domain or "")
            if crm_id is None:
                rest.append(item)
                continue
            outcome[item.record.external_id] = ItemResult(crm_id=crm_id, dropped=item.dropped)
            log.info(
                "hubspot: company %s is the existing company %s (domain %s)",
                item.record.external_id,
                crm_id,
                domain,
            )
            if crm_id not in held.values():
                adopted.setdefault(crm_id, domain or "")
        if adopted:
            await self._tag_adopted(adopted, pending, outcome)
        return rest

    async def _tag_adopted(
        self,
        adopted: Mapping[str, str],
        pending: Sequence[_Pending],
        outcome: Mapping[str, ItemResult],
    ) -> None:
        """Write our domain key (and an external id where none is set) on companies found by
        search; best effort, one ``batch/update``."""
        ext = self.options.external_id_property
        current = {
            str(o["id"]): (o.get("properties") or {}).get(ext)
            for o in await self.batch_read("companies", list(adopted), [ext])
        }
        owner = {
            outcome[p.record.external_id].crm_id: p.record.external_id
            for p in pending
            if p.record.external_id in outcome
        }
        inputs = []
        for crm_id, domain in adopted.items():
            props = {self.options.domain_key_property: domain}
            if not current.get(crm_id) and crm_id in owner:
                props[ext] = owner[crm_id] or ""
            inputs.append({"id": crm_id, "properties": props})
        response = await self.client.request(
            "POST",
            self.client.paths.batch("companies", "update"),
            json={"inputs": inputs},
            accept=(400, 409),
        )
        if not response.ok:
            log.info("hubspot: could not tag adopted companies: %s", response.json_dict())

    async def _create_missing(
        self, entity: Entity, pending: list[_Pending]
    ) -> dict[str, ItemResult]:
        outcome: dict[str, ItemResult] = {}
        left = list(pending)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(CREATE_ROUNDS),
            retry=retry_if_exception_type(_Unsettled),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self._create_round(entity, left, outcome)
                    left = [p for p in left if p.record.external_id not in outcome]
                    if left:
                        raise _Unsettled()
        except _Unsettled:
            for item in left:
                outcome[item.record.external_id] = ItemResult(
                    error=Conflict("HubSpot kept refusing the create as a duplicate")
                )
        return outcome

    async def _create_round(
        self, entity: Entity, pending: list[_Pending], outcome: dict[str, ItemResult]
    ) -> None:
        object_type = OBJECT_TYPES[entity]
        traces = {f"enginy-{i}": item for i, item in enumerate(pending)}
        body = {
            "inputs": [
                {"properties": item.properties, "associations": [], "objectWriteTraceId": trace}
                for trace, item in traces.items()
            ]
        }
        response = await self.client.request(
            "POST", self.client.paths.batch(object_type, "create"), json=body, accept=(400, 409)
        )
        data = response.json_dict()
        if response.status == 409:
            log.info("hubspot: batch create conflict: %s", data.get("message"))
            await self._resolve_conflicts(entity, pending, outcome, data)
            return
        if response.status == 400:
            await self._split_invalid(entity, pending, outcome, data)
            return
        ext = self.options.external_id_property
        by_ext = {item.record.external_id: item for item in pending}
        for obj in data.get("results") or []:
            item = traces.get(str(obj.get("objectWriteTraceId") or "")) or by_ext.get(
                str((obj.get("properties") or {}).get(ext) or "")
            )
            if item is not None:
                outcome[item.record.external_id] = ItemResult(
                    crm_id=str(obj["id"]), created=True, dropped=item.dropped
                )
                self._known[(object_type, str(obj["id"]))] = True
        failures: dict[str, BackendError] = {}
        for error in data.get("errors") or []:
            for trace in (error.get("context") or {}).get("objectWriteTraceId") or []:
                if str(trace) in traces:
                    failures[traces[str(trace)].record.external_id] = item_error(error)
        unresolved = [p for p in pending if p.record.external_id not in outcome]
        stripped: set[str] = set()
        if unresolved:
            # Read back before reporting: a failed input may clash with a concurrent create
            # (HubSpot reports unique-value clashes as conflicts or as validation errors), and
            # an input with no outcome at all (a 207 with empty arrays) may or may not exist.
            stripped = await self._resolve_conflicts(entity, unresolved, outcome, {})
        for external_id, failure in failures.items():
            # An input whose clashing LinkedIn key was just removed goes in the next round.
            if external_id not in outcome and external_id not in stripped:
                outcome[external_id] = ItemResult(error=failure)

    async def _resolve_conflicts(
        self,
        entity: Entity,
        pending: list[_Pending],
        outcome: dict[str, ItemResult],
        data: Mapping[str, Any],
    ) -> set[str]:
        """Map inputs to records that already exist (a concurrent create of the external id,
        a contact email, a company domain key), and drop a LinkedIn key another record holds
        so that the next round can create the record. Returns the external ids whose key was
        dropped."""
        object_type = OBJECT_TYPES[entity]
        before = len(outcome)
        identity = "email" if entity is Entity.CONTACT else self.options.domain_key_property
        for prop in (self.options.external_id_property, identity):
            left = [p for p in pending if p.record.external_id not in outcome]
            values = {p.record.external_id: _identity(p, prop) for p in left}
            held = await self._read_by(object_type, prop, [v for v in values.values() if v])
            for item in left:
                crm_id = held.get(values[item.record.external_id])
                if crm_id:
                    outcome[item.record.external_id] = ItemResult(
                        crm_id=crm_id, dropped=item.dropped
                    )
        linkedin = self.options.linkedin_key_property
        left = [p for p in pending if p.record.external_id not in outcome]
        keys = [p.properties[linkedin] for p in left if p.properties.get(linkedin)]
        taken = await self._read_by(object_type, linkedin, keys)
        stripped: set[str] = set()
        for item in left:
            if item.properties.get(linkedin) in taken:
                del item.properties[linkedin]  # the older record keeps the key
                stripped.add(item.record.external_id)
        named = existing_id(str(data.get("message") or ""))
        if len(outcome) == before and named and len(pending) == 1 and not stripped:
            item = pending[0]
            outcome[item.record.external_id] = ItemResult(crm_id=named, dropped=item.dropped)
        return stripped

    async def _split_invalid(
        self,
        entity: Entity,
        pending: list[_Pending],
        outcome: dict[str, ItemResult],
        data: Mapping[str, Any],
    ) -> None:
        """A whole-batch 400 (HubSpot gave no per-input results): a single input gets the
        error; larger batches are halved until the bad record is alone."""
        if len(pending) == 1:
            await self._resolve_conflicts(entity, pending, outcome, {})
            if pending[0].record.external_id not in outcome:
                outcome[pending[0].record.external_id] = ItemResult(error=item_error(data))
            return
        middle = len(pending) // 2
        for half in (pending[:middle], pending[middle:]):
            await self._create_round(entity, half, outcome)

    async def _note_unstored(
        self, object_type: str, pending: Sequence[_Pending], outcome: Mapping[str, ItemResult]
    ) -> None:
        """Under ``unknown_properties: note``: the fields with no property go into one note
        per record, on the record's timeline (one ``batch/create`` of notes)."""
        notes = [
            (outcome[p.record.external_id].crm_id, p.unstored)
            for p in pending
            if p.unstored and outcome.get(p.record.external_id, ItemResult()).ok
        ]
        await self.note_fields(object_type, [(c, f) for c, f in notes if c])

    # -- update ---------------------------------------------------------------------------------

    async def update_record(self, entity: Entity, update: RecordUpdate) -> ItemResult:
        """Partially update one record (see :meth:`update_records`)."""
        return (await self.update_records(entity, [update]))[0]

    async def update_records(
        self, entity: Entity, updates: Sequence[RecordUpdate]
    ) -> list[ItemResult]:
        """``batch/update`` by record id (HubSpot cannot update by email), 100 per call, each
        input with an ``objectWriteTraceId``; an unknown id or rejected value fails only its
        item. Cleared fields are sent as ``""``; the driver's key properties follow the
        changed match keys. Idempotent."""
        object_type = OBJECT_TYPES[entity]
        results: list[ItemResult | None] = [None] * len(updates)
        pending: list[tuple[int, str, dict[str, str]]] = []
        dropped: dict[int, dict[str, str]] = {}
        unstored: list[tuple[str, dict[str, Any]]] = []
        with self.client.budget():
            definitions = await self.catalog.definitions(object_type)
            for index, update in enumerate(updates):
                if not is_record_id(update.crm_id):
                    results[index] = ItemResult(
                        error=NotFound(f"No record exists with ID: {update.crm_id}")
                    )
                    continue
                fields = dict(update.fields)
                fields.pop(self.options.external_id_property, None)
                prepared = await self.catalog.prepare(object_type, fields)
                if prepared.error is not None:
                    results[index] = ItemResult(error=prepared.error)
                    continue
                properties = prepared.properties
                cleared = await self.catalog.prepare(object_type, dict.fromkeys(update.clear, ""))
                properties.update(cleared.properties)
                for key_name in KEY_KINDS[entity]:
                    prop = self.key_property(entity, key_name)
                    if prop in definitions and key_name in update.match_keys:
                        properties[prop or ""] = update.match_keys[key_name] or ""
                dropped[index] = prepared.dropped
                if prepared.unstored:
                    unstored.append((update.crm_id, prepared.unstored))
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
            done = {r.crm_id for r in results if r is not None and r.ok}
            await self.note_fields(object_type, [(c, f) for c, f in unstored if c in done])
        out: list[ItemResult] = []
        for index, result in enumerate(results):
            if result is None:
                result = ItemResult(error=NotFound("no outcome"))
            elif result.ok:
                result = ItemResult(crm_id=result.crm_id, dropped=dropped.get(index, {}))
            out.append(result)
        return out

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
