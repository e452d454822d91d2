"""Portal-level parts of the HubSpot fake (see :mod:`.portal`): owners, property definitions,
and the companies the portal makes itself from contact e-mail domains."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from backends.testing.hubspot.links import FakeError

__all__ = ["FREE_EMAIL_DOMAINS", "PortalAdmin"]

#: Domains HubSpot does not turn into companies (free email providers; a sample).
FREE_EMAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "hotmail.com",
        "outlook.com",
        "live.com",
        "aol.com",
        "icloud.com",
        "gmx.com",
        "proton.me",
        "protonmail.com",
    }
)


class PortalAdmin:
    """Owners, properties and automatic companies of :class:`.objects.ObjectStore`."""

    clock: Callable[[], float]
    objects: dict[str, dict[str, dict[str, Any]]]
    properties: dict[str, dict[str, dict[str, Any]]]
    groups: dict[str, set[str]]
    auto_create_companies: bool
    auto_create_delay: float
    _deferred: list[tuple[float, str]]
    _running_deferred: bool

    # Provided by ObjectStore and SearchAndLinks (annotations only: no attribute here).
    _new: Callable[[str, dict[str, Any]], dict[str, Any]]
    _link: Callable[[str, str, str, str, int], None]

    def _company_for_contact(self, object_type: str, contact: dict[str, Any]) -> None:
        """HubSpot's "create and associate companies with contacts" setting: a business email
        domain gets a company (or is associated with the one holding that domain), as the
        contact's primary company. HubSpot does it in the background: ``auto_create_delay``
        seconds after the contact's creation (0: at once)."""
        email = str(contact["properties"].get("email") or "")
        if not (self.auto_create_companies and object_type == "contacts" and "@" in email):
            return
        if self.auto_create_delay > 0 and not self._running_deferred:
            self._deferred.append((self.clock() + self.auto_create_delay, contact["id"]))
            return
        domain = email.rsplit("@", 1)[1].lower()
        if domain in FREE_EMAIL_DOMAINS:
            return
        company = next(
            (
                c
                for c in self.objects["companies"].values()
                if str(c["properties"].get("domain") or "").lower() == domain
            ),
            None,
        )
        if company is None:
            company = self._new("companies", {"name": domain, "domain": domain})
        self._link("contacts", contact["id"], "companies", company["id"], 1)

    def _run_deferred(self) -> None:
        now = self.clock()
        due = [d for d in self._deferred if d[0] <= now]
        self._deferred = [d for d in self._deferred if d[0] > now]
        self._running_deferred = True
        try:
            for _, contact_id in due:
                contact = self.objects["contacts"].get(contact_id)
                if contact is not None:
                    self._company_for_contact("contacts", contact)
        finally:
            self._running_deferred = False

    # -- owners, properties ---------------------------------------------------------------------

    def list_owners(self, fake: Any, params: dict[str, str]) -> dict[str, Any]:
        limit = int(params.get("limit", "100"))
        if limit > 500:
            raise FakeError(
                400, "limit: Must be less than or equal to 500", "VALIDATION_ERROR", op="owners"
            )
        archived = params.get("archived", "false") == "true"
        owners = [o for o in fake.owners if o["archived"] == archived]
        start = int(params.get("after", "0"))
        payload: dict[str, Any] = {"results": owners[start : start + limit]}
        if start + limit < len(owners):
            payload["paging"] = {"next": {"after": str(start + limit), "link": "..."}}
        return payload

    def props(
        self, kind: str, args: list[str], method: str, body: dict[str, Any]
    ) -> tuple[str, int, Any]:
        object_type = args[0]
        if object_type not in self.properties:
            raise FakeError(404, f"Unknown object type {object_type}", "OBJECT_NOT_FOUND")
        if kind == "property_groups":
            op = f"property_groups:{object_type}"
            if body.get("name") in self.groups[object_type]:
                raise FakeError(409, f"Group {body.get('name')} already exists", "CONFLICT", op=op)
            self.groups[object_type].add(str(body.get("name")))
            return op, 201, {"name": body.get("name"), "label": body.get("label")}
        if method == "GET":
            return (
                f"properties:{object_type}",
                200,
                {"results": list(copy.deepcopy(self.properties[object_type]).values())},
            )
        op = f"properties.create:{object_type}"
        name = str(body.get("name") or "")
        missing = [
            k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)
        ]
        if missing:
            raise FakeError(400, f"Missing required fields: {missing}", "VALIDATION_ERROR", op=op)
        if name in self.properties[object_type]:
            raise FakeError(409, f"Property named '{name}' already exists.", "CONFLICT", op=op)
        if body["groupName"] not in self.groups[object_type]:
            raise FakeError(
                400, f"Group {body['groupName']} does not exist", "VALIDATION_ERROR", op=op
            )
        definition = {
            **body,
            "hubspotDefined": False,
            "options": body.get("options") or [],
            "hasUniqueValue": bool(body.get("hasUniqueValue")),
            "archived": False,
            "modificationMetadata": {"readOnlyValue": False, "archivable": True},
        }
        self.properties[object_type][name] = definition
        return op, 201, definition
