"""The fake Pipedrive's company data: persons, organizations, their custom fields, activities,
notes and users, with Pipedrive's rules (each rule's source is named where it is applied; the
sources are listed in :mod:`backends.testing.pipedrive`)."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["ACTIVITY_TYPES", "FIELD_TYPES", "FakeError", "Store"]

#: A new company's activity types' ``key_string`` (developers.pipedrive.com/docs/api/v1/
#: ActivityTypes: "Activity types are linked to activities via ActivityType.key_string =
#: Activity.type"; the default set is the icon keys call, meeting, task, deadline, email, lunch).
ACTIVITY_TYPES = frozenset({"call", "meeting", "task", "deadline", "email", "lunch"})

#: CreatePersonFieldRequest.field_type values (client-php docs/versions/v2/Model/
#: CreatePersonFieldRequest.md).
FIELD_TYPES = frozenset(
    {
        "varchar",
        "varchar_auto",
        "text",
        "double",
        "monetary",
        "date",
        "set",
        "enum",
        "user",
        "org",
        "people",
        "phone",
        "time",
        "timerange",
        "daterange",
        "address",
    }
)

#: Custom-field types person/organization search looks into (PersonsApi.searchPersons:
#: "Only the following custom field types are searchable: address, varchar, text,
#: varchar_auto, double, monetary and phone").
SEARCHABLE = frozenset(
    {"address", "varchar", "text", "varchar_auto", "double", "monetary", "phone"}
)


class FakeError(Exception):
    """An error answer: ``{"success": false, "error": message}`` with ``status``
    (pipedrive.readme.io/docs/core-api-concepts-responses, "Error response")."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Field:
    field_name: str
    field_code: str
    field_type: str


class Store:
    """Everything one fake company holds. Ids are integers, as Pipedrive's."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.ids = itertools.count(1)
        self.persons: dict[int, dict[str, Any]] = {}
        self.organizations: dict[int, dict[str, Any]] = {}
        self.activities: dict[int, dict[str, Any]] = {}
        self.notes: dict[int, dict[str, Any]] = {}
        self.users: list[dict[str, Any]] = []
        self.fields: dict[str, list[Field]] = {"person": [], "organization": []}

    def now(self, v1: bool = False) -> str:
        when = self.clock().astimezone(UTC)
        # v1 objects: "YYYY-MM-DD HH:MM:SS" (ActivityPostObject add_time, marked_as_done_time);
        # v2: RFC 3339 (PersonsApi getPersons: updated_since "in RFC3339 format").
        return when.strftime("%Y-%m-%d %H:%M:%S") if v1 else when.strftime("%Y-%m-%dT%H:%M:%SZ")

    # -- custom fields ----------------------------------------------------------------------

    def add_field(self, kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
        name, field_type = body.get("field_name"), body.get("field_type")
        if not isinstance(name, str) or not name.strip():
            raise FakeError(400, "field_name is required")
        if field_type not in FIELD_TYPES:
            raise FakeError(400, f"field_type must be one of {', '.join(sorted(FIELD_TYPES))}")
        # "All custom fields are referenced as randomly generated 40-character hashes"
        # (PersonItem.custom_fields); labels need not be unique.
        seed = f"{kind}:{len(self.fields[kind])}:{name}"
        code = hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest()
        self.fields[kind].append(Field(name, code, str(field_type)))
        return self.field_item(self.fields[kind][-1])

    @staticmethod
    def field_item(field: Field) -> dict[str, Any]:
        # PersonFieldItem (client-php docs/versions/v2/Model/PersonFieldItem.md).
        return {
            "field_name": field.field_name,
            "field_code": field.field_code,
            "field_type": field.field_type,
            "is_custom_field": True,
            "is_optional_response_field": False,
        }

    def _custom(self, kind: str, values: Any, current: Mapping[str, Any]) -> dict[str, Any]:
        if values is None:
            return dict(current)
        if not isinstance(values, Mapping):
            raise FakeError(400, "custom_fields must be an object")
        known = {f.field_code: f for f in self.fields[kind]}
        out = dict(current)
        for code, value in values.items():
            if code not in known:
                raise FakeError(400, f"Unknown custom field key: {code}")
            if value is None:  # "To clear a custom field value, set it to null" (PersonItem)
                out.pop(code, None)
            elif known[code].field_type == "double" and not isinstance(value, int | float):
                raise FakeError(400, f"custom field {code} takes a number")
            else:
                out[code] = value
        return out

    # -- persons and organizations ------------------------------------------------------------

    def _exists(self, table: dict[int, dict[str, Any]], value: Any, what: str) -> int | None:
        if value is None:
            return None
        if not isinstance(value, int) or value not in table:
            raise FakeError(400, f"{what} with id {value!r} not found")
        return value

    def save_person(self, body: Mapping[str, Any], person_id: int | None = None) -> dict[str, Any]:
        current = self.persons.get(person_id or -1, {})
        if person_id is None and not str(body.get("name") or "").strip():
            raise FakeError(400, "name is required")  # PersonRequestBody: name
        row = dict(current) or {
            "id": next(self.ids),
            "add_time": self.now(),
            "emails": [],
            "phones": [],
            "custom_fields": {},
            "is_deleted": False,
        }
        if "name" in body:
            # first_name/last_name are read-only parts of name (PersonItem; the split on the
            # first space is this fake's reading).
            name = str(body["name"] or "").strip()
            first, _, last = name.partition(" ")
            row.update(name=name, first_name=first or None, last_name=last or None)
        for key in ("emails", "phones"):
            if key in body:
                items = body[key] or []
                if not all(isinstance(i, Mapping) and i.get("value") for i in items):
                    raise FakeError(400, f"{key} items need a value")  # "only value is required"
                row[key] = [
                    {
                        "value": i["value"],
                        "primary": bool(i.get("primary", n == 0)),
                        "label": i.get("label", "work"),
                    }
                    for n, i in enumerate(items)
                ]
        if "org_id" in body:
            row["org_id"] = self._exists(self.organizations, body["org_id"], "Organization")
        if "owner_id" in body:
            row["owner_id"] = body["owner_id"]
        row["custom_fields"] = self._custom(
            "person", body.get("custom_fields"), row["custom_fields"]
        )
        row["update_time"] = self.now()
        self.persons[row["id"]] = row
        return row

    def save_organization(
        self, body: Mapping[str, Any], org_id: int | None = None
    ) -> dict[str, Any]:
        current = self.organizations.get(org_id or -1, {})
        if org_id is None and not str(body.get("name") or "").strip():
            raise FakeError(400, "name is required")
        row = dict(current) or {
            "id": next(self.ids),
            "add_time": self.now(),
            "custom_fields": {},
            "is_deleted": False,
        }
        for key in ("name", "owner_id", "address"):
            if key in body:
                row[key] = body[key]
        row["custom_fields"] = self._custom(
            "organization", body.get("custom_fields"), row["custom_fields"]
        )
        row["update_time"] = self.now()
        self.organizations[row["id"]] = row
        return row

    def search(self, kind: str, term: str, fields: list[str], exact: bool) -> list[dict[str, Any]]:
        """Search hits (PersonSearchItemItem / organization search items)."""
        table = self.persons if kind == "person" else self.organizations
        searchable = {f.field_code for f in self.fields[kind] if f.field_type in SEARCHABLE}
        wanted = term.lower()

        def hit(value: Any) -> bool:
            text = str(value).lower()  # "It is not case sensitive" (exact_match)
            return text == wanted if exact else wanted in text

        items = []
        for row in table.values():
            values: list[Any] = []
            if not fields or "name" in fields:
                values.append(row.get("name") or "")
            if kind == "person" and (not fields or "email" in fields):
                values += [e["value"] for e in row.get("emails", [])]
            if not fields or "custom_fields" in fields:
                values += [v for k, v in row["custom_fields"].items() if k in searchable]
            if any(hit(v) for v in values):
                item: dict[str, Any] = {"id": row["id"], "type": kind, "name": row.get("name")}
                if kind == "person":
                    item["emails"] = [e["value"] for e in row.get("emails", [])]
                item["custom_fields"] = [str(v) for v in row["custom_fields"].values()]
                items.append({"result_score": 1.0, "item": item})
        return items

    # -- activities, notes ----------------------------------------------------------------------

    def save_activity(
        self, body: Mapping[str, Any], activity_id: int | None = None
    ) -> dict[str, Any]:
        current = self.activities.get(activity_id or -1, {})
        row = dict(current) or {
            "id": next(self.ids),
            "add_time": self.now(),
            "done": False,
            "type": "call",
            "subject": "Call",
            "person_id": None,
            "is_deleted": False,
            "marked_as_done_time": None,
        }
        if "type" in body and body["type"] not in ACTIVITY_TYPES:
            raise FakeError(400, f"Invalid activity type {body['type']!r}")
        for key in (
            "subject",
            "type",
            "owner_id",
            "due_date",
            "due_time",
            "duration",
            "note",
            "public_description",
            "busy",
        ):
            if key in body:
                row[key] = body[key]
        if "org_id" in body:
            row["org_id"] = self._exists(self.organizations, body["org_id"], "Organization")
        if "participants" in body:
            participants = body["participants"] or []
            for participant in participants:
                self._exists(self.persons, participant.get("person_id"), "Person")
            row["participants"] = participants
            # "a primary participant (primary: true) sets person_id" (ActivityRequestBody)
            primary = next((p for p in participants if p.get("primary")), None)
            row["person_id"] = primary["person_id"] if primary else None
        if "done" in body:
            done = bool(body["done"])
            if done and not row["done"]:
                row["marked_as_done_time"] = self.now(v1=True)
            elif not done:
                row["marked_as_done_time"] = None
            row["done"] = done
        row["update_time"] = self.now()
        self.activities[row["id"]] = row
        return row

    def add_note(self, body: Mapping[str, Any]) -> dict[str, Any]:
        content = body.get("content")
        if not isinstance(content, str) or not content:
            raise FakeError(400, "content is required")  # NotesApi addNote: content required
        person = self._exists(self.persons, body.get("person_id"), "Person")
        org = self._exists(self.organizations, body.get("org_id"), "Organization")
        if person is None and org is None:
            raise FakeError(400, "a note needs a deal, person, organization, lead or project")
        note_id = next(self.ids)
        row: dict[str, Any] = {
            "id": note_id,
            "content": content,
            "person_id": person,
            "org_id": org,
            "add_time": self.now(v1=True),
            "active_flag": True,
        }
        self.notes[note_id] = row
        return row
