"""Translation between Enginy's contract and the driver interface.

The :class:`Service` takes validated wire models (``adapter/contract.py``), applies the YAML
field mapping and computes match keys once (``adapter/mapping.py``, ``adapter/matching.py``),
calls the driver, and builds the wire responses. It knows nothing about HTTP: failures leave as
exceptions (:class:`adapter.errors.ApiError` or a driver's :class:`backends.base.BackendError`)
and are rendered by ``adapter/errors.py``.

Decisions of the contract's Part A implemented here: idempotent creates and per-record batch
outcomes (A.4, A.5), partial updates with the null policy (A.6), sync matching in priority
order with one driver call per key per batch (A.7), field mapping both ways (A.8), activity
idempotency keys and unknown types (A.9), task completion (A.10), users (A.11) and the cached
health check (A.12).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapter.contract import (
    ActivityIn,
    ActivityOut,
    AssociationError,
    AssociationIn,
    AssociationsResponse,
    CreateError,
    CreateResponse,
    CreateResult,
    RecordIn,
    RecordUpdateIn,
    SyncResponse,
    SyncResult,
    TaskBatchPatch,
    TaskIn,
    TaskOut,
    TaskPatch,
    UpdateResponse,
    UpdateResult,
    UserOut,
)
from adapter.errors import BatchFailed, HealthUnavailable, TaskNotFound
from adapter.mapping import ENVELOPE_FIELDS, FieldMapper, NullPolicy, UnmappedField
from adapter.matching import Matcher
from backends.base import (
    EXTERNAL_ID,
    Activity,
    AssociationPair,
    Backend,
    BackendError,
    Capability,
    Entity,
    MatchKey,
    NewActivity,
    NewRecord,
    NewTask,
    NotFound,
    RecordUpdate,
    StoredRecord,
    Task,
    TaskChanges,
    Unavailable,
    Unsupported,
    User,
)

__all__ = ["KNOWN_ACTIVITY_TYPES", "HealthCheck", "Service"]

logger = logging.getLogger("adapter.service")

#: The activity types Enginy documents (A.9); any other type is stored as a generic activity.
KNOWN_ACTIVITY_TYPES = frozenset({"EMAIL", "LINKEDIN", "LINKEDIN_INMAIL", "LINKEDIN_CONNECTION"})

#: Task fields of the wire (camelCase) → :data:`backends.base.TASK_FIELDS` names.
_TASK_FIELD_NAMES = {
    "subject": "subject",
    "description": "description",
    "type": "type",
    "owner_id": "owner_id",
    "due_date": "due_date",
    "contact_id": "contact_id",
    "company_id": "company_id",
}


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _require(backend: Backend, capability: Capability, what: str) -> None:
    # One contract-level answer for an optional group the driver lacks (501 via errors.py),
    # before any work is done.
    if capability not in backend.capabilities:
        raise Unsupported(f"the {backend.name} backend does not support {what}")


def _task_out(task: Task) -> TaskOut:
    return TaskOut(
        id=task.id,
        subject=task.subject,
        description=task.description,
        type=task.type,
        owner_id=task.owner_id,
        due_date=task.due_date,
        contact_id=task.contact_id,
        company_id=task.company_id,
        completed=task.completed,
        completed_at=task.completed_at if task.completed else None,
        created_at=task.created_at,
        updated_at=task.updated_at,
    )


def _activity_out(activity: Activity) -> ActivityOut:
    return ActivityOut(
        id=activity.id,
        type=activity.type,
        subject=activity.subject,
        body=activity.body,
        direction=activity.direction,
        owner_id=activity.owner_id,
        occurred_at=activity.occurred_at,
        contact_id=activity.contact_id,
        company_id=activity.company_id,
        metadata=dict(activity.metadata),
        created_at=activity.created_at,
    )


# --------------------------------------------------------------------------------------------
# Health
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Probe:
    at: float
    error: BackendError | None


class HealthCheck:
    """The backend's reachability, checked at most once per ``ttl`` seconds (A.12).

    Concurrent callers while a ping is running all wait for that one ping: a burst of probes
    reaches the CRM once.
    """

    def __init__(
        self, backend: Backend, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._backend = backend
        self._ttl = ttl
        self._clock = clock
        self._last: _Probe | None = None
        self._running: asyncio.Future[_Probe] | None = None

    async def check(self) -> BackendError | None:
        """``None`` when the backend is reachable, else the error that says why not."""
        last = self._last
        if last is not None and self._clock() - last.at < self._ttl:
            return last.error
        if self._running is None:
            self._running = asyncio.ensure_future(self._probe())
            self._running.add_done_callback(self._finished)
        # shield: a caller that goes away must not cancel the ping the others wait for.
        probe = await asyncio.shield(self._running)
        return probe.error

    def _finished(self, future: asyncio.Future[_Probe]) -> None:
        self._running = None
        if not future.cancelled() and future.exception() is None:
            self._last = future.result()

    async def _probe(self) -> _Probe:
        error: BackendError | None = None
        try:
            await self._backend.ping()
        except BackendError as exc:
            error = exc
        except Exception as exc:
            # A driver bug must not turn /health into a 500; the detail goes to the log only.
            logger.error("backend ping raised an unexpected error", exc_info=exc)
            error = Unavailable("the backend check failed unexpectedly; see the server log")
        if error is not None:
            logger.warning("health check: backend unavailable: %s", error)
        return _Probe(at=self._clock(), error=error)


# --------------------------------------------------------------------------------------------
# The service
# --------------------------------------------------------------------------------------------


class Service:
    """Everything between the wire models and the driver.

    ``mappers`` and ``nulls`` hold one entry per :class:`Entity`; ``users`` is the static YAML
    list (``None`` when not configured); ``clock`` is the time used for task completion.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        mappers: Mapping[Entity, FieldMapper],
        matcher: Matcher,
        nulls: Mapping[Entity, NullPolicy],
        users: Sequence[User] | None = None,
        health_cache_seconds: float = 5.0,
        clock: Callable[[], datetime] = _utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.mappers = dict(mappers)
        self.matcher = matcher
        self.nulls = dict(nulls)
        self.users = list(users) if users is not None else None
        self.health = HealthCheck(backend, health_cache_seconds, monotonic)
        self.clock = clock
        self._seen_activity_types: set[str] = set(KNOWN_ACTIVITY_TYPES)

    # -- contacts and companies -------------------------------------------------------------

    async def create_records(self, entity: Entity, items: Sequence[RecordIn]) -> CreateResponse:
        """Create (idempotently on ``externalId``) and report per record (A.4, A.5, A.8)."""
        mapper = self.mappers[entity]
        records: list[NewRecord] = []
        errors: list[CreateError] = []
        for item in items:
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
        for record, outcome in zip(records, outcomes, strict=True):
            if outcome.error is None and outcome.crm_id is not None:
                results.append({"externalId": record.external_id, "crmId": outcome.crm_id})
            else:
                error = outcome.error or BackendError("the backend returned no id")
                errors.append(
                    {
                        "externalId": record.external_id,
                        "error": error.code,
                        "message": error.message,
                    }
                )
        if errors and not results:
            raise BatchFailed(errors)
        response: CreateResponse = {"results": results}
        if errors:
            response["errors"] = errors
        return response

    async def sync_records(self, entity: Entity, items: Sequence[RecordIn]) -> SyncResponse:
        """Find existing records: ``externalId`` first, then each configured key in priority
        order for the items still unmatched; one driver call per key per batch (A.7)."""
        mapper = self.mappers[entity]
        found: list[StoredRecord | None] = [None] * len(items)

        by_external = await self.backend.find_records(
            entity, MatchKey(EXTERNAL_ID), list(dict.fromkeys(i["externalId"] for i in items))
        )
        pending: list[int] = []
        for index, item in enumerate(items):
            record = by_external.get(item["externalId"])
            if record is None:
                pending.append(index)
            else:
                found[index] = record

        for spec in self.matcher.keys_for(entity):
            if not pending:
                break
            wanted: dict[int, str] = {}
            for index in pending:
                value = self.matcher.normalise(spec, items[index].get(spec.field))
                if value is not None:
                    wanted[index] = value
            if not wanted:
                continue
            key = MatchKey(spec.field, mapper.backend_name(spec.field))
            hits = await self.backend.find_records(
                entity, key, list(dict.fromkeys(wanted.values()))
            )
            still: list[int] = []
            for index in pending:
                value = wanted.get(index)
                record = hits.get(value) if value is not None else None
                if record is None:
                    still.append(index)
                else:
                    found[index] = record
            pending = still

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

    async def update_records(
        self, entity: Entity, items: Sequence[RecordUpdateIn]
    ) -> UpdateResponse:
        """Partial updates; one result per input, in order (A.6)."""
        mapper = self.mappers[entity]
        clear_nulls = self.nulls.get(entity, NullPolicy.IGNORE) is NullPolicy.CLEAR
        slots: list[UpdateResult | None] = []
        updates: list[RecordUpdate] = []
        for item in items:
            crm_id = item["crmId"]
            values = {k: v for k, v in item.items() if v is not None and k not in ENVELOPE_FIELDS}
            nulls = [k for k, v in item.items() if v is None] if clear_nulls else []
            try:
                backend_values = mapper.to_backend(values)
                # The same policy applies to a field being cleared as to one being set.
                cleared = frozenset(mapper.to_backend(dict.fromkeys(nulls)))
            except UnmappedField as exc:
                slots.append(
                    {
                        "crmId": crm_id,
                        "success": False,
                        "error": "unmapped_field",
                        "message": f"no field mapping for: {', '.join(exc.fields)}",
                    }
                )
                continue
            keys = self.matcher.changed_match_keys(entity, values, nulls)
            updates.append(RecordUpdate(crm_id, backend_values, cleared, keys))
            slots.append(None)

        outcomes = iter(await self.backend.update_records(entity, updates) if updates else [])
        results: list[UpdateResult] = []
        update_iter = iter(updates)
        for slot in slots:
            if slot is not None:
                results.append(slot)
                continue
            update, outcome = next(update_iter), next(outcomes)
            if outcome.error is None:
                results.append({"crmId": update.crm_id, "success": True})
            else:
                results.append(
                    {
                        "crmId": update.crm_id,
                        "success": False,
                        "error": outcome.error.code,
                        "message": outcome.error.message,
                    }
                )
        return {"results": results}

    # -- associations -------------------------------------------------------------------------

    async def create_associations(self, items: Sequence[AssociationIn]) -> AssociationsResponse:
        """Link contacts to companies; ``created`` counts the pairs that succeeded."""
        _require(self.backend, Capability.ASSOCIATIONS, "associations")
        pairs = [AssociationPair(i.contact_crm_id, i.company_crm_id) for i in items]
        outcomes = await self.backend.create_associations(pairs) if pairs else []
        errors = [
            AssociationError(
                contactCRMId=pair.contact_id,
                companyCRMId=pair.company_id,
                error=outcome.error.code,
                message=outcome.error.message,
            )
            for pair, outcome in zip(pairs, outcomes, strict=True)
            if outcome.error is not None
        ]
        created = len(pairs) - len(errors)
        return AssociationsResponse(
            success=created > 0 or not errors, created=created, errors=errors or None
        )

    # -- activities ---------------------------------------------------------------------------

    async def create_activity(self, item: ActivityIn) -> ActivityOut:
        """Store one activity, idempotently on ``(type, direction, metadata.messageId)`` (A.9)."""
        _require(self.backend, Capability.ACTIVITIES, "activities")
        metadata = item.metadata or {}
        message_id = metadata.get("messageId")
        # Only a scalar id is a key; an object or list there is carried in metadata as sent.
        usable = isinstance(message_id, str | int) and not isinstance(message_id, bool)
        key = None
        if usable and message_id != "":
            # Case and surrounding spaces do not make another activity: "email"/"outbound" and
            # "EMAIL"/"OUTBOUND" are one message sent once. The values are stored as sent (A.9);
            # only the key is folded. Upper case keeps the keys of documented values unchanged.
            direction = item.direction.strip().upper() if item.direction is not None else None
            key = f"{item.type.strip().upper()}|{direction}|{message_id}"
        if item.type not in self._seen_activity_types:
            self._seen_activity_types.add(item.type)
            # The type is Enginy's text, shown with repr and cut short: it is input.
            logger.warning(
                "activity type %r is not one of the documented types; storing it as a "
                "generic activity (logged once per type)",
                item.type[:64],
            )
        activity = await self.backend.create_activity(
            NewActivity(
                type=item.type,
                direction=item.direction,
                subject=item.subject,
                body=item.body,
                owner_id=item.owner_id,
                occurred_at=item.occurred_at,
                contact_id=item.contact_id,
                company_id=item.company_id,
                metadata=metadata,
                idempotency_key=key,
                extra=dict(item.model_extra or {}),
            )
        )
        return _activity_out(activity)

    # -- tasks --------------------------------------------------------------------------------

    async def create_task(self, item: TaskIn) -> TaskOut:
        """Create a task (A.10); unknown keys travel in ``extra``.

        ``completed`` (or a ``completedAt`` alone) is honoured as on PATCH. :class:`NewTask` has
        no completion, so the task is created and then completed through ``update_task``: one
        more driver call, only for a task created completed.
        """
        _require(self.backend, Capability.TASKS, "tasks")
        task = await self.backend.create_task(
            NewTask(
                subject=item.subject,
                description=item.description,
                type=item.type,
                owner_id=item.owner_id,
                due_date=item.due_date,
                contact_id=item.contact_id,
                company_id=item.company_id,
                extra=dict(item.model_extra or {}),
            )
        )
        completed = item.completed
        if completed is None and item.completed_at is not None:
            completed = True  # a completion time alone means "completed then", as on PATCH
        if completed:
            changes = TaskChanges(now=self.clock(), completed=True, completed_at=item.completed_at)
            task = await self.backend.update_task(task.id, changes)
        return _task_out(task)

    async def get_task(self, task_id: str) -> TaskOut:
        """One task; 404 ``task_not_found`` for an unknown id."""
        _require(self.backend, Capability.TASKS, "tasks")
        tasks = await self.backend.get_tasks([task_id])
        if not tasks:
            raise TaskNotFound(task_id)
        return _task_out(tasks[0])

    async def update_task(self, task_id: str, patch: TaskPatch) -> TaskOut:
        """Partial update: only the keys sent change; completing sets ``completedAt`` (A.10)."""
        _require(self.backend, Capability.TASKS, "tasks")
        changes = self._task_changes(patch)
        try:
            task = await self.backend.update_task(task_id, changes)
        except NotFound as exc:
            # The contract's own 404 for tasks, not the generic one.
            raise TaskNotFound(task_id) from exc
        return _task_out(task)

    async def get_tasks(self, ids: Sequence[str]) -> list[TaskOut]:
        """The tasks that exist, in the order asked; unknown ids are skipped."""
        _require(self.backend, Capability.TASKS, "tasks")
        return [_task_out(t) for t in await self.backend.get_tasks(list(ids))] if ids else []

    async def update_tasks(self, patch: TaskBatchPatch) -> list[TaskOut]:
        """Complete (or un-complete) several tasks; unknown ids are skipped."""
        _require(self.backend, Capability.TASKS, "tasks")
        if not patch.ids:
            return []
        changes = TaskChanges(
            now=self.clock(), completed=patch.completed, completed_at=patch.completed_at
        )
        return [_task_out(t) for t in await self.backend.update_tasks(patch.ids, changes)]

    def _task_changes(self, patch: TaskPatch) -> TaskChanges:
        sent = patch.model_fields_set
        fields: dict[str, Any] = {}
        for attr, name in _TASK_FIELD_NAMES.items():
            if attr in sent:
                value = getattr(patch, attr)
                if attr == "subject" and value is None:
                    continue  # a task always has a subject: a null is "no change"
                fields[name] = value
        completed = patch.completed
        if completed is None and patch.completed_at is not None:
            completed = True  # a completion time alone means "completed then"
        return TaskChanges(
            now=self.clock(),
            fields=fields,
            completed=completed,
            completed_at=patch.completed_at if completed else None,
        )

    # -- users and health ---------------------------------------------------------------------

    async def list_users(self) -> list[UserOut]:
        """The YAML list when one is configured, else the backend's users, else 501 (A.11).

        An explicit ``users:`` list wins over the backend (as ``config.example.yaml`` documents):
        every built-in driver declares :attr:`Capability.USERS`, so a list that only applied
        to drivers without it would never be served.
        """
        if self.users is not None:
            users = self.users
        elif Capability.USERS in self.backend.capabilities:
            users = await self.backend.list_users()
        else:
            raise Unsupported("user listing is not available: no backend users and no static list")
        return [UserOut(id=u.id, name=u.name, email=u.email) for u in users]

    async def check_health(self) -> None:
        """Return when the backend is reachable; raise a 503 error otherwise (A.12)."""
        error = await self.health.check()
        if error is not None:
            raise HealthUnavailable(error)
