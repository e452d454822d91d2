"""Contacts and companies: exactly-once creates, finds by strategy, reads and partial updates.

**Exactly once.** An upsert keyed by the external id (``create.upsert``) is exactly once by
itself: it is sent, and retried, with no look-up. Otherwise a create first looks the external
id up (``find.externalId``): a record that
has it is the answer (``created=False``). Otherwise the record is sent with its external id
in it. When the answer is lost (a timeout, a dropped connection, a 5xx: the CRM may have
written the record), the driver does not send the create again blindly: it waits, looks the
external id up again, and sends again only when nothing holds it. An API that honours an
idempotency header (``create.idempotency_header``) is instead sent the same key on every
attempt (derived from the entity and external id, so Enginy's own retries reuse it too). A
create refused as "already exists" (``conflict``) answers with the record found by the
record's match keys (``adopt_on_conflict``), which gets the external id when it has none.
Concurrent creates of one external id in this process take turns (a lock per id).

**Batches.** Without a native batch endpoint, a batch is one call per record, ``concurrency``
at a time. With one (``create.batch``), records go ``max_size`` at a time; an ``atomic`` batch
refused for one record is sent again record by record, and a batch whose answer was lost is
looked up by external ids (one ``IN`` filter per chunk) before what is missing is sent again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from backends.base import (
    BackendError,
    Conflict,
    Entity,
    InvalidRecord,
    ItemResult,
    MatchKey,
    NewRecord,
    NotFound,
    RateLimited,
    RecordUpdate,
    StoredRecord,
    Unavailable,
)
from backends.rest.lookups import FindingMixin
from backends.rest.paths import MISSING, get_path

__all__ = ["RecordsMixin"]

log = logging.getLogger("backends.rest")


class _Again(Exception):
    """The create's answer was lost or refused for now, and nothing holds its external id."""

    def __init__(self, error: BackendError, wait: float) -> None:
        super().__init__(error.message)
        self.error, self.wait = error, wait


def idempotency_key(entity: Entity, external_id: str) -> str:
    """The same key for every attempt at creating one record (Enginy's retries included)."""
    digest = hashlib.sha256(f"{entity.value}\0{external_id}".encode()).hexdigest()[:32]
    return f"enginy-{entity.value}-{digest}"


class RecordsMixin(FindingMixin):
    """Record operations of :class:`backends.rest.RestBackend`."""

    # -- create -------------------------------------------------------------------------------

    async def create_record(self, entity: Entity, record: NewRecord) -> ItemResult:
        """Create one record exactly once (see the module docstring)."""
        return (await self.create_records(entity, [record]))[0]

    async def create_records(
        self, entity: Entity, records: Sequence[NewRecord]
    ) -> list[ItemResult]:
        """Create records exactly once; one result per input, in order (the same external id
        twice gives both the first one's record)."""
        unique: dict[str, NewRecord] = {}
        for record in records:
            unique.setdefault(record.external_id, record)
        batch = self.resource(entity).create.batch
        with self.client.budget():
            if batch is not None and len(unique) > 1:
                outcome = await self._create_batched(entity, list(unique.values()))
            else:
                # One look-up for the whole batch (a list read or an IN filter where the
                # manifest has one), then one create per record not found.
                upsert = self.resource(entity).create.upsert
                held = {} if upsert else await self._by_external_id(entity, list(unique))
                results = await self.gather(
                    [
                        partial(self._create_one, entity, r, held.get(r.external_id))
                        for r in unique.values()
                    ]
                )
                outcome = dict(zip(unique, results, strict=True))
        for external_id, result in outcome.items():
            if result.crm_id is not None:
                self.known[(entity, result.crm_id)] = True
                self.made[(entity, external_id)] = result.crm_id
        answers: list[ItemResult] = []
        seen: set[str] = set()
        for record in records:
            result = outcome[record.external_id]
            if record.external_id in seen and result.ok:
                result = ItemResult(crm_id=result.crm_id, dropped=result.dropped)
            seen.add(record.external_id)
            answers.append(result)
        return answers

    async def _create_one(
        self, entity: Entity, record: NewRecord, held: StoredRecord | None = None
    ) -> ItemResult:
        """Create one record found by nothing in the batch's look-up (``held``: what it found).
        Under the external id's lock, a record an earlier call of this process made meanwhile
        is the answer."""
        async with self.lock(entity.value, record.external_id):
            made = self.made.get((entity, record.external_id))
            if made is not None:
                return ItemResult(crm_id=made)
            if held is not None:
                return ItemResult(crm_id=held.crm_id)
            try:
                fields, dropped = await self.codecs[entity].encode(
                    record.fields, external_id=record.external_id, keys=record.match_keys
                )
            except InvalidRecord as exc:
                return ItemResult(error=exc)
            return await self._send_create(entity, record, fields, dropped)

    async def _send_create(
        self,
        entity: Entity,
        record: NewRecord,
        fields: Mapping[str, Any],
        dropped: dict[str, str],
    ) -> ItemResult:
        create = self.resource(entity).create
        header = create.idempotency_header
        headers = {header: idempotency_key(entity, record.external_id)} if header else None
        ctx = {"fields": fields, "external_id": record.external_id, "keys": record.match_keys}
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_Again),
            stop=stop_after_attempt(self.options.max_attempts),
            wait=lambda state: _wait_of(state.outcome.exception() if state.outcome else None),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._attempt_create(
                        entity, record, ctx, dropped, headers, attempt.retry_state.attempt_number
                    )
        except _Again as exc:
            raise exc.error from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt_create(
        self,
        entity: Entity,
        record: NewRecord,
        ctx: Mapping[str, Any],
        dropped: dict[str, str],
        headers: Mapping[str, str] | None,
        number: int,
    ) -> ItemResult:
        create = self.resource(entity).create
        try:
            answer = await self.client.send(
                create.request,
                create.response,
                ctx,
                idempotent=headers is not None or create.upsert,
                headers=headers,
            )
        except Conflict as exc:
            adopted = await self._adopt(entity, record, exc)
            return ItemResult(crm_id=adopted, dropped=dropped) if adopted else ItemResult(error=exc)
        except (InvalidRecord, NotFound) as exc:
            return ItemResult(error=exc)
        except RateLimited as exc:
            raise _Again(exc, exc.retry_after or 1.0) from None  # refused: nothing written
        except Unavailable as exc:
            if headers is not None or create.upsert:
                raise  # the HTTP layer already retried with the same idempotency key
            # The CRM may have written it: look before sending again.
            await self._sleep(self.client.http.policy.backoff(number))
            found = await self._by_external_id(entity, [record.external_id])
            if record.external_id in found:
                log.info(
                    "rest: %s %s was created by an attempt whose answer was lost",
                    entity.value,
                    record.external_id,
                )
                return ItemResult(
                    crm_id=found[record.external_id].crm_id, created=True, dropped=dropped
                )
            raise _Again(exc, 0.0) from None
        crm_id = create.response.id_of(answer.body)
        if crm_id is None:  # an answer without the id: the external id finds it
            found = await self._by_external_id(entity, [record.external_id])
            if record.external_id not in found:
                return ItemResult(
                    error=BackendError(
                        "the create answer holds no id and the record is not found by its "
                        f"external id (check {entity.plural}.create.response.id)"
                    )
                )
            crm_id = found[record.external_id].crm_id
        created = answer.status in create.created_status if create.upsert else True
        return ItemResult(crm_id=crm_id, created=created, dropped=dropped)

    async def _adopt(self, entity: Entity, record: NewRecord, exc: BackendError) -> str | None:
        """The record a "duplicate" refusal means, by the new record's match keys; it gets the
        external id when it has none."""
        spec = self.resource(entity)
        if not spec.adopt_on_conflict:
            return None
        for key_name, value in record.match_keys.items():
            if key_name not in spec.find:
                continue
            found = await self.find_records(entity, MatchKey(key_name), [value])
            if value in found:
                existing = found[value]
                if existing.external_id is None:
                    await self._write_external_id(entity, existing.crm_id, record.external_id)
                return existing.crm_id
        log.warning(
            "rest: %s %s refused as a duplicate (%s) and not found by its match keys",
            entity.value,
            record.external_id,
            exc.message,
        )
        return None

    async def _write_external_id(self, entity: Entity, crm_id: str, external_id: str) -> None:
        fields, _ = await self.codecs[entity].encode({}, external_id=external_id)
        update = self.resource(entity).update
        try:
            await self.client.send(
                update.request, update.response, {"id": crm_id, "fields": fields}
            )
        except (InvalidRecord, Conflict, NotFound) as exc:
            log.warning(
                "rest: could not mark %s %s with its external id: %s",
                entity.value,
                crm_id,
                exc.message,
            )

    async def _create_batched(
        self, entity: Entity, records: list[NewRecord]
    ) -> dict[str, ItemResult]:
        batch = self.resource(entity).create.batch
        assert batch is not None
        outcome: dict[str, ItemResult] = {}
        for start in range(0, len(records), batch.max_size):
            chunk = records[start : start + batch.max_size]
            outcome.update(await self._create_chunk(entity, chunk))
        return outcome

    async def _create_chunk(self, entity: Entity, chunk: list[NewRecord]) -> dict[str, ItemResult]:
        batch = self.resource(entity).create.batch
        assert batch is not None
        outcome: dict[str, ItemResult] = {}
        found = await self._by_external_id(entity, [r.external_id for r in chunk])
        pending: list[tuple[NewRecord, dict[str, Any], dict[str, str]]] = []
        for record in chunk:
            if record.external_id in found:
                outcome[record.external_id] = ItemResult(crm_id=found[record.external_id].crm_id)
                continue
            try:
                fields, dropped = await self.codecs[entity].encode(
                    record.fields, external_id=record.external_id, keys=record.match_keys
                )
            except InvalidRecord as exc:
                outcome[record.external_id] = ItemResult(error=exc)
                continue
            pending.append((record, fields, dropped))
        for _ in range(self.options.max_attempts):
            if not pending:
                break
            try:
                answer = await self.client.send(
                    batch.request,
                    batch.response,
                    {"records": [self._body(entity, r, f) for r, f, _ in pending]},
                    idempotent=False,
                )
            except (InvalidRecord, Conflict):
                # One record spoils an all-or-nothing batch: each goes alone and fails alone.
                alone = await self.gather(
                    [partial(self._create_one, entity, p[0]) for p in pending]
                )
                outcome.update({p[0].external_id: r for p, r in zip(pending, alone, strict=True)})
                return outcome
            except Unavailable as exc:
                if isinstance(exc, RateLimited):
                    await self._sleep(exc.retry_after or 1.0)
                    continue
                await self._sleep(self.client.http.policy.backoff(1))
                landed = await self._by_external_id(entity, [p[0].external_id for p in pending])
                for record, _, dropped in pending:
                    if record.external_id in landed:
                        crm_id = landed[record.external_id].crm_id
                        outcome[record.external_id] = ItemResult(
                            crm_id, created=True, dropped=dropped
                        )
                pending = [p for p in pending if p[0].external_id not in landed]
                continue
            outcome.update(self._batch_results(batch, answer.body, pending))
            return outcome
        if pending:
            raise Unavailable(f"a batch create of {entity.plural} did not get through")
        return outcome

    def _body(self, entity: Entity, record: NewRecord, fields: Mapping[str, Any]) -> Any:
        """What a create of this record alone would send: one item of a batch's ``records``."""
        create = self.resource(entity).create
        ctx = {"fields": fields, "external_id": record.external_id, "keys": record.match_keys}
        return self.client.build(create.request, ctx).json

    def _batch_results(
        self, batch: Any, body: Any, pending: list[tuple[NewRecord, dict[str, Any], dict[str, str]]]
    ) -> dict[str, ItemResult]:
        items = batch.response.items_of(body)
        out: dict[str, ItemResult] = {}
        for index, (record, _, dropped) in enumerate(pending):
            item = items[index] if index < len(items) else None
            error: BackendError | None = None
            if batch.item_error and isinstance(item, Mapping):
                message = item.get(batch.item_error)
                error = InvalidRecord(str(message)) if message else None
            raw_id = get_path(item, batch.response.item_id) if item is not None else MISSING
            crm_id = None if raw_id in (MISSING, None, "") else str(raw_id)
            if error is None and crm_id is None:
                error = BackendError("the batch answer holds no id for this record")
            out[record.external_id] = (
                ItemResult(error=error)
                if error
                else ItemResult(crm_id, created=True, dropped=dropped)
            )
        return out

    # -- read ---------------------------------------------------------------------------------

    async def get_records(self, entity: Entity, crm_ids: Sequence[str]) -> dict[str, StoredRecord]:
        """Records by id; unknown ids absent."""
        with self.client.budget():
            raws = await self.fetch_raw(entity, list(dict.fromkeys(crm_ids)))
        out: dict[str, StoredRecord] = {}
        for raw in raws:
            stored = await self.codecs[entity].decode(raw)
            if stored is not None and stored.crm_id in crm_ids:
                out[stored.crm_id] = stored
                self.known[(entity, stored.crm_id)] = True
        return out

    # -- update -------------------------------------------------------------------------------

    async def update_records(
        self, entity: Entity, updates: Sequence[RecordUpdate]
    ) -> list[ItemResult]:
        """Partial updates, ``concurrency`` at a time; one result per input, in order."""
        with self.client.budget():
            return await self.gather([partial(self.update_record, entity, u) for u in updates])

    async def update_record(self, entity: Entity, update: RecordUpdate) -> ItemResult:
        """A partial update: only the fields sent (and ``clear``) change. An unknown id gives
        ``ItemResult(error=NotFound)``."""
        codec = self.codecs[entity]
        if not self.usable_ids([update.crm_id], self.resource(entity).record.id_format):
            return ItemResult(error=NotFound(f"No {entity.value} exists with ID: {update.crm_id}"))
        values: dict[str, Any] = {**update.fields, **dict.fromkeys(update.clear)}
        current: Mapping[str, Any] | None = None
        spec = self.resource(entity).update
        try:
            if codec.merges_on_client or "current" in spec.request.roots():
                raws = await self.fetch_raw(entity, [update.crm_id])
                if not raws:
                    return ItemResult(
                        error=NotFound(f"No {entity.value} exists with ID: {update.crm_id}")
                    )
                current = raws[0]
            fields, dropped = await codec.encode(values, keys=update.match_keys, current=current)
        except InvalidRecord as exc:
            return ItemResult(error=exc)
        ctx = {"id": update.crm_id, "fields": fields, "current": current or {}}
        try:
            if not fields:
                if not await self.fetch_raw(entity, [update.crm_id]):
                    raise NotFound(f"No {entity.value} exists with ID: {update.crm_id}")
            else:
                await self.client.send(spec.request, spec.response, ctx)
        except NotFound as exc:
            return ItemResult(
                error=NotFound(f"No {entity.value} exists with ID: {update.crm_id} ({exc.message})")
            )
        except (InvalidRecord, Conflict) as exc:
            return ItemResult(error=exc)
        return ItemResult(crm_id=update.crm_id, dropped=dropped)


def _wait_of(exc: BaseException | None) -> float:
    return exc.wait if isinstance(exc, _Again) else 0.0
