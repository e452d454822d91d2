"""Associations, activities, tasks and users: the optional groups of the contract (A.9-A.11).

Each group needs its :class:`~backends.base.Capability`; a driver without it gets one
contract-level answer (501 ``not_supported``) before any work is done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from adapter.contract import (
    ActivityIn,
    ActivityOut,
    AssociationError,
    AssociationIn,
    AssociationsResponse,
    TaskBatchPatch,
    TaskIn,
    TaskOut,
    TaskPatch,
    UserOut,
)
from adapter.errors import TaskNotFound
from backends.base import (
    Activity,
    AssociationPair,
    Backend,
    Capability,
    NewActivity,
    NewTask,
    NotFound,
    Task,
    TaskChanges,
    Unsupported,
    User,
)

__all__ = ["KNOWN_ACTIVITY_TYPES", "EngagementOperations"]

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


class EngagementOperations:
    """The associations, activities, tasks and users half of :class:`adapter.service.Service`."""

    backend: Backend
    users: list[User] | None
    clock: Callable[[], datetime]
    _seen_activity_types: set[str]

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
