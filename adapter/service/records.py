"""Contacts and companies: create, sync and update in batches (A.4-A.8).

Records arrive as Enginy sent them, are checked (a number that is not finite, an ``ownerId``
naming no user: that record's error), are renamed once by the entity's
:class:`~adapter.mapping.FieldMapper`, get their normalised match keys from the
:class:`~adapter.matching.Matcher`, and go to the driver in one batch call; the answer is one
result per record, in order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypedDict, overload

from adapter.config import KeySpec, NullPolicy
from adapter.contract import (
    CreateError,
    CreateResponse,
    CreateResult,
    FieldWarning,
    RecordIn,
    RecordUpdateIn,
    SyncResponse,
    SyncResult,
    UpdateResponse,
    UpdateResult,
)
from adapter.errors import BatchFailed
from adapter.mapping import ENVELOPE_FIELDS, FieldMapper, UnmappedField
from adapter.matching import Matcher
from adapter.outbox import Queued, Writes
from adapter.service.checks import NON_FINITE, non_finite_path
from adapter.service.references import InvalidReference, UserDirectory, describe
from backends.base import (
    EXTERNAL_ID,
    Backend,
    BackendError,
    Entity,
    ItemResult,
    MatchKey,
    NewRecord,
    RecordUpdate,
)

__all__ = ["RecordOperations"]


def _match_key(spec: KeySpec, mapper: FieldMapper) -> MatchKey:
    """The driver's view of key ``spec``: its name, the backend field(s) holding it and its
    normaliser (``compound`` for a key of several fields)."""
    if spec.parts:
        fields = tuple(mapper.backend_name(p.field) for p in spec.parts)
        return MatchKey(spec.field, None, "compound", fields)
    return MatchKey(spec.field, mapper.backend_name(spec.field), spec.normaliser)


class _KeyValues(Sequence[str | None]):
    """One match key's value for each item of a sync, normalised when the lookup asks for it:
    most items are matched by their first keys, so most of the later keys' values are never
    needed (see :class:`backends.base.FirstMatches`)."""

    __slots__ = ("_entity", "_items", "_spec", "_value_of")

    def __init__(
        self, items: Sequence[RecordIn], matcher: Matcher, entity: Entity, spec: KeySpec
    ) -> None:
        self._items, self._value_of, self._entity, self._spec = (
            items,
            matcher.value_of,
            entity,
            spec,
        )

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> str | None: ...
    @overload
    def __getitem__(self, index: slice) -> list[str | None]: ...
    def __getitem__(self, index: int | slice) -> str | list[str | None] | None:
        if isinstance(index, slice):
            return [self._value_of(self._entity, self._spec, i) for i in self._items[index]]
        return self._value_of(self._entity, self._spec, self._items[index])


#: The types of a JSON value that holds no number out of range.
_PLAIN = frozenset({str, int, bool, type(None)})


class _Refusal(TypedDict):
    error: str
    message: str


def _refusal(item: Mapping[str, Any], unknown_owners: set[str]) -> _Refusal | None:
    """Why the front refuses this record before the driver sees it: a number no store can hold
    (``invalid_value``), an ``ownerId`` that names no user (``invalid_reference``)."""
    # Only a float can be infinite, and only a float or a container can hold one: a record of
    # strings (the usual one) is settled by one look at the types of its values.
    if not _PLAIN.issuperset(map(type, item.values())):
        bad = non_finite_path(dict(item))
        if bad is not None:
            return {"error": "invalid_value", "message": f"{bad}: {NON_FINITE}"}
    owner = item.get("ownerId")
    if owner is not None and str(owner) in unknown_owners:
        return {
            "error": InvalidReference.code,
            "message": describe("ownerId", None, str(owner)),
        }
    return None


class RecordOperations:
    """The record half of :class:`adapter.service.Service`."""

    backend: Backend
    writes: Writes
    mappers: dict[Entity, FieldMapper]
    matcher: Matcher
    nulls: dict[Entity, NullPolicy]
    scrub: Callable[[str], str]
    directory: UserDirectory

    async def _unknown_owners(self, items: Sequence[Mapping[str, Any]]) -> set[str]:
        # One look at the user list for the whole batch.
        owners = {str(o) for i in items if (o := i.get("ownerId")) not in (None, "")}
        return await self.directory.unknown(owners) if owners else set()

    async def create_records(self, entity: Entity, items: Sequence[RecordIn]) -> CreateResponse:
        """Create (idempotently on ``externalId``) and report per record (A.4, A.5, A.8)."""
        mapper = self.mappers[entity]
        records: list[NewRecord] = []
        errors: list[CreateError] = []
        unknown_owners = await self._unknown_owners(items)
        for item in items:
            refused = _refusal(item, unknown_owners)
            if refused is not None:
                errors.append(
                    {
                        "externalId": item["externalId"],
                        "error": refused["error"],
                        "message": refused["message"],
                    }
                )
                continue
            # The item is the record as sent, envelope included: the mapper leaves
            # ``externalId``/``crmId`` out and the matcher reads only the key fields.
            try:
                backend_fields = mapper.to_backend(item)
            except UnmappedField as exc:
                errors.append(
                    {
                        "externalId": item["externalId"],
                        "error": "unmapped_field",
                        "message": f"no field mapping for: {', '.join(exc.fields)}",
                    }
                )
                continue
            keys = self.matcher.match_keys(entity, item)
            records.append(NewRecord(item["externalId"], backend_fields, keys))

        outcomes = await self.backend.create_records(entity, records) if records else []
        results: list[CreateResult] = []
        warnings: list[FieldWarning] = []
        for record, outcome in zip(records, outcomes, strict=True):
            if outcome.error is None and outcome.crm_id is not None:
                results.append({"externalId": record.external_id, "crmId": outcome.crm_id})
                for name, why in outcome.dropped.items():
                    warnings.append(
                        {
                            "externalId": record.external_id,
                            "field": mapper.enginy_name(name),
                            "message": f"not written: {why}",
                        }
                    )
            else:
                error = outcome.error or BackendError("the backend returned no id")
                errors.append(
                    {
                        "externalId": record.external_id,
                        "error": error.code,
                        "message": self.scrub(error.message),
                    }
                )
        if errors and not results:
            raise BatchFailed(errors)
        response: CreateResponse = {"results": results}
        if errors:
            response["errors"] = errors
        if warnings:
            response["warnings"] = warnings
        return response

    async def sync_records(self, entity: Entity, items: Sequence[RecordIn]) -> SyncResponse:
        """Find existing records: ``externalId`` first, then each configured key in priority
        order for the items still unmatched (A.7), in one driver call (``match_records``:
        one lookup per key by default, one trip where the driver can)."""
        mapper = self.mappers[entity]
        specs = self.matcher.keys_for(entity)
        keys = [MatchKey(EXTERNAL_ID), *(_match_key(spec, mapper) for spec in specs)]
        values: list[Sequence[str | None]] = [[item["externalId"] for item in items]]
        values += [_KeyValues(items, self.matcher, entity, spec) for spec in specs]
        found = await self.backend.match_records(entity, keys, values)
        results: list[SyncResult] = [
            {
                "externalId": item["externalId"],
                "crmId": record.crm_id,
                "properties": mapper.from_backend(record.fields),
            }
            for item, record in zip(items, found, strict=True)
            if record is not None
        ]
        return {"results": results}

    async def _stored_key_fields(
        self, entity: Entity, items: Sequence[RecordUpdateIn], clear_nulls: bool
    ) -> dict[str, dict[str, object]]:
        """The stored fields that compound match keys touched only in part need, by crm id:
        one driver read for the batch, only when some update needs one."""
        wanted: dict[str, frozenset[str]] = {}
        for item in items:
            values = {k: v for k, v in item.items() if v is not None and k not in ENVELOPE_FIELDS}
            nulls = [k for k, v in item.items() if v is None] if clear_nulls else []
            names = self.matcher.needs_stored(entity, values, nulls)
            if names:
                wanted[item["crmId"]] = names
        if not wanted:
            return {}
        mapper = self.mappers[entity]
        records = await self.backend.get_records(entity, list(wanted))
        return {
            crm_id: {
                name: record.fields[mapper.backend_name(name)]
                for name in wanted[crm_id]
                if mapper.backend_name(name) in record.fields
            }
            for crm_id, record in records.items()
        }

    async def update_records(
        self, entity: Entity, items: Sequence[RecordUpdateIn]
    ) -> UpdateResponse:
        """Partial updates; one result per input, in order (A.6). An update accepted into the
        outbox is ``{"crmId", "success": true, "queued": true}``."""
        clear_nulls = self.nulls.get(entity, NullPolicy.IGNORE) is NullPolicy.CLEAR
        stored = await self._stored_key_fields(entity, items, clear_nulls)
        unknown_owners = await self._unknown_owners(items)
        # One slot per input: its refusal, or None where its update goes to the driver.
        slots: list[UpdateResult | None] = []
        updates: list[RecordUpdate] = []
        for item in items:
            prepared = self._prepare_update(entity, item, clear_nulls, stored, unknown_owners)
            if isinstance(prepared, RecordUpdate):
                updates.append(prepared)
                slots.append(None)
            else:
                slots.append(prepared)
        outcomes = await self.writes.update_records(entity, updates) if updates else []
        return self._update_response(entity, slots, updates, outcomes)

    def _prepare_update(
        self,
        entity: Entity,
        item: RecordUpdateIn,
        clear_nulls: bool,
        stored: Mapping[str, dict[str, object]],
        unknown_owners: set[str],
    ) -> RecordUpdate | UpdateResult:
        """The driver's update for one input, or the failed result that refuses it."""
        crm_id = item["crmId"]
        refused = _refusal(item, unknown_owners)
        if refused is not None:
            return {
                "crmId": crm_id,
                "success": False,
                "error": refused["error"],
                "message": refused["message"],
            }
        mapper = self.mappers[entity]
        values = {k: v for k, v in item.items() if v is not None and k not in ENVELOPE_FIELDS}
        nulls = [k for k, v in item.items() if v is None] if clear_nulls else []
        try:
            backend_values = mapper.to_backend(values)
            # The same policy applies to a field being cleared as to one being set.
            cleared = frozenset(mapper.to_backend(dict.fromkeys(nulls)))
        except UnmappedField as exc:
            return {
                "crmId": crm_id,
                "success": False,
                "error": "unmapped_field",
                "message": f"no field mapping for: {', '.join(exc.fields)}",
            }
        keys = self.matcher.changed_match_keys(entity, values, nulls, stored.get(crm_id))
        return RecordUpdate(crm_id, backend_values, cleared, keys)

    def _update_response(
        self,
        entity: Entity,
        slots: Sequence[UpdateResult | None],
        updates: Sequence[RecordUpdate],
        outcomes: Sequence[ItemResult | Queued],
    ) -> UpdateResponse:
        """The answer in the order asked: refusals where they were, the driver's outcomes in
        the other slots, and a warning for each field the driver did not write."""
        mapper = self.mappers[entity]
        results: list[UpdateResult] = []
        warnings: list[FieldWarning] = []
        pending = iter(zip(updates, outcomes, strict=True))
        for slot in slots:
            if slot is not None:
                results.append(slot)
                continue
            update, outcome = next(pending)
            if isinstance(outcome, Queued):
                results.append({"crmId": update.crm_id, "success": True, "queued": True})
            elif outcome.error is None:
                results.append({"crmId": update.crm_id, "success": True})
                warnings.extend(
                    {
                        "crmId": update.crm_id,
                        "field": mapper.enginy_name(name),
                        "message": f"not written: {why}",
                    }
                    for name, why in outcome.dropped.items()
                )
            else:
                results.append(
                    {
                        "crmId": update.crm_id,
                        "success": False,
                        "error": outcome.error.code,
                        "message": self.scrub(outcome.error.message),
                    }
                )
        response: UpdateResponse = {"results": results}
        if warnings:
            response["warnings"] = warnings
        return response
