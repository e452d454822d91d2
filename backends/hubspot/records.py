"""Contacts and companies: idempotent batch creates, de-duplicated.

Call budget for a batch of 100 new records (see ``bench/hubspot.py``): contacts =
``batch/read`` by the external-id property + ``batch/create``; companies = the same plus the
look-ups of :mod:`.adopt` (a ``batch/read`` of the domain key, one more of the domain name key
under a ``domain_any_extension`` key, and a search for companies that hold no key).

Idempotency and de-duplication, all against HubSpot's primary store (never the lagging search,
except for companies that hold no key, which can only add safety):

* an external id already held → that record (``created=False``);
* a contact email already held (HubSpot's own rule: 409 "Contact already exists. Existing
  ID: n") → that contact; the same email twice in one batch → one contact;
* a company domain already held → that company (:mod:`.adopt`); the same domain (or domain
  name, under a ``domain_any_extension`` key) twice in one batch → one company;
* a LinkedIn key held by another record → the record is created without the key (HubSpot
  allows two contacts with one LinkedIn URL; the older one keeps being the match).

A create that races a concurrent one is settled by reading back and trying again, at most
three rounds, through tenacity like every other retry of the driver. Contacts created are
remembered by e-mail domain for a while (:mod:`.autocompanies`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from backends.base import BackendError, Conflict, Entity, ItemResult, NewRecord
from backends.hubspot.adopt import AdoptMixin, Pending
from backends.hubspot.core import OBJECT_TYPES, chunks
from backends.hubspot.errors import existing_id, item_error
from backends.hubspot.properties import Prepared

__all__ = ["RecordsMixin"]

log = logging.getLogger("backends.hubspot")

#: Rounds of create → read back → create again when concurrent writers keep clashing.
CREATE_ROUNDS = 3


class _Unsettled(Exception):
    """Some inputs of a create round neither landed nor failed for good: go again."""


class RecordsMixin(AdoptMixin):
    """Record creates of :class:`backends.hubspot.HubSpotBackend`."""

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

    async def _create_chunk(
        self, entity: Entity, records: Sequence[NewRecord]
    ) -> dict[str, ItemResult]:
        object_type = OBJECT_TYPES[entity]
        ext = self.options.external_id_property
        outcome: dict[str, ItemResult] = {}
        existing = await self.read_by(object_type, ext, [r.external_id for r in records])
        pending: list[Pending] = []
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
            properties.update(await self.owned_values(entity, record.fields, record.match_keys))
            pending.append(Pending(record, properties, prepared.dropped, prepared.unstored))
        if entity is Entity.COMPANY:
            pending = await self.adopt_existing(pending, outcome)
        followers = self._twins(entity, pending)
        pending = [p for p in pending if p.external_id not in followers]
        if pending:
            outcome.update(await self._create_missing(entity, pending))
            await self._note_unstored(object_type, pending, outcome)
            if entity is Entity.CONTACT:
                await self.remember_contacts(
                    (outcome[p.external_id].crm_id or "", p.properties.get("email"))
                    for p in pending
                    if outcome[p.external_id].created
                )
        for follower, leader in followers.items():
            lead = outcome[leader]
            outcome[follower] = ItemResult(crm_id=lead.crm_id, error=lead.error)
        return outcome

    def _twins(self, entity: Entity, pending: list[Pending]) -> dict[str, str]:
        """Inputs that would be a second record for one identity (a contact email, a company
        domain or domain name): ``{follower external id: leader external id}``. A LinkedIn
        key shared in the batch stays with its first holder only."""
        leaders: dict[tuple[str, str], str] = {}
        followers: dict[str, str] = {}
        linkedin: set[str] = set()
        for item in pending:
            identities = self.identities(entity, item)
            leader = next((leaders[i] for i in identities if i in leaders), None)
            if leader is not None:
                followers[item.external_id] = leader
                continue
            for identity in identities:
                leaders[identity] = item.external_id
            key = item.properties.get(self.options.linkedin_key_property)
            if key and key in linkedin:
                del item.properties[self.options.linkedin_key_property]
            elif key:
                linkedin.add(key)
        return followers

    async def _create_missing(
        self, entity: Entity, pending: list[Pending]
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
                    left = [p for p in left if p.external_id not in outcome]
                    if left:
                        raise _Unsettled()
        except _Unsettled:
            for item in left:
                outcome[item.external_id] = ItemResult(
                    error=Conflict("HubSpot kept refusing the create as a duplicate")
                )
        return outcome

    async def _create_round(
        self, entity: Entity, pending: list[Pending], outcome: dict[str, ItemResult]
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
        by_ext = {item.external_id: item for item in pending}
        for obj in data.get("results") or []:
            item = traces.get(str(obj.get("objectWriteTraceId") or "")) or by_ext.get(
                str((obj.get("properties") or {}).get(ext) or "")
            )
            if item is not None:
                outcome[item.external_id] = ItemResult(
                    crm_id=str(obj["id"]), created=True, dropped=item.dropped
                )
                self._known[(object_type, str(obj["id"]))] = True
        failures: dict[str, BackendError] = {}
        for error in data.get("errors") or []:
            for trace in (error.get("context") or {}).get("objectWriteTraceId") or []:
                if str(trace) in traces:
                    failures[traces[str(trace)].record.external_id] = item_error(error)
        unresolved = [p for p in pending if p.external_id not in outcome]
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
        pending: list[Pending],
        outcome: dict[str, ItemResult],
        data: Mapping[str, Any],
    ) -> set[str]:
        """Map inputs to records that already exist (a concurrent create of the external id,
        a contact email, a company's domain keys), and drop a LinkedIn key another record
        holds so that the next round can create the record. Returns the external ids whose
        key was dropped."""
        object_type = OBJECT_TYPES[entity]
        before = len(outcome)
        ext = self.options.external_id_property
        checks: dict[str, dict[str, str]] = {ext: {p.external_id: p.external_id for p in pending}}
        for item in pending:
            for prop, value in self.identities(entity, item):
                if prop == "email" or item.properties.get(prop) == value:  # a stored key only
                    checks.setdefault(prop, {})[item.external_id] = value
        for prop, by_item in checks.items():
            left = {e: v for e, v in by_item.items() if e not in outcome}
            held = await self.read_by(object_type, prop, sorted(set(left.values())))
            for item in pending:
                crm_id = held.get(left.get(item.external_id, ""))
                if crm_id and item.external_id not in outcome:
                    outcome[item.external_id] = ItemResult(crm_id=crm_id, dropped=item.dropped)
        linkedin = self.options.linkedin_key_property
        left_items = [p for p in pending if p.external_id not in outcome]
        keys = [p.properties[linkedin] for p in left_items if p.properties.get(linkedin)]
        taken = await self.read_by(object_type, linkedin, keys)
        stripped: set[str] = set()
        for item in left_items:
            if item.properties.get(linkedin) in taken:
                del item.properties[linkedin]  # the older record keeps the key
                stripped.add(item.external_id)
        named = existing_id(str(data.get("message") or ""))
        if len(outcome) == before and named and len(pending) == 1 and not stripped:
            item = pending[0]
            outcome[item.external_id] = ItemResult(crm_id=named, dropped=item.dropped)
        return stripped

    async def _split_invalid(
        self,
        entity: Entity,
        pending: list[Pending],
        outcome: dict[str, ItemResult],
        data: Mapping[str, Any],
    ) -> None:
        """A whole-batch 400 (HubSpot gave no per-input results): a single input gets the
        error; larger batches are halved until the bad record is alone."""
        if len(pending) == 1:
            await self._resolve_conflicts(entity, pending, outcome, {})
            if pending[0].external_id not in outcome:
                outcome[pending[0].external_id] = ItemResult(error=item_error(data))
            return
        middle = len(pending) // 2
        for half in (pending[:middle], pending[middle:]):
            await self._create_round(entity, half, outcome)

    async def _note_unstored(
        self, object_type: str, pending: Sequence[Pending], outcome: Mapping[str, ItemResult]
    ) -> None:
        """Under ``unknown_properties: note``: the fields with no property go into one note
        per record, on the record's timeline (one ``batch/create`` of notes)."""
        notes = [
            (outcome[p.external_id].crm_id, p.unstored)
            for p in pending
            if p.unstored and outcome.get(p.external_id, ItemResult()).ok
        ]
        await self.note_fields(object_type, [(c, f) for c, f in notes if c])
