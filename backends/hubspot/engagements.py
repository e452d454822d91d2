"""Activities: emails, LinkedIn communications, notes (and tasks for connection requests).

* ``EMAIL`` → an email engagement (``hs_email_direction`` ``EMAIL`` / ``INCOMING_EMAIL``).
* ``LINKEDIN`` / ``LINKEDIN_INMAIL`` → a communication on the ``LINKEDIN_MESSAGE`` channel
  (HubSpot has no InMail channel; the type is kept in the activity-data property).
* ``LINKEDIN_CONNECTION`` → ``linkedin_connection_as``: a completed ``LINKED_IN_CONNECT`` task
  (default), a communication or a note.
* anything else → a note (one warning per new type).

Idempotency: the front's key (type|direction|messageId) is stored in a *unique* property on the
engagement; a repeat is found with ``batch/read`` by that property (the primary store, not the
lagging search), and a concurrent duplicate create fails on the unique value and is resolved
by the same read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from backends.base import Activity, AuthFailed, Conflict, InvalidRecord, NewActivity, NotFound
from backends.hubspot.core import HubSpotCore

__all__ = ["ASSOCIATION_TYPE_IDS", "EngagementsMixin", "parse_datetime"]

log = logging.getLogger("backends.hubspot")

#: HUBSPOT_DEFINED type ids *from* the engagement *to* contact / company (direction matters:
#: task→contact is 204, contact→task would be 203).
ASSOCIATION_TYPE_IDS: dict[str, tuple[int, int]] = {
    "emails": (198, 186),
    "communications": (81, 87),
    "notes": (202, 190),
    "tasks": (204, 192),
}

#: Where each engagement keeps its text.
BODY_PROPERTY = {
    "emails": "hs_email_text",
    "communications": "hs_communication_body",
    "notes": "hs_note_body",
    "tasks": "hs_task_body",
}


def parse_datetime(value: Any) -> datetime | None:
    """HubSpot returns datetimes as ISO-8601 strings (or epoch milliseconds)."""
    if value in (None, ""):
        return None
    text = str(value)
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class EngagementsMixin(HubSpotCore):
    """``create_activity`` for :class:`backends.hubspot.HubSpotBackend`."""

    def _engagement_state(self) -> tuple[set[str], set[str]]:
        if not hasattr(self, "_engagement_ready"):
            self._engagement_ready: set[str] = set()
            self._warned_types: set[str] = set()
        return self._engagement_ready, self._warned_types

    async def _ensure_engagement_props(self, object_type: str) -> None:
        """Create the key (unique) and data properties on an engagement type, once."""
        ready, _ = self._engagement_state()
        if object_type in ready:
            return
        create = self.options.create_properties
        try:
            key_ok = await self.catalog.ensure(
                object_type,
                self.options.activity_key_property,
                "Enginy activity key",
                unique=True,
                create=create,
            )
            data_ok = await self.catalog.ensure(
                object_type,
                self.options.activity_data_property,
                "Enginy activity data",
                field_type="textarea",
                create=create,
            )
        except (AuthFailed, InvalidRecord, Conflict, NotFound) as exc:
            # A portal that refuses the set-up (no schema-write scope, a 400 on the group or
            # the unique property, a name taken) still gets its activities logged, only not
            # de-duplicated; the refusal is remembered so it costs one attempt, not one per
            # call. An outage (Unavailable) still fails the request so Enginy retries it.
            log.warning(
                "hubspot: cannot create the Enginy properties on %s (%s): %s",
                object_type,
                exc.code,
                exc.message,
            )
            key_ok = data_ok = False
        if not (key_ok and data_ok):
            log.warning(
                "hubspot: %s lacks the Enginy properties; activities there are not idempotent",
                object_type,
            )
        ready.add(object_type)

    def _activity_object(self, activity_type: str) -> str:
        kind = activity_type.upper()
        if kind == "EMAIL":
            return "emails"
        if kind in ("LINKEDIN", "LINKEDIN_INMAIL"):
            return "communications"
        if kind == "LINKEDIN_CONNECTION":
            return {"communication": "communications", "note": "notes", "task": "tasks"}[
                self.options.linkedin_connection_as
            ]
        _, warned = self._engagement_state()
        if kind not in warned:
            warned.add(kind)
            log.warning(
                "hubspot: activity type %r has no HubSpot engagement; stored as a note",
                activity_type,
            )
        return "notes"

    @staticmethod
    def _associations(
        object_type: str, contact_id: str | None, company_id: str | None
    ) -> list[dict[str, Any]]:
        to_contact, to_company = ASSOCIATION_TYPE_IDS[object_type]
        out = []
        for target, type_id in ((contact_id, to_contact), (company_id, to_company)):
            if target:
                out.append(
                    {
                        "to": {"id": target},
                        "types": [
                            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}
                        ],
                    }
                )
        return out

    async def create_activity(self, activity: NewActivity) -> Activity:
        """Create the engagement for ``activity`` with its contact/company associations.

        Idempotent on ``activity.idempotency_key`` (a repeat returns the first activity).
        Raises :class:`NotFound` for an unknown contact/company, :class:`InvalidRecord` when
        HubSpot rejects a value (e.g. an owner id that is not an owner).
        """
        object_type = self._activity_object(activity.type)
        with self.client.budget():
            await self._ensure_engagement_props(object_type)
            await self.require_records(
                {"contacts": [activity.contact_id], "companies": [activity.company_id]}
            )
            key = activity.idempotency_key
            if key:
                existing = await self._find_activity(object_type, key)
                if existing is not None:
                    return existing
            occurred = activity.occurred_at or datetime.now(UTC)
            properties = await self._activity_properties(object_type, activity, occurred)
            body = {
                "properties": properties,
                "associations": self._associations(
                    object_type, activity.contact_id, activity.company_id
                ),
            }
            response = await self.client.request(
                "POST", self.client.paths.objects(object_type), json=body, accept=(409,)
            )
            if response.status == 409:
                # A concurrent request with the same key won the unique value.
                existing = await self._find_activity(object_type, key) if key else None
                if existing is None:
                    raise Conflict(
                        f"HubSpot refused the activity: {response.json_dict().get('message')}"
                    )
                return existing
        data = response.json_dict()
        return self._to_activity(object_type, data)

    async def _activity_properties(
        self, object_type: str, activity: NewActivity, occurred: datetime
    ) -> dict[str, str]:
        data = {
            "type": activity.type,
            "direction": activity.direction,
            "subject": activity.subject,
            "ownerId": activity.owner_id,
            "occurredAt": iso(occurred),
            "contactId": activity.contact_id,
            "companyId": activity.company_id,
            "metadata": dict(activity.metadata),
            "extra": dict(activity.extra),
            # a note needs *some* text; remember whether the body was really given
            "hasBody": activity.body is not None,
        }
        props: dict[str, str] = {"hs_timestamp": iso(occurred)}
        definitions = await self.catalog.definitions(object_type)
        if self.options.activity_data_property in definitions:
            props[self.options.activity_data_property] = json.dumps(
                data, separators=(",", ":"), default=str
            )
        if activity.idempotency_key and self.options.activity_key_property in definitions:
            props[self.options.activity_key_property] = activity.idempotency_key
        if activity.owner_id:
            props["hubspot_owner_id"] = activity.owner_id
        body = activity.body or ""
        inbound = (activity.direction or "").upper() == "INBOUND"
        if object_type == "emails":
            props["hs_email_direction"] = "INCOMING_EMAIL" if inbound else "EMAIL"
            props["hs_email_status"] = "SENT"
            props["hs_email_subject"] = activity.subject or ""
            props["hs_email_text"] = body
            if "<" in body and ">" in body:
                props["hs_email_html"] = body
            headers = _email_headers(activity.metadata)
            if headers:
                props["hs_email_headers"] = headers
        elif object_type == "communications":
            props["hs_communication_channel_type"] = "LINKEDIN_MESSAGE"
            props["hs_communication_logged_from"] = "CRM"
            props["hs_communication_body"] = body
        elif object_type == "tasks":
            props.update(await self._connection_task(activity))
        else:
            props["hs_note_body"] = body or (activity.subject or activity.type)
        return {k: v for k, v in props.items() if v != "" or k in BODY_PROPERTY.values()}

    async def _connection_task(self, activity: NewActivity) -> dict[str, str]:
        options = await self.catalog.option_values("tasks", "hs_task_type")
        subject = activity.subject or "LinkedIn connection request"
        if "LINKED_IN_CONNECT" in options:
            task_type = "LINKED_IN_CONNECT"
        else:  # the portal lacks the option: TODO with a recognisable subject
            task_type, subject = "TODO", f"[LinkedIn connect] {subject}"
        return {
            "hs_task_subject": subject,
            "hs_task_body": activity.body or "",
            "hs_task_type": task_type,
            "hs_task_status": "COMPLETED",
        }

    async def _find_activity(self, object_type: str, key: str) -> Activity | None:
        definitions = await self.catalog.definitions(object_type)
        if self.options.activity_key_property not in definitions:
            return None
        found = await self.batch_read(
            object_type,
            [key],
            self._activity_read_properties(object_type),
            id_property=self.options.activity_key_property,
        )
        return self._to_activity(object_type, found[0]) if found else None

    def _activity_read_properties(self, object_type: str) -> list[str]:
        return [
            "hs_timestamp",
            "hubspot_owner_id",
            BODY_PROPERTY[object_type],
            self.options.activity_key_property,
            self.options.activity_data_property,
        ]

    def _to_activity(self, object_type: str, obj: Mapping[str, Any]) -> Activity:
        props = obj.get("properties") or {}
        try:
            data = json.loads(props.get(self.options.activity_data_property) or "{}")
        except ValueError:
            data = {}
        body = props.get(BODY_PROPERTY[object_type])
        return Activity(
            id=str(obj.get("id")),
            type=str(data.get("type") or object_type.rstrip("s").upper()),
            direction=data.get("direction"),
            subject=data.get("subject"),
            body=body if body not in (None, "") and data.get("hasBody", True) else None,
            owner_id=data.get("ownerId") or props.get("hubspot_owner_id") or None,
            occurred_at=parse_datetime(data.get("occurredAt") or props.get("hs_timestamp")),
            contact_id=data.get("contactId"),
            company_id=data.get("companyId"),
            metadata=data.get("metadata") or {},
            created_at=parse_datetime(obj.get("createdAt")),
        )


def _email_headers(metadata: Mapping[str, Any]) -> str | None:
    """``hs_email_headers`` is a JSON-encoded string; built only from what Enginy sent."""
    sender, recipients = metadata.get("from"), metadata.get("to")
    if not sender and not recipients:
        return None

    def person(value: Any) -> dict[str, Any]:
        return dict(value) if isinstance(value, Mapping) else {"email": str(value)}

    to_list: Sequence[Any] = (
        recipients if isinstance(recipients, list) else ([recipients] if recipients else [])
    )
    headers = {
        "from": person(sender) if sender else {},
        "to": [person(r) for r in to_list],
        "cc": [],
        "bcc": [],
    }
    return json.dumps(headers, separators=(",", ":"))
