"""Associations, activities, tasks and users: the optional groups of the contract (A.9-A.11).

Each group needs its :class:`~backends.base.Capability`; a driver without it gets one
contract-level answer (501 ``not_supported``) before any work is done. Before a write, the
checks of :mod:`adapter.service.checks` (keys that are almost fields, numbers that are not
finite) and the owner check of :mod:`adapter.service.references` run; a contact or company that
does not exist is found by the driver and named here (400 ``invalid_reference``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from cachetools import LRUCache

from adapter.contract import (
    ActivityCreated,
    ActivityIn,
    AssociationError,
    AssociationIn,
    AssociationsResponse,
    KeyWarning,
    QueuedActivityOut,
    QueuedTaskOut,
    TaskBatchPatch,
    TaskIds,
    TaskIn,
    TaskOut,
    TaskPatch,
    TaskWritten,
    UserOut,
)
from adapter.errors import ApiError, TaskNotFound
from adapter.outbox import Queued, Writes
from adapter.service.checks import check_keys, reject_non_finite
from adapter.service.references import (
    REFERENCE_FIELDS,
    InvalidReference,
    UserDirectory,
    describe,
    missing_references,
)
from backends.base import (
    Activity,
    AssociationPair,
    Backend,
    Capability,
    Entity,
    NewActivity,
    NewTask,
    NotFound,
    Task,
    TaskChanges,
    Unsupported,
    User,
)

__all__ = ["KNOWN_ACTIVITY_TYPES", "EngagementOperations", "SeenTypes"]

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


class SeenTypes:
    """The activity types already warned about (A.9: one warning per new type).

    Types are input: only the most recent ``size`` are remembered, each as a fixed-size digest,
    so that a client sending ever new (or huge) types cannot grow the set; a forgotten type is
    warned about again when it comes back.
    """

    def __init__(self, known: frozenset[str], size: int = 1024) -> None:
        self._known = known
        self._seen: LRUCache[bytes, None] = LRUCache(maxsize=size)

    def first_time(self, activity_type: str) -> bool:
        """Whether ``activity_type`` is undocumented and not seen lately (and remember it)."""
        if activity_type in self._known:
            return False
        key = hashlib.blake2b(
            activity_type.encode("utf-8", "surrogatepass"), digest_size=16
        ).digest()
        if key in self._seen:
            return False
        self._seen[key] = None
        return True

    def __len__(self) -> int:
        return len(self._seen)


def _require(backend: Backend, capability: Capability, what: str) -> None:
    # One contract-level answer for an optional group the driver lacks (501 via errors.py),
    # before any work is done.
    if capability not in backend.capabilities:
        raise Unsupported(f"the {backend.name} backend does not support {what}")


def _task_out(task: Task, warnings: list[KeyWarning] | None = None) -> TaskWritten:
    return TaskWritten(
        warnings=warnings or None,
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


def _activity_out(
    activity: Activity,
    warnings: list[KeyWarning] | None = None,
    model: type[ActivityCreated] = ActivityCreated,
) -> ActivityCreated:
    return model(
        warnings=warnings or None,
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


#: What a new activity and a stored one share: a queued activity is shown as it will be stored.
_NEW_ACTIVITY_FIELDS = tuple(
    f.name for f in dataclasses.fields(Activity) if f.name not in ("id", "created_at")
)


def _queued_activity(
    receipt: str, new: NewActivity, warnings: list[KeyWarning] | None = None
) -> ActivityCreated:
    # The id is the queue's receipt: the CRM's id does not exist until delivery.
    values = {name: getattr(new, name) for name in _NEW_ACTIVITY_FIELDS}
    return _activity_out(Activity(id=receipt, **values), warnings, QueuedActivityOut)


def _queued_task(
    task_id: str, changes: TaskChanges, warnings: list[KeyWarning] | None = None
) -> QueuedTaskOut:
    """What a queued task update will store: the fields it sets and its completion. The
    completion time is the request's ``completedAt``, else the time the update was accepted
    (a task completed already keeps its own, as on the direct path)."""
    known: dict[str, Any] = {"id": task_id, "queued": True}
    for attr, name in _TASK_FIELD_NAMES.items():
        if name in changes.fields:
            known[attr] = changes.fields[name]
    if changes.completed is not None:
        known["completed"] = changes.completed
        known["completed_at"] = (changes.completed_at or changes.now) if changes.completed else None
    if warnings:
        known["warnings"] = warnings
    # Only the keys in ``known`` count as set: the answer is rendered with exclude_unset.
    return QueuedTaskOut.model_validate(known)


class EngagementOperations:
    """The associations, activities, tasks and users half of :class:`adapter.service.Service`."""

    backend: Backend
    writes: Writes
    users: list[User] | None
    clock: Callable[[], datetime]
    scrub: Callable[[str], str]
    directory: UserDirectory
    _seen_activity_types: SeenTypes

    # -- associations -------------------------------------------------------------------------

    async def create_associations(self, items: Sequence[AssociationIn]) -> AssociationsResponse:
        """Link contacts to companies; ``created`` counts the pairs that succeeded, ``queued``
        (only when some were) the pairs accepted into the outbox. A pair naming a contact or
        company that does not exist is an ``invalid_reference`` error naming the field; when no
        pair could be linked nor queued, the answer is 400."""
        _require(self.backend, Capability.ASSOCIATIONS, "associations")
        warnings: list[KeyWarning] = []
        for index, item in enumerate(items):
            warnings += check_keys(
                item, "an association", where=f"associations[{index}]", kept=False
            )
        pairs = [AssociationPair(i.contact_crm_id, i.company_crm_id) for i in items]
        outcomes = await self.writes.create_associations(pairs) if pairs else []
        failed = [
            (pair, outcome.error)
            for pair, outcome in zip(pairs, outcomes, strict=True)
            if not isinstance(outcome, Queued) and outcome.error is not None
        ]
        missing = await self._missing_in_pairs([p for p, e in failed if isinstance(e, NotFound)])
        errors: list[AssociationError] = []
        for pair, error in failed:
            named = missing.get(pair)
            errors.append(
                AssociationError(
                    contactCRMId=pair.contact_id,
                    companyCRMId=pair.company_id,
                    error=InvalidReference.code if named else error.code,
                    message="; ".join(named) if named else self.scrub(error.message),
                )
            )
        queued = sum(1 for outcome in outcomes if isinstance(outcome, Queued))
        created = len(pairs) - len(errors) - queued
        response = AssociationsResponse(
            success=created > 0 or queued > 0 or not errors,
            created=created,
            errors=errors or None,
            queued=queued or None,
            warnings=warnings or None,
        )
        if errors and not created and not queued:
            raise ApiError(
                f"none of the {len(errors)} pairs could be linked; see errors",
                code="batch_failed",
                extra=response.model_dump(mode="json", by_alias=True, exclude_none=True),
            )
        return response

    async def _missing_in_pairs(
        self, pairs: Sequence[AssociationPair]
    ) -> dict[AssociationPair, list[str]]:
        """For pairs the driver reported ``NotFound``: which of their ids name nothing, as
        messages naming the field (one ``get_records`` per entity for all of them)."""
        if not pairs:
            return {}
        contacts = await self.backend.get_records(
            Entity.CONTACT, sorted({p.contact_id for p in pairs})
        )
        companies = await self.backend.get_records(
            Entity.COMPANY, sorted({p.company_id for p in pairs})
        )
        named: dict[AssociationPair, list[str]] = {}
        for pair in pairs:
            problems = []
            if pair.contact_id not in contacts:
                problems.append(describe("contactCRMId", Entity.CONTACT, pair.contact_id))
            if pair.company_id not in companies:
                problems.append(describe("companyCRMId", Entity.COMPANY, pair.company_id))
            if problems:
                named[pair] = problems
        return named

    async def _check_owner(self, owner_id: str | None) -> None:
        if owner_id and await self.directory.unknown([owner_id]):
            raise InvalidReference([describe("ownerId", None, owner_id)])

    async def _reference_error(
        self, error: NotFound, contact_id: str | None, company_id: str | None
    ) -> ApiError:
        """The 400 for a write the driver refused with ``NotFound`` for its contact or
        company: which one is asked on this error path only."""
        references = {
            "contactId": (REFERENCE_FIELDS["contactId"], contact_id),
            "companyId": (REFERENCE_FIELDS["companyId"], company_id),
        }
        missing = await missing_references(self.backend, references)
        if not missing:
            # Found now (created meanwhile?): the driver's own words, whatever they are.
            return InvalidReference([self.scrub(error.message)])
        return InvalidReference(
            [describe(f, references[f][0], references[f][1] or "") for f in missing]
        )

    # -- activities ---------------------------------------------------------------------------

    async def create_activity(self, item: ActivityIn) -> ActivityCreated:
        """Store one activity, idempotently on ``(type, direction, metadata.messageId)`` (A.9).

        Accepted into the outbox: the activity as it will be stored, its ``id`` the queue's
        receipt (:class:`~adapter.contract.QueuedActivityOut`)."""
        _require(self.backend, Capability.ACTIVITIES, "activities")
        warnings = check_keys(item, "an activity", kept=True)
        reject_non_finite({"metadata": item.metadata, **(item.model_extra or {})})
        await self._check_owner(item.owner_id)
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
        if self._seen_activity_types.first_time(item.type):
            # The type is Enginy's text, shown with repr and cut short: it is input.
            logger.warning(
                "activity type %r is not one of the documented types; storing it as a "
                "generic activity (logged once per type)",
                item.type[:64],
            )
        new = NewActivity(
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
        try:
            activity = await self.writes.create_activity(new)
        except NotFound as exc:
            raise await self._reference_error(exc, item.contact_id, item.company_id) from exc
        if isinstance(activity, Queued):
            return _queued_activity(activity.receipt, new, warnings)
        return _activity_out(activity, warnings)

    # -- tasks --------------------------------------------------------------------------------

    async def create_task(self, item: TaskIn) -> TaskWritten:
        """Create a task (A.10); unknown keys travel in ``extra``.

        ``completed`` (or a ``completedAt`` alone) is honoured as on PATCH. :class:`NewTask` has
        no completion, so the task is created and then completed through ``update_task``: one
        more driver call, only for a task created completed.
        """
        _require(self.backend, Capability.TASKS, "tasks")
        warnings = check_keys(item, "a task", kept=True)
        reject_non_finite(item.model_extra or {})
        await self._check_owner(item.owner_id)
        try:
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
        except NotFound as exc:
            raise await self._reference_error(exc, item.contact_id, item.company_id) from exc
        completed = item.completed
        if completed is None and item.completed_at is not None:
            completed = True  # a completion time alone means "completed then", as on PATCH
        if completed:
            changes = TaskChanges(now=self.clock(), completed=True, completed_at=item.completed_at)
            task = await self.backend.update_task(task.id, changes)
        return _task_out(task, warnings)

    async def get_task(self, task_id: str) -> TaskOut:
        """One task; 404 ``task_not_found`` for an unknown id."""
        _require(self.backend, Capability.TASKS, "tasks")
        tasks = await self.backend.get_tasks([task_id])
        if not tasks:
            raise TaskNotFound(task_id)
        return _task_out(tasks[0])

    async def update_task(self, task_id: str, patch: TaskPatch) -> TaskWritten | QueuedTaskOut:
        """Partial update: only the keys sent change; completing sets ``completedAt`` (A.10).
        Accepted into the outbox: a :class:`~adapter.contract.QueuedTaskOut`.

        404 ``task_not_found`` only for the task in the path; a ``contactId``, ``companyId``
        or ``ownerId`` that names nothing is a 400 naming the field."""
        _require(self.backend, Capability.TASKS, "tasks")
        warnings = check_keys(patch, "a task", kept=False)
        changes = self._task_changes(patch)
        if "owner_id" in changes.fields:
            await self._check_owner(changes.fields["owner_id"])
        try:
            task = await self.writes.update_task(task_id, changes)
        except NotFound as exc:
            contact_id = changes.fields.get("contact_id")
            company_id = changes.fields.get("company_id")
            if (contact_id or company_id) and await self.backend.get_tasks([task_id]):
                # The task exists: what was not found is a record it should point at.
                raise await self._reference_error(exc, contact_id, company_id) from exc
            # The contract's own 404 for tasks, not the generic one.
            raise TaskNotFound(task_id) from exc
        if isinstance(task, Queued):
            return _queued_task(task_id, changes, warnings)
        return _task_out(task, warnings)

    async def get_tasks(self, ids: Sequence[str]) -> list[TaskOut]:
        """The tasks that exist, in the order asked; unknown ids are skipped."""
        _require(self.backend, Capability.TASKS, "tasks")
        return [_task_out(t) for t in await self.backend.get_tasks(list(ids))] if ids else []

    async def read_tasks(self, request: TaskIds) -> list[TaskOut]:
        """``POST /tasks/batch``: :meth:`get_tasks` after the key checks."""
        check_keys(request, "a task batch", kept=False)
        return await self.get_tasks(request.ids)

    async def update_tasks(self, patch: TaskBatchPatch) -> list[TaskOut | QueuedTaskOut]:
        """Complete (or un-complete) several tasks; unknown ids are skipped. Ids accepted into
        the outbox are listed as :class:`~adapter.contract.QueuedTaskOut`, in the order asked
        (whether they exist is known once delivered)."""
        _require(self.backend, Capability.TASKS, "tasks")
        check_keys(patch, "a task batch", kept=False)
        if not patch.ids:
            return []
        changes = TaskChanges(
            now=self.clock(), completed=patch.completed, completed_at=patch.completed_at
        )
        tasks, queued = await self.writes.update_tasks(patch.ids, changes)
        if not queued:
            return [_task_out(t) for t in tasks]
        by_id = {t.id: t for t in tasks}
        out: list[TaskOut | QueuedTaskOut] = []
        for task_id in dict.fromkeys(patch.ids):
            if task_id in queued:
                out.append(_queued_task(task_id, changes))
            elif task_id in by_id:
                out.append(_task_out(by_id[task_id]))
        return out

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
