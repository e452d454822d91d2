"""Tasks (A.10): create, read, update one or several, complete.

The group needs :attr:`~backends.base.Capability.TASKS`. A task update the backend cannot take
for a reason that can pass is accepted into the outbox (:class:`~adapter.contract.QueuedTaskOut`);
a ``contactId``, ``companyId`` or ``ownerId`` that names nothing is a 400 naming the field, and
404 ``task_not_found`` is kept for the task in the path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from adapter.contract import (
    KeyWarning,
    QueuedTaskOut,
    TaskBatchPatch,
    TaskIds,
    TaskIn,
    TaskOut,
    TaskPatch,
    TaskWritten,
)
from adapter.errors import TaskNotFound
from adapter.outbox import Queued, Writes
from adapter.service.checks import check_keys, reject_non_finite, require_capability
from adapter.service.references import ReferenceChecks
from backends.base import TASK_FIELDS, Capability, NewTask, NotFound, Task, TaskChanges

__all__ = ["TaskOperations"]


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


def _queued_task(
    task_id: str, changes: TaskChanges, warnings: list[KeyWarning] | None = None
) -> QueuedTaskOut:
    """What a queued task update will store: the fields it sets and its completion. The
    completion time is the request's ``completedAt``, else the time the update was accepted
    (a task completed already keeps its own, as on the direct path)."""
    known: dict[str, Any] = {"id": task_id, "queued": True}
    # The wire models' attributes carry the interface's names (TASK_FIELDS).
    for name in TASK_FIELDS:
        if name in changes.fields:
            known[name] = changes.fields[name]
    if changes.completed is not None:
        known["completed"] = changes.completed
        known["completed_at"] = (changes.completed_at or changes.now) if changes.completed else None
    if warnings:
        known["warnings"] = warnings
    # Only the keys in ``known`` count as set: the answer is rendered with exclude_unset.
    return QueuedTaskOut.model_validate(known)


class TaskOperations(ReferenceChecks):
    """The tasks part of :class:`adapter.service.Service`."""

    writes: Writes
    clock: Callable[[], datetime]

    async def create_task(self, item: TaskIn) -> TaskWritten:
        """Create a task (A.10); unknown keys travel in ``extra``.

        ``completed`` (or a ``completedAt`` alone) is honoured as on PATCH. :class:`NewTask` has
        no completion, so the task is created and then completed through ``update_task``: one
        more driver call, only for a task created completed.
        """
        require_capability(self.backend, Capability.TASKS, "tasks")
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
        require_capability(self.backend, Capability.TASKS, "tasks")
        tasks = await self.backend.get_tasks([task_id])
        if not tasks:
            raise TaskNotFound(task_id)
        return _task_out(tasks[0])

    async def update_task(self, task_id: str, patch: TaskPatch) -> TaskWritten | QueuedTaskOut:
        """Partial update: only the keys sent change; completing sets ``completedAt`` (A.10).
        Accepted into the outbox: a :class:`~adapter.contract.QueuedTaskOut`.

        404 ``task_not_found`` only for the task in the path; a ``contactId``, ``companyId``
        or ``ownerId`` that names nothing is a 400 naming the field."""
        require_capability(self.backend, Capability.TASKS, "tasks")
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
        require_capability(self.backend, Capability.TASKS, "tasks")
        return [_task_out(t) for t in await self.backend.get_tasks(list(ids))] if ids else []

    async def read_tasks(self, request: TaskIds) -> list[TaskOut]:
        """``POST /tasks/batch``: :meth:`get_tasks` after the key checks."""
        check_keys(request, "a task batch", kept=False)
        return await self.get_tasks(request.ids)

    async def update_tasks(self, patch: TaskBatchPatch) -> list[TaskOut | QueuedTaskOut]:
        """Complete (or un-complete) several tasks; unknown ids are skipped. Ids accepted into
        the outbox are listed as :class:`~adapter.contract.QueuedTaskOut`, in the order asked
        (whether they exist is known once delivered)."""
        require_capability(self.backend, Capability.TASKS, "tasks")
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
        for name in TASK_FIELDS:  # TaskPatch's attributes carry the interface's names
            if name in sent:
                value = getattr(patch, name)
                if name == "subject" and value is None:
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
