"""Tasks: ``/crm/v3/objects/tasks`` with ``hs_task_status`` ``COMPLETED`` ↔ ``completed``.

Enginy's free-text task type is mapped onto the portal's ``hs_task_type`` options (read from the
property definition, since portals differ from the docs) and kept verbatim, with the completion
time and whether a due date was given, in the JSON data property, so reads give back what was
written. A task completed in HubSpot's UI reads as completed (``hs_task_completion_date``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from backends.base import InvalidRecord, NewTask, NotFound, Task, TaskChanges
from backends.hubspot.core import HubSpotCore, chunks, is_record_id
from backends.hubspot.engagements import EngagementsMixin, iso, parse_datetime
from backends.hubspot.errors import item_error

__all__ = ["TasksMixin"]

#: Enginy's usual task types → HubSpot ``hs_task_type`` (when the portal offers the value).
TASK_TYPES = {
    "call": "CALL",
    "email": "EMAIL",
    "todo": "TODO",
    "linkedin": "LINKED_IN_MESSAGE",
    "linkedin_message": "LINKED_IN_MESSAGE",
    "inmail": "LINKED_IN_MESSAGE",
    "linkedin_inmail": "LINKED_IN_MESSAGE",
    "linkedin_connection": "LINKED_IN_CONNECT",
    "connection": "LINKED_IN_CONNECT",
}
OPEN_STATUS = "NOT_STARTED"
DONE_STATUS = "COMPLETED"


class TasksMixin(EngagementsMixin, HubSpotCore):
    """Task methods of :class:`backends.hubspot.HubSpotBackend`."""

    def _task_properties(self) -> list[str]:
        return [
            "hs_task_subject",
            "hs_task_body",
            "hs_task_status",
            "hs_task_type",
            "hs_timestamp",
            "hubspot_owner_id",
            "hs_task_completion_date",
            self.options.activity_data_property,
        ]

    async def _open_status(self) -> str:
        """``NOT_STARTED`` unless the portal's ``hs_task_status`` options lack it (portals
        differ from the docs: some expose IN_PROGRESS, WAITING, DEFERRED too)."""
        options = await self.catalog.option_values("tasks", "hs_task_status")
        if not options or OPEN_STATUS in options:
            return OPEN_STATUS
        return next((o for o in options if o != DONE_STATUS), OPEN_STATUS)

    async def _task_type(self, value: str | None) -> str:
        options = await self.catalog.option_values("tasks", "hs_task_type")
        wanted = TASK_TYPES.get((value or "todo").strip().lower().replace(" ", "_"), "TODO")
        if wanted in options or not options:
            return wanted
        return "TODO" if "TODO" in options else options[0]

    async def create_task(self, task: NewTask) -> Task:
        """Create an open task (``NOT_STARTED``) associated with its contact (type 204) and
        company (192). Raises :class:`NotFound` for an unknown contact/company. Not
        idempotent (the contract gives no key)."""
        with self.client.budget():
            await self._ensure_engagement_props("tasks")
            await self.require_records(
                {"contacts": [task.contact_id], "companies": [task.company_id]}
            )
            data = {
                "type": task.type,
                "hasDueDate": task.due_date is not None,
                "contactId": task.contact_id,
                "companyId": task.company_id,
                "extra": dict(task.extra),
            }
            due = task.due_date or datetime.now(UTC)  # hs_timestamp is required
            props = {
                "hs_task_subject": task.subject,
                "hs_task_body": task.description or "",
                "hs_task_status": await self._open_status(),
                "hs_task_type": await self._task_type(task.type),
                "hs_timestamp": iso(due),
                self.options.activity_data_property: _dump(data),
            }
            if task.owner_id:
                props["hubspot_owner_id"] = task.owner_id
            props = await self._only_known("tasks", props)
            body = {
                "properties": props,
                "associations": self._associations("tasks", task.contact_id, task.company_id),
            }
            response = await self.client.request(
                "POST", self.client.paths.objects("tasks"), json=body
            )
        return self._to_task(response.json_dict(), task.contact_id, task.company_id)

    async def _only_known(self, object_type: str, props: dict[str, str]) -> dict[str, str]:
        known = await self.catalog.definitions(object_type)
        return {k: v for k, v in props.items() if k in known}

    async def get_tasks(self, ids: Sequence[str]) -> list[Task]:
        """Tasks by id in the order asked, unknown and repeated ids skipped: one ``batch/read``
        plus one v4 association read per linked type. Read-only."""
        wanted = [i for i in dict.fromkeys(ids) if is_record_id(i)]
        if not wanted:
            return []
        with self.client.budget():
            await self._ensure_engagement_props("tasks")
            found = await self.batch_read("tasks", wanted, self._task_properties())
            links = await self._task_links([str(o["id"]) for o in found])
        by_id = {str(o["id"]): o for o in found}
        return [self._to_task(by_id[i], *links.get(i, (None, None))) for i in wanted if i in by_id]

    async def _task_links(self, ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        """``{task id: (contact id, company id)}`` from v4 ``batch/read`` (object batch reads
        cannot return associations)."""
        links: dict[str, list[str | None]] = {i: [None, None] for i in ids}
        for slot, target in enumerate(("contacts", "companies")):
            for part in chunks(list(ids), 1000):  # v4 batch read takes up to 1,000 ids
                response = await self.client.request(
                    "POST",
                    self.client.paths.assoc_batch("tasks", target, "read"),
                    json={"inputs": [{"id": i} for i in part]},
                    accept=(404,),
                )
                for item in response.json_dict().get("results") or []:
                    source = str((item.get("from") or {}).get("id"))
                    targets = sorted(
                        (str(t.get("toObjectId")) for t in item.get("to") or []), key=int
                    )
                    if source in links and targets:
                        links[source][slot] = targets[0]
        return {k: (v[0], v[1]) for k, v in links.items()}

    async def get_task(self, task_id: str) -> Task:
        """One task with its associations in a single GET. Raises :class:`NotFound`."""
        if not is_record_id(task_id):
            raise NotFound(f"No task exists with ID: {task_id}")
        with self.client.budget():
            await self._ensure_engagement_props("tasks")
            obj = await self._get_task_object(task_id)
        return self._to_task(obj, *_links_of(obj))

    async def _get_task_object(self, task_id: str) -> dict[str, Any]:
        response = await self.client.request(
            "GET",
            self.client.paths.object("tasks", task_id),
            params={
                "properties": ",".join(self._task_properties()),
                "associations": "contacts,companies",
            },
            accept=(404,),
        )
        if response.status == 404:
            raise NotFound(f"No task exists with ID: {task_id}")
        return response.json_dict()

    async def update_task(self, task_id: str, changes: TaskChanges) -> Task:
        """PATCH the task; completion writes ``hs_task_status`` and keeps an earlier
        completion time when completing twice (idempotent). Raises :class:`NotFound`."""
        if not is_record_id(task_id):
            raise NotFound(f"No task exists with ID: {task_id}")
        with self.client.budget():
            await self._ensure_engagement_props("tasks")
            current = await self._get_task_object(task_id)
            contact_id, company_id = _links_of(current)
            props = await self._task_changes(current, changes)
            response = await self.client.request(
                "PATCH",
                self.client.paths.object("tasks", task_id),
                json={"properties": props},
                accept=(400, 404),
            )
            if response.status == 404:
                raise NotFound(f"No task exists with ID: {task_id}")
            if response.status == 400:
                raise item_error(response.json_dict())
            contact_id, company_id = await self._relink(task_id, changes, contact_id, company_id)
            updated = await self._get_task_object(task_id)
        return self._to_task(updated, contact_id, company_id)

    async def _relink(
        self, task_id: str, changes: TaskChanges, contact_id: str | None, company_id: str | None
    ) -> tuple[str | None, str | None]:
        result = [contact_id, company_id]
        for slot, (name, target) in enumerate(
            (("contact_id", "contacts"), ("company_id", "companies"))
        ):
            if name not in changes.fields:
                continue
            new = changes.fields[name]
            new = str(new) if new not in (None, "") else None
            old = result[slot]
            if new == old:
                continue
            if new:
                await self.require_records({target: [new]})
            if old:
                await self.client.request(
                    "DELETE",
                    self.client.paths.assoc_record("tasks", task_id, target, old),
                    accept=(404,),
                )
            if new:
                await self.client.request(
                    "PUT", self.client.paths.assoc_default("tasks", task_id, target, new)
                )
            result[slot] = new
        return result[0], result[1]

    async def _task_changes(
        self, current: Mapping[str, Any], changes: TaskChanges
    ) -> dict[str, str]:
        props = current.get("properties") or {}
        data = _load(props.get(self.options.activity_data_property))
        out: dict[str, str] = {}
        fields = changes.fields
        if "subject" in fields:
            if not fields["subject"]:
                raise InvalidRecord("subject must not be empty")
            out["hs_task_subject"] = str(fields["subject"])
        if "description" in fields:
            out["hs_task_body"] = str(fields["description"] or "")
        if "type" in fields:
            data["type"] = fields["type"]
            out["hs_task_type"] = await self._task_type(fields["type"])
        if "owner_id" in fields:
            out["hubspot_owner_id"] = str(fields["owner_id"] or "")
        if "due_date" in fields:
            due = fields["due_date"]
            data["hasDueDate"] = due is not None
            if due is not None:
                out["hs_timestamp"] = iso(due) if isinstance(due, datetime) else str(due)
        for name in ("contact_id", "company_id"):
            if name in fields:
                data[name.replace("_id", "Id")] = fields[name]
        if changes.completed is True:
            already = props.get("hs_task_status") == DONE_STATUS
            if changes.completed_at is not None:
                data["completedAt"] = iso(changes.completed_at)
            elif not already or not data.get("completedAt"):
                previous = props.get("hs_task_completion_date") if already else None
                data["completedAt"] = previous or iso(changes.now)
            out["hs_task_status"] = DONE_STATUS
        elif changes.completed is False:
            data["completedAt"] = None
            out["hs_task_status"] = await self._open_status()
        out[self.options.activity_data_property] = _dump(data)
        return await self._only_known("tasks", out)

    async def update_tasks(self, ids: Sequence[str], changes: TaskChanges) -> list[Task]:
        """Apply the same changes to several tasks with ``batch/read`` + ``batch/update``
        (100 per call); unknown ids are skipped. Association changes fall back to
        :meth:`update_task` per task."""
        if "contact_id" in changes.fields or "company_id" in changes.fields:
            return await super().update_tasks(ids, changes)
        wanted = [i for i in dict.fromkeys(ids) if is_record_id(i)]
        if not wanted:
            return []
        with self.client.budget():
            await self._ensure_engagement_props("tasks")
            found = await self.batch_read("tasks", wanted, self._task_properties())
            by_id = {str(o["id"]): o for o in found}
            inputs: list[dict[str, Any]] = [
                {
                    "id": i,
                    "properties": await self._task_changes(by_id[i], changes),
                    "objectWriteTraceId": i,
                }
                for i in wanted
                if i in by_id
            ]
            answered: dict[str, dict[str, Any]] = {}
            for part in chunks(inputs):
                response = await self.client.request(
                    "POST", self.client.paths.batch("tasks", "update"), json={"inputs": list(part)}
                )
                for obj in response.json_dict().get("results") or []:
                    answered[str(obj.get("id"))] = obj
            existing = [i for i in wanted if i in by_id]
            links = await self._task_links(existing)
        tasks = []
        sent = {str(item["id"]): item["properties"] for item in inputs}
        for task_id in existing:
            # The state after the update is the state read before plus what was written (no
            # re-read); HubSpot's answer supplies the new updatedAt.
            before = by_id[task_id]
            after = {
                **before,
                "properties": {**(before.get("properties") or {}), **sent.get(task_id, {})},
            }
            if task_id in answered and answered[task_id].get("updatedAt"):
                after["updatedAt"] = answered[task_id]["updatedAt"]
            tasks.append(self._to_task(after, *links.get(task_id, (None, None))))
        return tasks

    def _to_task(
        self, obj: Mapping[str, Any], contact_id: str | None, company_id: str | None
    ) -> Task:
        props = obj.get("properties") or {}
        data = _load(props.get(self.options.activity_data_property))
        completed = props.get("hs_task_status") == DONE_STATUS
        completed_at = None
        if completed:
            completed_at = parse_datetime(data.get("completedAt")) or parse_datetime(
                props.get("hs_task_completion_date")
            )
        hs_type = props.get("hs_task_type")
        return Task(
            id=str(obj.get("id")),
            subject=str(props.get("hs_task_subject") or ""),
            description=props.get("hs_task_body") or None,
            type=data.get("type") or (hs_type.lower() if hs_type else None),
            owner_id=props.get("hubspot_owner_id") or None,
            due_date=parse_datetime(props.get("hs_timestamp"))
            if data.get("hasDueDate", True)
            else None,
            contact_id=contact_id,
            company_id=company_id,
            completed=completed,
            completed_at=completed_at,
            created_at=parse_datetime(obj.get("createdAt")),
            updated_at=parse_datetime(obj.get("updatedAt")),
        )


def _links_of(obj: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """Contact/company ids from a single GET's ``associations`` block."""
    assoc = obj.get("associations") or {}
    out: list[str | None] = []
    for name in ("contacts", "companies"):
        results = (assoc.get(name) or {}).get("results") or []
        ids = sorted({str(r.get("id")) for r in results}, key=int)
        out.append(ids[0] if ids else None)
    return out[0], out[1]


def _load(text: Any) -> dict[str, Any]:
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _dump(data: Mapping[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), default=str)
