"""Tasks: create, read, and update with completion as a field write.

A task create answers with its id, or (BottleCRM) with none: then the task is found by the
unique token the driver wrote into it (``tasks.token``, found through ``tasks.find``). The
same token makes a create whose answer was lost safe to retry: the task is looked up by it
before anything is sent again.

An update reads the task first, because completion has rules (``TaskChanges``): completing a
task already completed keeps its ``completed_at`` unless a time is given, and reopening it
clears it. The update template reads ``completed`` and ``completed_at`` (present only when the
call changes completion) and ``fields`` (only the fields that change).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

from backends.base import (
    TASK_FIELDS,
    Entity,
    InvalidRecord,
    NewTask,
    NotFound,
    RateLimited,
    Task,
    TaskChanges,
    Unavailable,
    Unsupported,
)
from backends.rest.engagements import EngagementsMixin
from backends.rest.finding import KeyPlan, run_strategy
from backends.rest.lookups import StrategyHost
from backends.rest.paths import MISSING, get_path
from backends.rest.resources import TasksSpec

__all__ = ["TasksMixin"]


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


class TasksMixin(EngagementsMixin):
    """Tasks of :class:`backends.rest.RestBackend`."""

    def _tasks(self) -> TasksSpec:
        if self.options.tasks is None:
            raise Unsupported("backend.options.tasks is not configured")
        return self.options.tasks

    def _task_of(self, raw: Mapping[str, Any]) -> Task | None:
        shape = self._tasks().record

        computed = {
            name: template.evaluate({"record": raw}, self.options.tables)
            for name, template in shape.read.items()
        }

        def read(paths: str | list[str] | None, name: str = "") -> Any:
            if name in computed:
                value = computed[name]
                return None if value in (MISSING, "") else value
            for path in [paths] if isinstance(paths, str) else paths or []:
                value = get_path(raw, path)
                if value not in (MISSING, "", None):
                    return value
            return None

        def text(path: str | list[str] | None, name: str = "") -> str | None:
            value = read(path, name)
            return None if value is None else str(value)

        task_id = text(shape.id, "id")
        if task_id is None:
            return None
        completed = read(shape.completed, "completed") in shape.completed_values
        return Task(
            id=task_id,
            subject=text(shape.subject, "subject") or "",
            description=text(shape.description, "description"),
            type=text(shape.type, "type"),
            owner_id=text(shape.owner_id, "owner_id"),
            due_date=_time(read(shape.due_date, "due_date")),
            contact_id=text(shape.contact_id, "contact_id"),
            company_id=text(shape.company_id, "company_id"),
            completed=completed,
            completed_at=_time(read(shape.completed_at, "completed_at")) if completed else None,
            created_at=_time(read(shape.created_at, "created_at")),
            updated_at=_time(read(shape.updated_at, "updated_at")),
        )

    async def _raw_tasks(self, ids: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        spec = self._tasks()
        ids = self.usable_ids(ids, spec.record.id_format)
        found: dict[str, Mapping[str, Any]] = {}
        if not ids:
            return found
        if spec.get_many is not None:
            many = spec.get_many
            chunks = [ids[i : i + many.per_call] for i in range(0, len(ids), many.per_call)]
            pages = await self.gather([partial(self._collect_ids, many, c) for c in chunks])
            raws: list[Any] = [r for page in pages for r in page]
        else:
            get = spec.get
            assert get is not None

            async def one(task_id: str) -> Any:
                try:
                    answer = await self.client.send(get.request, get.response, {"id": task_id})
                except NotFound:
                    return None
                return get.response.record_of(answer.body)

            raws = await self.gather([partial(one, i) for i in ids])
        for raw in raws:
            if isinstance(raw, Mapping):
                task_id = get_path(raw, spec.record.id)
                if task_id not in (MISSING, None):
                    found[str(task_id)] = raw
        return found

    async def _raw_list(self, ids: Sequence[str]) -> list[Mapping[str, Any]]:
        return list((await self._raw_tasks(ids)).values())

    async def get_tasks(self, ids: Sequence[str]) -> list[Task]:
        """The tasks asked for, in order, unknown and repeated ids skipped."""
        self._tasks()
        with self.client.budget():
            raws = await self._raw_tasks(ids)
        tasks: list[Task] = []
        for task_id in dict.fromkeys(ids):
            raw = raws.get(task_id)
            task = self._task_of(raw) if raw is not None else None
            if task is not None:
                tasks.append(task)
        return tasks

    async def create_task(self, task: NewTask) -> Task:
        """Create one open task and return it as stored. Raises :class:`NotFound` for an
        unknown contact or company."""
        spec = self._tasks()
        token = uuid.uuid4().hex if spec.token else None
        ctx = {
            "subject": task.subject,
            "description": task.description,
            "type": task.type,
            "owner_id": task.owner_id,
            "due_date": _iso(task.due_date),
            "contact_id": task.contact_id,
            "company_id": task.company_id,
            "extra": dict(task.extra),
            "token": token,
        }
        ctx = {name: value for name, value in ctx.items() if value is not None}
        with self.client.budget():
            await self.require_records(
                {Entity.CONTACT: [task.contact_id], Entity.COMPANY: [task.company_id]}
            )
            task_id = await self._send_task(spec, ctx, token)
            if self.options.dry_run:
                return Task(
                    id=task_id,
                    subject=task.subject,
                    description=task.description,
                    type=task.type,
                    owner_id=task.owner_id,
                    due_date=task.due_date,
                    contact_id=task.contact_id,
                    company_id=task.company_id,
                )
            raws = await self._raw_tasks([task_id])
        stored = self._task_of(raws[task_id]) if task_id in raws else None
        if stored is None:
            raise Unavailable(f"task {task_id} was created but cannot be read back yet")
        return stored

    async def _send_task(self, spec: TasksSpec, ctx: Mapping[str, Any], token: str | None) -> str:
        create = spec.create
        for attempt in range(1, self.options.max_attempts + 1):
            try:
                answer = await self.client.send(
                    create.request, create.response, ctx, idempotent=token is None
                )
            except RateLimited as exc:
                await self._sleep(exc.retry_after or 1.0)
                continue
            except Unavailable:
                if token is None or attempt == self.options.max_attempts:
                    raise
                await self._sleep(self.client.http.policy.backoff(attempt))
                found = await self._task_by_token(token)
                if found is not None:
                    return found
                continue
            task_id = create.response.id_of(answer.body)
            if task_id is None and token is not None:
                task_id = await self._task_by_token(token)
            if task_id is None:
                raise InvalidRecord("the task's create answer holds no id (set tasks.token)")
            return task_id
        raise Unavailable("the task could not be created within the attempts allowed")

    async def _task_by_token(self, token: str) -> str | None:
        spec = self._tasks()
        if self.options.dry_run or spec.token is None:
            return None
        plan = KeyPlan("token", (spec.token,), "exact")
        host = StrategyHost(self, self._raw_list)
        for strategy in spec.find:
            hits = await run_strategy(strategy, host, plan, [token], {})
            if hits and hits.get(token):
                task_id = get_path(hits[token][0], spec.record.id)
                if task_id not in (MISSING, None):
                    return str(task_id)
        return None

    async def update_task(self, task_id: str, changes: TaskChanges) -> Task:
        """Apply ``changes`` (see the module docstring); :class:`NotFound` for an unknown id,
        or for a contact or company the task would point at that does not exist."""
        spec = self._tasks()
        with self.client.budget():
            raws = await self._raw_tasks([task_id])
            current = self._task_of(raws[task_id]) if task_id in raws else None
            if current is None and self.options.dry_run:
                # Nothing to read in a dry run: the task as the changes would leave it.
                current = Task(id=task_id, subject=str(changes.fields.get("subject") or ""))
            if current is None:
                raise NotFound(f"No task exists with ID: {task_id}")
            # As on create: a contact or company the task would point at must exist (the CRM
            # may refuse it with a 400, or keep a dangling id).
            await self.require_records(
                {
                    Entity.CONTACT: [changes.fields.get("contact_id")],
                    Entity.COMPANY: [changes.fields.get("company_id")],
                }
            )
            fields = {k: _iso(v) for k, v in changes.fields.items() if k in TASK_FIELDS}
            ctx: dict[str, Any] = {"id": task_id, "fields": fields}
            if changes.completed is True:
                when = (
                    changes.completed_at
                    or (current.completed_at if current.completed else None)
                    or changes.now
                )
                ctx.update(completed=True, completed_at=_iso(when))
            elif changes.completed is False:
                ctx.update(completed=False, completed_at=None)
            await self.client.send(spec.update.request, spec.update.response, ctx)
            if self.options.dry_run:
                completed = current.completed if changes.completed is None else changes.completed
                done_at = _time(ctx.get("completed_at")) if completed else None
                return replace(current, completed=completed, completed_at=done_at)
            raws = await self._raw_tasks([task_id])
        updated = self._task_of(raws[task_id]) if task_id in raws else None
        if updated is None:
            raise NotFound(f"No task exists with ID: {task_id}")
        return updated
