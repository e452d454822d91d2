"""In-memory driver: the reference implementation of the backend interface.

* **Connects to:** nothing; everything lives in this process's memory, on the driver instance.
* **Capabilities:** all of them (associations, activities, tasks, users, browse).
* **Options:** ``users``: a list of ``{id, name, email}`` returned by ``GET /users`` (default:
  none, so the list is empty).
* **Limits and quirks:** data is lost when the process stops and is not shared between worker
  processes; use it for tests, demos and as the model to copy when writing a driver. Lookups by
  external id and by match key go through dictionaries (no scan of the store). Everything handed
  out is a deep copy, so callers cannot change the store behind the driver's back. Activities
  without ``occurred_at`` are ordered by their creation time. The ``extra`` keys of activities
  and tasks are not kept (``Activity`` and ``Task`` have no place to return them).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from backends.base import (
    EXTERNAL_ID,
    TASK_FIELDS,
    Activity,
    AssociationPair,
    Backend,
    Capability,
    DriverOptions,
    Entity,
    InvalidRecord,
    ItemResult,
    MatchKey,
    NewActivity,
    NewRecord,
    NewTask,
    NotFound,
    RecordUpdate,
    StoredRecord,
    Task,
    TaskChanges,
    User,
)

__all__ = ["MemoryBackend", "MemoryOptions", "MemoryUser"]

_PREFIX = {Entity.CONTACT: "ct", Entity.COMPANY: "co"}


class MemoryUser(BaseModel):
    """One user listed by ``GET /users``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str
    email: str | None = None


class MemoryOptions(DriverOptions):
    """Options of the memory driver (``backend.options``)."""

    users: tuple[MemoryUser, ...] = ()


@dataclass(slots=True)
class _Record:
    crm_id: str
    external_id: str | None
    seq: int  # creation order: "oldest wins" and "newest first" both sort on it
    fields: dict[str, Any]
    match_keys: dict[str, str] = field(default_factory=dict)
    # Whether a field holds a list or an object. Most records hold strings and numbers only,
    # and for those a shallow copy is already a safe copy, at a tenth of the walk's cost (a
    # sync hands out a snapshot per matched record).
    nested: bool = False

    def snapshot(self) -> StoredRecord:
        fields = _copy(self.fields) if self.nested else dict(self.fields)
        return StoredRecord(self.crm_id, self.external_id, fields)


def _contains(record: _Record, needle: str) -> bool:
    """Whether ``needle`` (case-folded) is in the record's ids or the text of a field value
    (containers as their JSON text, as the SQL driver's JSON column holds them)."""
    texts = [record.crm_id, record.external_id or ""]
    for value in record.fields.values():
        if isinstance(value, dict | list):
            texts.append(json.dumps(value, ensure_ascii=False, default=str))
        elif value is not None:
            texts.append(str(value))
    return any(needle in text.casefold() for text in texts)


def _copy(value: Any) -> Any:
    """Copy a JSON value. Only containers are copied: scalars are immutable, and a recursive
    walk over plain dicts and lists is several times cheaper than ``copy.deepcopy``."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(v) for v in value]
    return value


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _has_containers(fields: Mapping[str, Any]) -> bool:
    # Exact types: a value of any other type (a list, a dict, a subclass of either) counts as
    # a container, and takes the copying walk.
    return not _SCALARS.issuperset(map(type, fields.values()))


def _new_id(prefix: str) -> str:
    # 128 random bits like a uuid4 (what secrets.token_hex reads), without building a UUID.
    return f"{prefix}_{os.urandom(16).hex()}"


def _new_ids(prefix: str, count: int) -> list[str]:
    """``count`` ids as :func:`_new_id` makes them, from one read of the random source."""
    bits = os.urandom(16 * count).hex()
    return [f"{prefix}_{bits[at : at + 32]}" for at in range(0, 32 * count, 32)]


def _when(activity: Activity) -> datetime:
    moment = activity.occurred_at or activity.created_at or datetime.min
    # A naive time is read as UTC so that naive and aware values can be ordered together.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _copy_activity(activity: Activity) -> Activity:
    return replace(activity, metadata=_copy(dict(activity.metadata)))


class MemoryBackend(Backend):
    """Stores records, links, activities and tasks in dictionaries on the instance."""

    name: ClassVar[str] = "memory"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)
    Options: ClassVar[type[DriverOptions]] = MemoryOptions
    process_local: ClassVar[bool] = True

    def __init__(self, options: DriverOptions | None = None) -> None:
        super().__init__(options)
        self._seq = 0
        self._records: dict[Entity, dict[str, _Record]] = {e: {} for e in Entity}
        self._by_external: dict[Entity, dict[str, str]] = {e: {} for e in Entity}
        # entity -> key name -> normalised value -> crm ids, oldest first
        self._by_key: dict[Entity, dict[str, dict[str, tuple[str, ...]]]] = {e: {} for e in Entity}
        # Ordered sets (dicts with None values) so listings come back in link order.
        self._companies_of: dict[str, dict[str, None]] = {}
        self._contacts_of: dict[str, dict[str, None]] = {}
        self._activities: dict[str, Activity] = {}
        self._activity_seq: dict[str, int] = {}
        self._activity_by_key: dict[str, str] = {}
        self._tasks: dict[str, Task] = {}

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # -- match-key index ------------------------------------------------------------------

    def _index(self, entity: Entity, record: _Record, name: str, value: str) -> None:
        # Holders are kept as tuples, not lists: a tuple of strings is untracked by the cyclic
        # garbage collector, whose full passes over a large store otherwise cost more than the
        # creates themselves. Most values have one holder, so rebuilding the tuple is cheap.
        index = self._by_key[entity].setdefault(name, {})
        ids = index.get(value, ())
        records = self._records[entity]
        if ids and records[ids[-1]].seq > record.seq:
            # An update may give an old record a value newer records already hold: keep
            # creation order so that the oldest holder still wins.
            index[value] = tuple(sorted((*ids, record.crm_id), key=lambda i: records[i].seq))
        else:
            index[value] = (*ids, record.crm_id)  # a new record is the newest holder

    def _unindex(self, entity: Entity, record: _Record, name: str) -> None:
        old = record.match_keys.pop(name, None)
        if old is None:
            return
        values = self._by_key[entity][name]
        remaining = tuple(i for i in values[old] if i != record.crm_id)
        if remaining:
            values[old] = remaining
        else:
            del values[old]

    # -- contacts and companies -------------------------------------------------------------

    async def create_record(self, entity: Entity, record: NewRecord) -> ItemResult:
        return self._create(entity, record)

    async def create_records(
        self, entity: Entity, records: Sequence[NewRecord]
    ) -> list[ItemResult]:
        # One loop without an await per record (the base class's default awaits
        # create_record for each): the same records, the same results. A subclass that
        # changes create_record keeps the default, which goes through its version.
        if type(self).create_record is not MemoryBackend.create_record:
            return await super().create_records(entity, records)
        create = self._create
        ids = _new_ids(_PREFIX[entity], len(records))
        return [create(entity, record, crm_id) for record, crm_id in zip(records, ids, strict=True)]

    def _create(self, entity: Entity, record: NewRecord, crm_id: str | None = None) -> ItemResult:
        existing = self._by_external[entity].get(record.external_id)
        if existing is not None:
            return ItemResult(crm_id=existing, created=False)
        fields = dict(record.fields)
        nested = _has_containers(fields)
        stored = _Record(
            crm_id=crm_id or _new_id(_PREFIX[entity]),
            external_id=record.external_id,
            seq=self._next_seq(),
            fields=_copy(fields) if nested else fields,
            match_keys=dict(record.match_keys),
            nested=nested,
        )
        self._records[entity][stored.crm_id] = stored
        self._by_external[entity][record.external_id] = stored.crm_id
        index = self._by_key[entity]
        for name, value in stored.match_keys.items():
            # A new record is the newest holder of each of its values (see _index).
            holders = index.setdefault(name, {})
            holders[value] = (*holders.get(value, ()), stored.crm_id)
        return ItemResult(crm_id=stored.crm_id, created=True)

    async def find_records(
        self, entity: Entity, key: MatchKey, values: Sequence[str]
    ) -> dict[str, StoredRecord]:
        records = self._records[entity]
        found: dict[str, StoredRecord] = {}
        if key.name == EXTERNAL_ID:
            for value in values:
                crm_id = self._by_external[entity].get(value)
                if crm_id is not None:
                    found[value] = records[crm_id].snapshot()
            return found
        index = self._by_key[entity].get(key.name, {})
        for value in values:
            ids = index.get(value)
            if ids:
                found[value] = records[ids[0]].snapshot()
        return found

    async def get_records(self, entity: Entity, crm_ids: Sequence[str]) -> dict[str, StoredRecord]:
        records = self._records[entity]
        return {i: records[i].snapshot() for i in crm_ids if i in records}

    async def update_record(self, entity: Entity, update: RecordUpdate) -> ItemResult:
        stored = self._records[entity].get(update.crm_id)
        if stored is None:
            return ItemResult(
                crm_id=update.crm_id,
                error=NotFound(f"No {entity.value} exists with ID: {update.crm_id}"),
            )
        for name in update.clear:
            stored.fields.pop(name, None)
        if _has_containers(update.fields):
            stored.nested = True  # stays set: a later update may not remove every container
            stored.fields.update(_copy(dict(update.fields)))
        else:
            stored.fields.update(update.fields)
        for name, value in update.match_keys.items():
            self._unindex(entity, stored, name)
            if value is not None:
                stored.match_keys[name] = value
                self._index(entity, stored, name, value)
        return ItemResult(crm_id=stored.crm_id)

    # -- associations -------------------------------------------------------------------------

    async def create_associations(self, pairs: Sequence[AssociationPair]) -> list[ItemResult]:
        results: list[ItemResult] = []
        for pair in pairs:
            if pair.contact_id not in self._records[Entity.CONTACT]:
                error = NotFound(f"No contact exists with ID: {pair.contact_id}")
                results.append(ItemResult(crm_id=pair.contact_id, error=error))
            elif pair.company_id not in self._records[Entity.COMPANY]:
                error = NotFound(f"No company exists with ID: {pair.company_id}")
                results.append(ItemResult(crm_id=pair.contact_id, error=error))
            else:
                self._companies_of.setdefault(pair.contact_id, {})[pair.company_id] = None
                self._contacts_of.setdefault(pair.company_id, {})[pair.contact_id] = None
                results.append(ItemResult(crm_id=pair.contact_id))
        return results

    # -- activities ---------------------------------------------------------------------------

    def _check_links(self, contact_id: str | None, company_id: str | None) -> None:
        if contact_id is not None and contact_id not in self._records[Entity.CONTACT]:
            raise NotFound(f"No contact exists with ID: {contact_id}")
        if company_id is not None and company_id not in self._records[Entity.COMPANY]:
            raise NotFound(f"No company exists with ID: {company_id}")

    async def create_activity(self, activity: NewActivity) -> Activity:
        key = activity.idempotency_key
        if key is not None and key in self._activity_by_key:
            return _copy_activity(self._activities[self._activity_by_key[key]])
        self._check_links(activity.contact_id, activity.company_id)
        stored = Activity(
            id=_new_id("act"),
            type=activity.type,
            direction=activity.direction,
            subject=activity.subject,
            body=activity.body,
            owner_id=activity.owner_id,
            occurred_at=activity.occurred_at,
            contact_id=activity.contact_id,
            company_id=activity.company_id,
            metadata=_copy(dict(activity.metadata)),
            created_at=datetime.now(UTC),
        )
        self._activities[stored.id] = stored
        self._activity_seq[stored.id] = self._next_seq()
        if key is not None:
            self._activity_by_key[key] = stored.id
        return _copy_activity(stored)

    # -- tasks --------------------------------------------------------------------------------

    async def create_task(self, task: NewTask) -> Task:
        self._check_links(task.contact_id, task.company_id)
        now = datetime.now(UTC)
        stored = Task(
            id=_new_id("task"),
            subject=task.subject,
            description=task.description,
            type=task.type,
            owner_id=task.owner_id,
            due_date=task.due_date,
            contact_id=task.contact_id,
            company_id=task.company_id,
            created_at=now,
            updated_at=now,
        )
        self._tasks[stored.id] = stored
        return stored  # Task is frozen and holds only immutable values

    async def get_tasks(self, ids: Sequence[str]) -> list[Task]:
        # dict.fromkeys drops repeats and keeps the order asked.
        return [self._tasks[i] for i in dict.fromkeys(ids) if i in self._tasks]

    async def update_task(self, task_id: str, changes: TaskChanges) -> Task:
        task = self._tasks.get(task_id)
        if task is None:
            raise NotFound(f"No task exists with ID: {task_id}")
        unknown = sorted(set(changes.fields) - set(TASK_FIELDS))
        if unknown:
            raise InvalidRecord(f"Unknown task field(s): {', '.join(unknown)}")
        new_fields: dict[str, Any] = dict(changes.fields)
        self._check_links(new_fields.get("contact_id"), new_fields.get("company_id"))
        if changes.completed is True:
            new_fields["completed"] = True
            new_fields["completed_at"] = changes.completed_at or (
                task.completed_at if task.completed else changes.now
            )
        elif changes.completed is False:
            new_fields["completed"] = False
            new_fields["completed_at"] = None
        task = replace(task, **new_fields, updated_at=changes.now)
        self._tasks[task_id] = task
        return task

    # -- users --------------------------------------------------------------------------------

    async def list_users(self) -> list[User]:
        options = self.options
        users = options.users if isinstance(options, MemoryOptions) else ()
        return [User(id=u.id, name=u.name, email=u.email) for u in users]

    # -- browsing -----------------------------------------------------------------------------

    async def counts(self) -> dict[str, int]:
        return {
            "contacts": len(self._records[Entity.CONTACT]),
            "companies": len(self._records[Entity.COMPANY]),
            "associations": sum(len(c) for c in self._companies_of.values()),
            "activities": len(self._activities),
            "tasks": len(self._tasks),
        }

    async def list_records(
        self, entity: Entity, *, limit: int = 50, offset: int = 0, search: str | None = None
    ) -> list[StoredRecord]:
        # Records are inserted in creation order, so reversed insertion order is newest first.
        newest_first: Iterable[_Record] = reversed(self._records[entity].values())
        if search:
            needle = search.casefold()
            newest_first = (r for r in newest_first if _contains(r, needle))
        return [r.snapshot() for r in itertools.islice(newest_first, offset, offset + limit)]

    async def list_associated(self, entity: Entity, crm_id: str) -> list[StoredRecord]:
        if entity is Entity.CONTACT:
            ids, other = self._companies_of.get(crm_id, {}), Entity.COMPANY
        else:
            ids, other = self._contacts_of.get(crm_id, {}), Entity.CONTACT
        return [self._records[other][i].snapshot() for i in ids]

    async def list_activities(
        self, *, contact_id: str | None = None, company_id: str | None = None, limit: int = 100
    ) -> list[Activity]:
        selected = [
            a
            for a in self._activities.values()
            if (contact_id is None or a.contact_id == contact_id)
            and (company_id is None or a.company_id == company_id)
        ]
        selected.sort(key=lambda a: (_when(a), self._activity_seq[a.id]), reverse=True)
        return [_copy_activity(a) for a in selected[:limit]]

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
        needle = search.casefold() if search else None
        selected = [
            t
            for t in reversed(self._tasks.values())
            if (contact_id is None or t.contact_id == contact_id)
            and (company_id is None or t.company_id == company_id)
            and (completed is None or t.completed is completed)
            and (
                needle is None
                or needle in t.subject.casefold()
                or needle in (t.description or "").casefold()
            )
        ]
        return selected[offset : offset + limit]
