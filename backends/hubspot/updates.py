"""Partial updates of contacts and companies: ``batch/update`` by record id, one call per 100.

The driver's key properties follow the fields they come from (:meth:`OwnedKeysMixin.
owned_changes`). A key another record already holds (a second contact given the same LinkedIn
URL, a company moved to a domain another company has) must not cost Enginy its update: HubSpot
refuses the whole input for a unique value, so the input is sent once more with that key
cleared, and the key stays with the record that had it first, as on create.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from backends.base import BackendError, Conflict, Entity, ItemResult, NotFound, RecordUpdate
from backends.hubspot.core import BATCH_LIMIT, OBJECT_TYPES, is_record_id
from backends.hubspot.errors import item_error
from backends.hubspot.finding import FindingMixin

__all__ = ["UpdatesMixin"]

log = logging.getLogger("backends.hubspot")

#: (position in the request, record id, properties)
_Input = tuple[int, str, dict[str, str]]


class UpdatesMixin(FindingMixin):
    """Record updates of :class:`backends.hubspot.HubSpotBackend`."""

    async def update_record(self, entity: Entity, update: RecordUpdate) -> ItemResult:
        """Partially update one record (see :meth:`update_records`)."""
        return (await self.update_records(entity, [update]))[0]

    async def update_records(
        self, entity: Entity, updates: Sequence[RecordUpdate]
    ) -> list[ItemResult]:
        """``batch/update`` by record id (HubSpot cannot update by email), 100 per call, each
        input with an ``objectWriteTraceId``; an unknown id or rejected value fails only its
        item. Cleared fields are sent as ``""``; the driver's key properties follow the
        changed fields (a key another record holds is left to it). Idempotent."""
        object_type = OBJECT_TYPES[entity]
        results: list[ItemResult | None] = [None] * len(updates)
        pending: list[_Input] = []
        dropped: dict[int, dict[str, str]] = {}
        unstored: list[tuple[str, dict[str, Any]]] = []
        with self.client.budget():
            for index, update in enumerate(updates):
                if not is_record_id(update.crm_id):
                    results[index] = ItemResult(
                        error=NotFound(f"No record exists with ID: {update.crm_id}")
                    )
                    continue
                fields = {
                    k: v for k, v in update.fields.items() if k not in self.owned_properties()
                }
                prepared = await self.catalog.prepare(object_type, fields)
                if prepared.error is not None:
                    results[index] = ItemResult(error=prepared.error)
                    continue
                properties = prepared.properties
                cleared = await self.catalog.prepare(object_type, dict.fromkeys(update.clear, ""))
                properties.update(cleared.properties)
                properties.update(
                    await self.owned_changes(entity, fields, update.clear, update.match_keys)
                )
                dropped[index] = prepared.dropped
                if prepared.unstored:
                    unstored.append((update.crm_id, prepared.unstored))
                pending.append((index, update.crm_id, properties))
            # HubSpot rejects a batch naming one id twice: later updates of an id go in a later
            # call, keeping their order.
            while pending:
                batch: list[_Input] = []
                later: list[_Input] = []
                ids: set[str] = set()
                for item in pending:
                    if item[1] in ids or len(batch) >= BATCH_LIMIT:
                        later.append(item)
                    else:
                        ids.add(item[1])
                        batch.append(item)
                await self._update_batch(object_type, batch, results)
                await self._without_taken_keys(object_type, batch, results)
                pending = later
            done = {r.crm_id for r in results if r is not None and r.ok}
            await self.note_fields(object_type, [(c, f) for c, f in unstored if c in done])
            if entity is Entity.CONTACT:
                # A new address may make HubSpot create a company for its domain.
                await self.remember_contacts(
                    (update.crm_id, update.fields.get("email"))
                    for update, result in zip(updates, results, strict=True)
                    if result is not None and result.ok and update.fields.get("email")
                )
        out: list[ItemResult] = []
        for index, result in enumerate(results):
            if result is None:
                result = ItemResult(error=NotFound("no outcome"))
            elif result.ok:
                result = ItemResult(crm_id=result.crm_id, dropped=dropped.get(index, {}))
            out.append(result)
        return out

    async def _without_taken_keys(
        self, object_type: str, batch: Sequence[_Input], results: list[ItemResult | None]
    ) -> None:
        """Send again the inputs refused as a conflict that set one of the driver's keys, with
        that key cleared: another record holds the value, and the old one no longer describes
        this record. The key the conflict names, when it names one; else all of them."""
        owned = self.owned_properties() - {self.options.external_id_property}
        again: list[_Input] = []
        for index, crm_id, props in batch:
            result = results[index]
            keys = owned & {k for k, v in props.items() if v}
            if result is None or not isinstance(result.error, Conflict) or not keys:
                continue
            named = {k for k in keys if k in result.error.message}
            cleared = named or keys
            log.info(
                "hubspot: %s %s updated without %s (held by another record): %s",
                object_type,
                crm_id,
                ", ".join(sorted(cleared)),
                result.error.message,
            )
            results[index] = None
            again.append((index, crm_id, {**props, **dict.fromkeys(cleared, "")}))
        if again:
            await self._update_batch(object_type, again, results)

    async def _update_batch(
        self,
        object_type: str,
        batch: Sequence[_Input],
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
            "POST",
            self.client.paths.batch(object_type, "update"),
            json=body,
            accept=(400, 404, 409),
        )
        data = response.json_dict()
        if response.status in (400, 404, 409):
            if len(batch) == 1:
                position, crm_id, _ = batch[0]
                error: BackendError = item_error(data)
                if response.status == 404:
                    error = NotFound(f"No record exists with ID: {crm_id}")
                elif response.status == 409:
                    error = Conflict(error.message)
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
