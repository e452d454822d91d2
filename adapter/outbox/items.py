"""What the queue holds: driver calls, as JSON, with the key that orders them.

A queued write is the **driver call** the service would have made, after field mapping and
match-key computation (:class:`~backends.base.RecordUpdate`, :class:`~backends.base.NewActivity`,
...), so delivering it later needs neither the mapping nor the request. Each item has a
``kind`` (one driver operation; a metric label) and an ordering ``key``: the record the write
changes. Items with the same key are delivered one at a time, in the order they were queued.

===================== ====================================== =================================
kind                  driver call                            key
===================== ====================================== =================================
``contacts.update``   ``update_records(CONTACT, [update])``  ``contact:<crmId>``
``companies.update``  ``update_records(COMPANY, [update])``  ``company:<crmId>``
``associations.create`` ``create_associations([pair])``      ``contact:<contactCRMId>`` (a
                                                             one-company CRM keeps the last)
``activities.create`` ``create_activity(activity)``          ``activities:contact:<id>`` (else
                                                             ``activities:company:<id>``)
``tasks.update``      ``update_task(id, changes)`` (or       ``task:<id>``
                      ``update_tasks([id], ...)`` for a
                      batch PATCH: unknown ids skipped)
===================== ====================================== =================================

Datetimes are encoded at the places the driver types have them (``occurred_at``, a task's
``now``, ``completed_at`` and ``due_date``), never by tagging values inside Enginy's own JSON.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backends.base import AssociationPair, Entity, NewActivity, RecordUpdate, TaskChanges

__all__ = [
    "OutboxItem",
    "State",
    "Write",
    "WriteKind",
    "activity_key",
    "decode_activity",
    "decode_association",
    "decode_record_update",
    "decode_task_update",
    "encode_activity",
    "encode_association",
    "encode_record_update",
    "encode_task_update",
    "receipt",
    "record_key",
    "task_key",
]


class WriteKind(enum.StrEnum):
    """The driver operations a queued write can be (also the ``kind`` metric label)."""

    CONTACTS_UPDATE = "contacts.update"
    COMPANIES_UPDATE = "companies.update"
    ASSOCIATIONS_CREATE = "associations.create"
    ACTIVITIES_CREATE = "activities.create"
    TASKS_UPDATE = "tasks.update"


class State(enum.StrEnum):
    """Where an item is: waiting for delivery, or given up (kept until an operator acts)."""

    PENDING = "pending"
    DEAD = "dead"


_UPDATE_KIND = {
    Entity.CONTACT: WriteKind.CONTACTS_UPDATE,
    Entity.COMPANY: WriteKind.COMPANIES_UPDATE,
}

#: Keys longer than this are stored as a digest (ids are short; the column stays indexable).
_MAX_KEY = 200


def _key(prefix: str, ident: str) -> str:
    key = f"{prefix}:{ident}"
    if len(key) <= _MAX_KEY:
        return key
    return f"{prefix}:sha256:{hashlib.sha256(ident.encode()).hexdigest()}"


def record_key(entity: Entity, crm_id: str) -> str:
    """The ordering key of a write that changes one contact or company."""
    return _key(entity.value, crm_id)


def task_key(task_id: str) -> str:
    """The ordering key of a task update."""
    return _key("task", task_id)


def activity_key(activity: NewActivity) -> str:
    """Activities of one contact (else of one company) are logged in the order sent."""
    if activity.contact_id is not None:
        return _key("activities:contact", activity.contact_id)
    if activity.company_id is not None:
        return _key("activities:company", activity.company_id)
    return "activities"


@dataclass(frozen=True, slots=True)
class Write:
    """One driver call to queue. ``dedupe``: a queued item with the same ``kind`` and
    ``dedupe`` still pending is that write already (a retried activity)."""

    kind: WriteKind
    key: str
    payload: Mapping[str, Any]
    dedupe: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One row of the queue."""

    id: int
    uid: str
    kind: str
    key: str
    payload: Mapping[str, Any]
    state: State
    attempts: int
    created_at: float
    #: When the current delivery effort began (``created_at``, or when an operator retried it).
    since: float
    next_attempt_at: float
    last_error: str | None = None
    error_code: str | None = None

    @property
    def receipt(self) -> str:
        """What the answer to Enginy named this write (an activity's ``id`` while queued)."""
        return receipt(self.uid)


def receipt(uid: str) -> str:
    """The receipt of the item ``uid``: ``queued-<uid>``."""
    return f"queued-{uid}"


# --------------------------------------------------------------------------------------------
# Codec
# --------------------------------------------------------------------------------------------


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def encode_record_update(entity: Entity, update: RecordUpdate) -> Write:
    payload = {
        "entity": entity.value,
        "crm_id": update.crm_id,
        "fields": dict(update.fields),
        "clear": sorted(update.clear),
        "match_keys": dict(update.match_keys),
    }
    return Write(_UPDATE_KIND[entity], record_key(entity, update.crm_id), payload)


def decode_record_update(payload: Mapping[str, Any]) -> tuple[Entity, RecordUpdate]:
    entity = Entity(payload["entity"])
    update = RecordUpdate(
        crm_id=payload["crm_id"],
        fields=dict(payload["fields"]),
        clear=frozenset(payload["clear"]),
        match_keys=dict(payload["match_keys"]),
    )
    return entity, update


def encode_association(pair: AssociationPair) -> Write:
    payload = {"contact_id": pair.contact_id, "company_id": pair.company_id}
    return Write(
        WriteKind.ASSOCIATIONS_CREATE, record_key(Entity.CONTACT, pair.contact_id), payload
    )


def decode_association(payload: Mapping[str, Any]) -> AssociationPair:
    return AssociationPair(payload["contact_id"], payload["company_id"])


def encode_activity(activity: NewActivity) -> Write:
    """``activity`` must carry its idempotency key: a delivery replayed after a crash then
    returns the activity the first one stored (see :mod:`adapter.outbox.writes`)."""
    payload = {
        "type": activity.type,
        "direction": activity.direction,
        "subject": activity.subject,
        "body": activity.body,
        "owner_id": activity.owner_id,
        "occurred_at": _dt(activity.occurred_at),
        "contact_id": activity.contact_id,
        "company_id": activity.company_id,
        "metadata": dict(activity.metadata),
        "idempotency_key": activity.idempotency_key,
        "extra": dict(activity.extra),
    }
    return Write(
        WriteKind.ACTIVITIES_CREATE, activity_key(activity), payload, activity.idempotency_key
    )


def decode_activity(payload: Mapping[str, Any]) -> NewActivity:
    return NewActivity(
        type=payload["type"],
        direction=payload["direction"],
        subject=payload["subject"],
        body=payload["body"],
        owner_id=payload["owner_id"],
        occurred_at=_parse_dt(payload["occurred_at"]),
        contact_id=payload["contact_id"],
        company_id=payload["company_id"],
        metadata=dict(payload["metadata"]),
        idempotency_key=payload["idempotency_key"],
        extra=dict(payload["extra"]),
    )


def encode_task_update(task_id: str, changes: TaskChanges, *, skip_unknown: bool) -> Write:
    """``skip_unknown``: the write came from ``PATCH /tasks/batch``, where an unknown id is
    skipped (not a failure); from ``PATCH /tasks/{id}`` it is a dead letter (``not_found``)."""
    fields = dict(changes.fields)
    if "due_date" in fields:
        fields["due_date"] = _dt(fields["due_date"])
    payload = {
        "task_id": task_id,
        "now": _dt(changes.now),
        "fields": fields,
        "completed": changes.completed,
        "completed_at": _dt(changes.completed_at),
        "skip_unknown": skip_unknown,
    }
    return Write(WriteKind.TASKS_UPDATE, task_key(task_id), payload)


def decode_task_update(payload: Mapping[str, Any]) -> tuple[str, TaskChanges, bool]:
    fields = dict(payload["fields"])
    if "due_date" in fields:
        fields["due_date"] = _parse_dt(fields["due_date"])
    changes = TaskChanges(
        now=datetime.fromisoformat(payload["now"]),
        fields=fields,
        completed=payload["completed"],
        completed_at=_parse_dt(payload["completed_at"]),
    )
    return payload["task_id"], changes, bool(payload["skip_unknown"])
