"""Conformance tests of the required core: creating, finding, reading and updating records."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, overload

import anyio
import pytest

from backends.base import (
    EXTERNAL_ID,
    Backend,
    Entity,
    ItemResult,
    MatchKey,
    NewRecord,
    NotFound,
    RecordUpdate,
)
from backends.testing._base import MATCH_KEY_ROLES, RecordFactory, SuiteBase

__all__ = ["RecordsSuite"]

C, K = Entity.CONTACT, Entity.COMPANY
BY_EXTERNAL_ID = MatchKey(EXTERNAL_ID)

#: The edges of what a JSON number carries between any two systems (RFC 7493, I-JSON): IEEE
#: doubles, and integers within +-(2**53 - 1), which a double holds exactly (a backend written
#: in JavaScript, such as Directus, keeps no more). The front refuses what lies beyond a double
#: (1e400 parses as infinity, which is not JSON); a driver must store everything up to the edge
#: and read it back as the same number.
EXTREME_NUMBERS: tuple[float | int, ...] = (
    1.7976931348623157e308,
    -1.7976931348623157e308,
    5e-324,
    0.1,
    2**53 - 1,
    -(2**53 - 1),
)


def same_number(stored: Any, sent: float | int) -> bool:
    """Whether ``stored`` is the number ``sent``, as a number or as its text (a backend whose
    fields are text, such as HubSpot's properties, hands numbers back as strings; PostgreSQL's
    ``numeric`` may write a large double with all its digits). An integer must come back
    exactly; a double must come back as the same double."""
    if isinstance(stored, bool) or not isinstance(stored, int | float | str):
        return False
    try:
        exact = Decimal(str(stored))
    except ArithmeticError:
        return False
    if isinstance(sent, int):
        return exact == sent
    return float(exact) == sent


class _ReadLog(Sequence[str | None]):
    """A key's values that remember which items' values were read (a sync's key values are
    normalised on demand: a driver reads them only for the items still unmatched)."""

    def __init__(self, values: list[str | None]) -> None:
        self.values = values
        self.read: set[int] = set()

    def __len__(self) -> int:
        return len(self.values)

    @overload
    def __getitem__(self, index: int) -> str | None: ...
    @overload
    def __getitem__(self, index: slice) -> list[str | None]: ...
    def __getitem__(self, index: int | slice) -> str | list[str | None] | None:
        if isinstance(index, slice):
            self.read.update(range(len(self.values))[index])
            return self.values[index]
        self.read.add(index)
        return self.values[index]


class RecordsSuite(SuiteBase):
    """``create_record(s)``, ``find_records``, ``match_records``, ``get_records``,
    ``update_record(s)``."""

    # -- create ---------------------------------------------------------------------------

    @pytest.mark.anyio
    @pytest.mark.parametrize("entity", [C, K])
    async def test_create_returns_new_id_and_stores_fields(
        self, backend: Backend, records: RecordFactory, entity: Entity
    ) -> None:
        new = records.new(entity, 1)
        result = await backend.create_record(entity, new)
        assert result.error is None
        assert result.created is True
        assert isinstance(result.crm_id, str) and result.crm_id
        stored = await backend.get_records(entity, [result.crm_id])
        assert set(stored) == {result.crm_id}
        record = stored[result.crm_id]
        assert record.crm_id == result.crm_id
        assert record.external_id == new.external_id
        for name, value in new.fields.items():
            assert record.fields.get(name) == value, name

    @pytest.mark.anyio
    async def test_create_same_external_id_again_returns_same_id_and_writes_nothing(
        self, backend: Backend, records: RecordFactory
    ) -> None:
        first = await backend.create_record(C, records.new(C, 1))
        again = records.new(C, 2, external_id=records.external_id(C, 1))
        second = await backend.create_record(C, again)
        assert second.error is None
        assert second.crm_id == first.crm_id
        assert (first.created, second.created) == (True, False)
        assert first.crm_id is not None
        record = (await backend.get_records(C, [first.crm_id]))[first.crm_id]
        assert records.get(record, C, "email") == records.value(C, "email", 1)
        found = await backend.find_records(
            C, records.key(C, "email"), [records.value(C, "email", 2)]
        )
        assert found == {}

    @pytest.mark.anyio
    async def test_same_external_id_twice_in_one_batch_gives_one_record(
        self, backend: Backend, records: RecordFactory
    ) -> None:
        dup = records.new(C, 3, external_id=records.external_id(C, 1))
        results = await backend.create_records(C, [records.new(C, 1), records.new(C, 2), dup])
        assert len(results) == 3
        assert all(r.error is None for r in results)
        assert results[0].crm_id == results[2].crm_id
        assert results[1].crm_id not in (None, results[0].crm_id)
        assert [r.created for r in results] == [True, True, False]
        found = await backend.find_records(C, BY_EXTERNAL_ID, [records.external_id(C, 1)])
        assert found[records.external_id(C, 1)].crm_id == results[0].crm_id

    @pytest.mark.anyio
    async def test_concurrent_creates_with_one_external_id_make_one_record(
        self, backend: Backend, records: RecordFactory
    ) -> None:
        results: list[ItemResult] = []

        async def create() -> None:
            results.append(await backend.create_record(C, records.new(C, 1)))

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(create)
        assert all(r.error is None for r in results)
        assert len({r.crm_id for r in results}) == 1
        assert sum(r.created for r in results) == 1

    @pytest.mark.anyio
    async def test_batch_of_100_gives_one_result_per_input_in_order(
        self, backend: Backend, records: RecordFactory
    ) -> None:
        batch = [records.new(C, n) for n in range(100)]
        results = await backend.create_records(C, batch)
        assert len(results) == 100
        assert all(r.error is None and r.created for r in results)
        ids = [r.crm_id for r in results]
        assert len(set(ids)) == 100
        by_ext = await backend.find_records(C, BY_EXTERNAL_ID, [r.external_id for r in batch])
        assert [by_ext[r.external_id].crm_id for r in batch] == ids
        emails = [records.value(C, "email", n) for n in range(100)]
        by_email = await backend.find_records(C, records.key(C, "email"), emails)
        assert [by_email[e].crm_id for e in emails] == ids

    @pytest.mark.anyio
    async def test_empty_batches(self, backend: Backend) -> None:
        assert await backend.create_records(C, []) == []
        assert await backend.update_records(C, []) == []
        assert await backend.find_records(C, BY_EXTERNAL_ID, []) == {}
        assert await backend.get_records(C, []) == {}

    # -- find -----------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_extreme_finite_numbers_are_stored_and_read_back_exactly(
        self, backend: Backend, records: RecordFactory, number_field: tuple[Entity, str] | None
    ) -> None:
        if number_field is None:
            pytest.skip("the driver's test names no field that keeps numbers (number_field)")
        entity, name = number_field
        batch = []
        for n, value in enumerate(EXTREME_NUMBERS):
            new = records.new(entity, n)
            batch.append(NewRecord(new.external_id, {**new.fields, name: value}, new.match_keys))
        results = await backend.create_records(entity, batch)
        assert [r.error for r in results] == [None] * len(batch)
        ids = [r.crm_id for r in results if r.crm_id is not None]
        stored = await backend.get_records(entity, ids)
        for crm_id, value in zip(ids, EXTREME_NUMBERS, strict=True):
            got = stored[crm_id].fields.get(name)
            assert same_number(got, value), (value, got)
        # And through a partial update (SQL drivers merge JSON documents there).
        flipped = list(reversed(EXTREME_NUMBERS))
        updates = [
            RecordUpdate(crm_id=crm_id, fields={name: value})
            for crm_id, value in zip(ids, flipped, strict=True)
        ]
        outcomes = await backend.update_records(entity, updates)
        assert [r.error for r in outcomes] == [None] * len(ids)
        stored = await backend.get_records(entity, ids)
        for crm_id, value in zip(ids, flipped, strict=True):
            got = stored[crm_id].fields.get(name)
            assert same_number(got, value), (value, got)

    @pytest.mark.anyio
    @pytest.mark.parametrize("entity", [C, K])
    async def test_find_by_external_id(
        self, backend: Backend, records: RecordFactory, entity: Entity
    ) -> None:
        ids = [await records.create(backend, entity, n) for n in range(3)]
        wanted = [records.external_id(entity, 2), "ext-unknown", records.external_id(entity, 0)]
        found = await backend.find_records(entity, BY_EXTERNAL_ID, wanted)
        assert set(found) == {wanted[0], wanted[2]}
        assert found[wanted[0]].crm_id == ids[2]
        assert found[wanted[2]].crm_id == ids[0]
        assert found[wanted[0]].external_id == wanted[0]

    @pytest.mark.anyio
    @pytest.mark.parametrize(
        ("entity", "role"), [(e, r) for e in (C, K) for r in MATCH_KEY_ROLES[e]]
    )
    async def test_find_by_match_key(
        self, backend: Backend, records: RecordFactory, entity: Entity, role: str
    ) -> None:
        if not records.has(entity, role):
            pytest.skip(f"record_fields gives no backend field for {entity.value} {role}")
        ids = [await records.create(backend, entity, n) for n in range(3)]
        values = [records.value(entity, role, 1), records.value(entity, role, 99)]
        found = await backend.find_records(entity, records.key(entity, role), values)
        assert set(found) == {values[0]}, "values without a match must be absent"
        assert found[values[0]].crm_id == ids[1]
        assert records.get(found[values[0]], entity, role) == values[0]

    @pytest.mark.anyio
    async def test_oldest_record_wins_for_a_shared_key(
        self, backend: Backend, records: RecordFactory
    ) -> None:
        # Companies sharing a name: some CRMs refuse two contacts with one e-mail (HubSpot
        # answers 409), none refuses two companies with one name.
        shared = records.value(K, "name", 0)
        oldest = await records.create(backend, K, 1, name=shared)
        await records.create(backend, K, 2, name=shared)
        await records.create(backend, K, 3, name=shared)
        found = await backend.find_records(K, records.key(K, "name"), [shared])
        assert found[shared].crm_id == oldest

    @pytest.mark.anyio
    async def test_contacts_and_companies_are_separate(
        self, backend: Backend, records: RecordFactory
    ) -> None:
        contact = await records.create(backend, C, 1)
        assert await backend.get_records(K, [contact]) == {}
        assert await backend.find_records(K, BY_EXTERNAL_ID, [records.external_id(C, 1)]) == {}

    # -- a sync's lookup by several keys ----------------------------------------------------

    @pytest.mark.anyio
    async def test_match_records_takes_each_items_first_matching_key(
        self, backend: Backend, records: RecordFactory
    ) -> None:
        if not records.has(C, "email"):
            pytest.skip("record_fields gives no backend field for contact email")
        ids = [await records.create(backend, C, n) for n in range(3)]
        external_ids = [
            records.external_id(C, 0),  # found by its external id ...
            "ext-unknown-1",
            "ext-unknown-2",
            records.external_id(C, 2),
            "ext-unknown-3",
        ]
        emails = _ReadLog(
            [
                records.value(C, "email", 1),  # ... though its e-mail is record 1's
                records.value(C, "email", 1),  # found by e-mail
                records.value(C, "email", 99),  # found by neither
                None,  # found by its external id, has no e-mail
                None,  # has nothing to look up
            ]
        )
        found = await backend.match_records(
            C, [BY_EXTERNAL_ID, records.key(C, "email")], [external_ids, emails]
        )
        assert [r.crm_id if r else None for r in found] == [ids[0], ids[1], None, ids[2], None]
        by_email = found[1]
        assert by_email is not None
        assert by_email.external_id == records.external_id(C, 1)
        assert records.get(by_email, C, "email") == records.value(C, "email", 1)
        # The e-mails of the items their external id found were not needed.
        assert emails.read <= {1, 2, 4}, emails.read

    @pytest.mark.anyio
    async def test_match_records_of_no_items(self, backend: Backend) -> None:
        assert await backend.match_records(C, [BY_EXTERNAL_ID], [[]]) == []

    # -- get ------------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_get_records_skips_unknown_ids(
        self, backend: Backend, records: RecordFactory, missing_id: str
    ) -> None:
        a = await records.create(backend, C, 1)
        b = await records.create(backend, C, 2)
        got = await backend.get_records(C, [b, missing_id, a])
        assert set(got) == {a, b}
        assert records.get(got[a], C, "email") == records.value(C, "email", 1)
        assert records.get(got[b], C, "email") == records.value(C, "email", 2)

    # -- update ---------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_partial_update_leaves_other_fields_intact(
        self, backend: Backend, records: RecordFactory
    ) -> None:
        crm_id = await records.create(backend, C, 1)
        result = await backend.update_record(C, records.update(C, crm_id, firstName="Grace"))
        assert result.error is None
        assert result.crm_id == crm_id
        record = (await backend.get_records(C, [crm_id]))[crm_id]
        assert records.get(record, C, "firstName") == "Grace"
        assert records.get(record, C, "lastName") == records.value(C, "lastName", 1)
        assert records.get(record, C, "email") == records.value(C, "email", 1)
        assert record.external_id == records.external_id(C, 1)

    @pytest.mark.anyio
    async def test_update_is_idempotent(self, backend: Backend, records: RecordFactory) -> None:
        crm_id = await records.create(backend, C, 1)
        update = records.update(C, crm_id, firstName="Grace")
        assert (await backend.update_record(C, update)).error is None
        assert (await backend.update_record(C, update)).error is None
        record = (await backend.get_records(C, [crm_id]))[crm_id]
        assert records.get(record, C, "firstName") == "Grace"

    @pytest.mark.anyio
    async def test_clear_removes_a_field(self, backend: Backend, records: RecordFactory) -> None:
        crm_id = await records.create(backend, C, 1)
        result = await backend.update_record(C, records.update(C, crm_id, clear=("lastName",)))
        assert result.error is None
        record = (await backend.get_records(C, [crm_id]))[crm_id]
        assert records.get(record, C, "lastName") is None
        assert records.get(record, C, "firstName") == records.value(C, "firstName", 1)

    @pytest.mark.anyio
    async def test_match_key_change_moves_lookup(
        self, backend: Backend, records: RecordFactory
    ) -> None:
        crm_id = await records.create(backend, C, 1)
        old, new = records.value(C, "email", 1), records.value(C, "email", 50)
        result = await backend.update_record(C, records.update(C, crm_id, email=new))
        assert result.error is None
        found = await backend.find_records(C, records.key(C, "email"), [old, new])
        assert set(found) == {new}
        assert found[new].crm_id == crm_id

    @pytest.mark.anyio
    async def test_cleared_match_key_is_no_longer_found(
        self, backend: Backend, records: RecordFactory
    ) -> None:
        crm_id = await records.create(backend, K, 1)
        result = await backend.update_record(K, records.update(K, crm_id, clear=("domain",)))
        assert result.error is None
        domain = records.value(K, "domain", 1)
        assert await backend.find_records(K, records.key(K, "domain"), [domain]) == {}
        name = records.value(K, "name", 1)
        found = await backend.find_records(K, records.key(K, "name"), [name])
        assert found[name].crm_id == crm_id

    @pytest.mark.anyio
    async def test_update_unknown_id_is_not_found_result(
        self, backend: Backend, records: RecordFactory, missing_id: str
    ) -> None:
        result = await backend.update_record(C, records.update(C, missing_id, firstName="X"))
        assert isinstance(result.error, NotFound)
        assert not result.ok

    @pytest.mark.anyio
    async def test_update_batch_one_unknown_id_does_not_fail_others(
        self, backend: Backend, records: RecordFactory, missing_id: str
    ) -> None:
        a = await records.create(backend, K, 1)
        b = await records.create(backend, K, 2)
        updates: list[RecordUpdate] = [
            records.update(K, a, domain=records.value(K, "domain", 11)),
            records.update(K, missing_id, domain=records.value(K, "domain", 12)),
            records.update(K, b, domain=records.value(K, "domain", 13)),
        ]
        results = await backend.update_records(K, updates)
        assert len(results) == 3
        assert [r.crm_id for r in (results[0], results[2])] == [a, b]
        assert results[0].error is None and results[2].error is None
        assert isinstance(results[1].error, NotFound)
        got = await backend.get_records(K, [a, b])
        assert records.get(got[a], K, "domain") == records.value(K, "domain", 11)
        assert records.get(got[b], K, "domain") == records.value(K, "domain", 13)
        assert records.get(got[a], K, "name") == records.value(K, "name", 1)

    @pytest.mark.anyio
    async def test_handed_out_records_do_not_alias_the_store(
        self, backend: Backend, records: RecordFactory
    ) -> None:
        crm_id = await records.create(backend, C, 1)
        first = (await backend.get_records(C, [crm_id]))[crm_id]
        field = records.field(C, "firstName")
        with contextlib.suppress(TypeError):  # a read-only mapping is fine too
            first.fields[field] = "mutated"  # type: ignore[index]
        again = (await backend.get_records(C, [crm_id]))[crm_id]
        assert records.get(again, C, "firstName") == records.value(C, "firstName", 1)
