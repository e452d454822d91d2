"""The conformance suite catches broken drivers.

Each case runs one suite test against a memory driver with one deliberate bug and checks that
the test fails. The same tests pass against the correct driver (``tests/test_memory.py``), so
together they show each suite test names a behaviour and fails when it breaks.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any

import pytest

from backends.base import (
    Activity,
    AssociationPair,
    Backend,
    BackendError,
    Capability,
    DriverOptions,
    Entity,
    ItemResult,
    MatchKey,
    NewActivity,
    NewRecord,
    NotFound,
    RecordUpdate,
    StoredRecord,
    Task,
    TaskChanges,
    User,
    overridden_capabilities,
)
from backends.memory import MemoryBackend
from backends.testing import (
    DEFAULT_RECORD_FIELDS,
    ConformanceSuite,
    RecordFactory,
)

# -- broken drivers -----------------------------------------------------------------------------


class ForgetsExternalIds(MemoryBackend):
    async def create_record(self, entity: Entity, record: NewRecord) -> ItemResult:
        self._by_external[entity].pop(record.external_id, None)
        return await super().create_record(entity, record)


class NaiveBatch(MemoryBackend):
    """Checks which external ids exist before the batch, then inserts every other item."""

    async def create_records(
        self, entity: Entity, records: Sequence[NewRecord]
    ) -> list[ItemResult]:
        before = {r.external_id: self._by_external[entity].get(r.external_id) for r in records}
        results = []
        for record in records:
            existing = before[record.external_id]
            if existing is not None:
                results.append(ItemResult(crm_id=existing))
            else:
                self._by_external[entity].pop(record.external_id, None)
                results.append(await self.create_record(entity, record))
        return results


class NewestWins(MemoryBackend):
    async def find_records(
        self, entity: Entity, key: MatchKey, values: Sequence[str]
    ) -> dict[str, StoredRecord]:
        found = await super().find_records(entity, key, values)
        for value in found:
            ids = self._by_key[entity].get(key.name, {}).get(value)
            if ids:
                found[value] = self._records[entity][ids[-1]].snapshot()
        return found


class StaleIndex(MemoryBackend):
    async def update_record(self, entity: Entity, update: RecordUpdate) -> ItemResult:
        stored = self._records[entity].get(update.crm_id)
        if stored is not None:
            for name, value in update.match_keys.items():
                if value is not None:
                    self._index(entity, stored, name, value)
        return await super().update_record(entity, replace(update, match_keys={}))


class IgnoresClear(MemoryBackend):
    async def update_record(self, entity: Entity, update: RecordUpdate) -> ItemResult:
        return await super().update_record(entity, replace(update, clear=frozenset()))


class ReplacesFields(MemoryBackend):
    async def update_record(self, entity: Entity, update: RecordUpdate) -> ItemResult:
        result = await super().update_record(entity, update)
        if result.ok:
            self._records[entity][update.crm_id].fields = dict(update.fields)
        return result


class RaisesOnUnknownUpdate(MemoryBackend):
    async def update_record(self, entity: Entity, update: RecordUpdate) -> ItemResult:
        result = await super().update_record(entity, update)
        if result.error is not None:
            raise result.error
        return result


class AliasesStore(MemoryBackend):
    async def get_records(self, entity: Entity, crm_ids: Sequence[str]) -> dict[str, StoredRecord]:
        records = self._records[entity]
        return {
            i: StoredRecord(i, records[i].external_id, records[i].fields)
            for i in crm_ids
            if i in records
        }


class LinksUnknownCompany(MemoryBackend):
    async def create_associations(self, pairs: Sequence[AssociationPair]) -> list[ItemResult]:
        results = await super().create_associations(pairs)
        return [
            ItemResult(crm_id=p.contact_id) if p.contact_id in self._records[Entity.CONTACT] else r
            for p, r in zip(pairs, results, strict=True)
        ]


class IgnoresActivityKey(MemoryBackend):
    async def create_activity(self, activity: NewActivity) -> Activity:
        return await super().create_activity(replace(activity, idempotency_key=None))


class NoLinkCheck(MemoryBackend):
    def _check_links(self, contact_id: str | None, company_id: str | None) -> None:
        pass


class DropsMetadata(MemoryBackend):
    async def create_activity(self, activity: NewActivity) -> Activity:
        return await super().create_activity(replace(activity, metadata={}))


class RecompleteResetsTime(MemoryBackend):
    async def update_task(self, task_id: str, changes: TaskChanges) -> Task:
        if changes.completed and changes.completed_at is None:
            changes = replace(changes, completed_at=changes.now)
        return await super().update_task(task_id, changes)


class UncompleteKeepsTime(MemoryBackend):
    async def update_task(self, task_id: str, changes: TaskChanges) -> Task:
        before = self._tasks.get(task_id)
        task = await super().update_task(task_id, changes)
        if changes.completed is False and before is not None:
            task = replace(task, completed_at=before.completed_at)
            self._tasks[task_id] = task
        return task


class RepeatsTasks(MemoryBackend):
    async def get_tasks(self, ids: Sequence[str]) -> list[Task]:
        return [self._tasks[i] for i in ids if i in self._tasks]


class StopsAtUnknownTask(MemoryBackend):
    async def update_tasks(self, ids: Sequence[str], changes: TaskChanges) -> list[Task]:
        return [await self.update_task(i, changes) for i in ids]


class ListsOldestFirst(MemoryBackend):
    async def list_records(
        self, entity: Entity, *, limit: int = 50, offset: int = 0, search: str | None = None
    ) -> list[StoredRecord]:
        ordered = [r.snapshot() for r in self._records[entity].values()]
        return ordered[offset : offset + limit]


class IgnoresSearch(MemoryBackend):
    async def list_records(
        self, entity: Entity, *, limit: int = 50, offset: int = 0, search: str | None = None
    ) -> list[StoredRecord]:
        return await super().list_records(entity, limit=limit, offset=offset)


class CaseSensitiveSearch(MemoryBackend):
    async def list_records(
        self, entity: Entity, *, limit: int = 50, offset: int = 0, search: str | None = None
    ) -> list[StoredRecord]:
        found = await super().list_records(entity, limit=10_000, search=search)
        if search:
            found = [
                r
                for r in found
                if any(search in str(v) for v in r.fields.values())
                or search in r.crm_id
                or search in (r.external_id or "")
            ]
        return found[offset : offset + limit]


class WildcardSearch(MemoryBackend):
    """Treats % and _ as SQL LIKE wildcards."""

    async def list_records(
        self, entity: Entity, *, limit: int = 50, offset: int = 0, search: str | None = None
    ) -> list[StoredRecord]:
        if not search:
            return await super().list_records(entity, limit=limit, offset=offset)
        pattern = re.compile(
            ".*".join(".".join(map(re.escape, p.split("_"))) for p in search.split("%")),
            re.IGNORECASE,
        )
        everything = await super().list_records(entity, limit=10_000)
        found = [
            r
            for r in everything
            if any(pattern.search(str(v)) for v in [r.crm_id, r.external_id, *r.fields.values()])
        ]
        return found[offset : offset + limit]


class TasksIgnoreCompletion(MemoryBackend):
    async def list_tasks(
        self,
        *,
        contact_id: str | None = None,
        company_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
        completed: bool | None = None,
        search: str | None = None,
    ) -> list[Task]:
        return await super().list_tasks(limit=limit, offset=offset, search=search)


class TasksSearchSubjectOnly(MemoryBackend):
    async def list_tasks(
        self,
        *,
        contact_id: str | None = None,
        company_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
        completed: bool | None = None,
        search: str | None = None,
    ) -> list[Task]:
        found = await super().list_tasks(limit=10_000, completed=completed)
        if search:
            found = [t for t in found if search.casefold() in t.subject.casefold()]
        return found[offset : offset + limit]


class OneWayLinks(MemoryBackend):
    async def list_associated(self, entity: Entity, crm_id: str) -> list[StoredRecord]:
        return [] if entity is Entity.COMPANY else await super().list_associated(entity, crm_id)


class ActivitiesOldestFirst(MemoryBackend):
    async def list_activities(
        self, *, contact_id: str | None = None, company_id: str | None = None, limit: int = 100
    ) -> list[Activity]:
        found = await super().list_activities(contact_id=contact_id, company_id=company_id)
        return found[::-1][:limit]


class UnfilteredTasks(MemoryBackend):
    async def list_tasks(
        self,
        *,
        contact_id: str | None = None,
        company_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
        completed: bool | None = None,
        search: str | None = None,
    ) -> list[Task]:
        return await super().list_tasks(limit=limit)


class CountsEveryLinkCall(MemoryBackend):
    async def create_associations(self, pairs: Sequence[AssociationPair]) -> list[ItemResult]:
        self.calls = getattr(self, "calls", 0) + len(pairs)
        return await super().create_associations(pairs)

    async def counts(self) -> dict[str, int]:
        return {**await super().counts(), "associations": getattr(self, "calls", 0)}


class UndeclaredUsers(MemoryBackend):
    capabilities = frozenset(Capability) - {Capability.USERS}


class ExtraUser(MemoryBackend):
    async def list_users(self) -> list[User]:
        return [User("u1", "Ada"), User("u2", "Intruder")]


# -- cases: (broken driver, suite test, parameters of a parametrized test) -------------------

CASES: list[tuple[type[MemoryBackend], str, dict[str, Any]]] = [
    (
        ForgetsExternalIds,
        "test_create_same_external_id_again_returns_same_id_and_writes_nothing",
        {},
    ),
    (ForgetsExternalIds, "test_concurrent_creates_with_one_external_id_make_one_record", {}),
    (NaiveBatch, "test_same_external_id_twice_in_one_batch_gives_one_record", {}),
    (NewestWins, "test_oldest_record_wins_for_a_shared_key", {}),
    (StaleIndex, "test_match_key_change_moves_lookup", {}),
    (StaleIndex, "test_cleared_match_key_is_no_longer_found", {}),
    (IgnoresClear, "test_clear_removes_a_field", {}),
    (ReplacesFields, "test_partial_update_leaves_other_fields_intact", {}),
    (RaisesOnUnknownUpdate, "test_update_unknown_id_is_not_found_result", {}),
    (RaisesOnUnknownUpdate, "test_update_batch_one_unknown_id_does_not_fail_others", {}),
    (AliasesStore, "test_handed_out_records_do_not_alias_the_store", {}),
    (LinksUnknownCompany, "test_unknown_contact_or_company_is_not_found_per_pair", {}),
    (IgnoresActivityKey, "test_same_idempotency_key_returns_first_activity", {}),
    (IgnoresActivityKey, "test_concurrent_calls_with_one_key_store_one_activity", {}),
    (NoLinkCheck, "test_unknown_contact_raises_not_found", {}),
    (NoLinkCheck, "test_unknown_company_raises_not_found", {}),
    (NoLinkCheck, "test_create_with_unknown_contact_raises_not_found", {}),
    (DropsMetadata, "test_metadata_round_trips", {}),
    (RecompleteResetsTime, "test_completing_again_keeps_completed_at_unless_given", {}),
    (UncompleteKeepsTime, "test_uncompleting_clears_completed_at", {}),
    (RepeatsTasks, "test_get_tasks_keeps_order_and_skips_unknown_and_repeated_ids", {}),
    (StopsAtUnknownTask, "test_update_tasks_skips_unknown_ids", {}),
    (ListsOldestFirst, "test_list_records_newest_first_and_paged", {}),
    (IgnoresSearch, "test_list_records_search", {}),
    (CaseSensitiveSearch, "test_list_records_search", {}),
    (WildcardSearch, "test_list_records_search", {}),
    (TasksIgnoreCompletion, "test_list_tasks_by_completion_and_search", {}),
    (TasksSearchSubjectOnly, "test_list_tasks_by_completion_and_search", {}),
    (OneWayLinks, "test_list_associated_both_directions", {}),
    (ActivitiesOldestFirst, "test_list_activities_filtered_and_newest_first", {}),
    (UnfilteredTasks, "test_list_tasks_filtered_and_newest_first", {}),
    (CountsEveryLinkCall, "test_counts_follow_writes", {}),
    (UndeclaredUsers, "test_declared_capabilities_match_overridden_methods", {}),
    (ExtraUser, "test_list_users_returns_expected_users", {}),
]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("driver", "test_name", "params"),
    CASES,
    ids=[f"{d.__name__}-{t.removeprefix('test_')}" for d, t, _ in CASES],
)
async def test_suite_test_fails_against_broken_driver(
    driver: type[MemoryBackend], test_name: str, params: dict[str, Any]
) -> None:
    backend = driver()
    await backend.open()
    fixtures: dict[str, Any] = {
        "backend": backend,
        "records": RecordFactory(lambda entity: DEFAULT_RECORD_FIELDS[entity]),
        "missing_id": "999999999",
        "expected_users": [User("u1", "Ada")],
        **params,
    }
    method = getattr(ConformanceSuite(), test_name)
    wanted = {name: fixtures[name] for name in inspect.signature(method).parameters}
    # A suite test "fails" with an assertion, a pytest.raises that saw nothing, or an error the
    # driver should not have raised.
    with pytest.raises((AssertionError, pytest.fail.Exception, BackendError)):
        await method(**wanted)


def test_every_case_names_a_suite_test() -> None:
    names = {n for n in dir(ConformanceSuite) if n.startswith("test_")}
    assert {t for _, t, _ in CASES} <= names


def test_not_found_is_a_backend_error() -> None:
    # The harness above counts a raised BackendError as a failure; NotFound must be one.
    assert issubclass(NotFound, BackendError)


# -- a driver with only the required core runs the suite too (optional groups skip) -----------


class CoreOnlyBackend(Backend):
    """Contacts and companies only, delegating to a private memory store."""

    name = "core-only"

    def __init__(self, options: DriverOptions | None = None) -> None:
        super().__init__(options)
        self._store = MemoryBackend()

    async def create_record(self, entity: Entity, record: NewRecord) -> ItemResult:
        return await self._store.create_record(entity, record)

    async def find_records(
        self, entity: Entity, key: MatchKey, values: Sequence[str]
    ) -> dict[str, StoredRecord]:
        return await self._store.find_records(entity, key, values)

    async def get_records(self, entity: Entity, crm_ids: Sequence[str]) -> dict[str, StoredRecord]:
        return await self._store.get_records(entity, crm_ids)

    async def update_record(self, entity: Entity, update: RecordUpdate) -> ItemResult:
        return await self._store.update_record(entity, update)


class TestCoreOnlyDriver(ConformanceSuite):
    @pytest.fixture
    async def backend(self) -> AsyncIterator[Backend]:
        driver = CoreOnlyBackend()
        await driver.open()
        yield driver
        await driver.close()


def test_core_only_driver_declares_nothing() -> None:
    assert overridden_capabilities(CoreOnlyBackend) == frozenset()
