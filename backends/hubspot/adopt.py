"""A company Enginy asks to create whose domain already has a company is that company.

HubSpot does not de-duplicate companies created through the API by domain, so the driver
looks before creating, cheapest and exact first:

1. the driver's unique keys, by ``batch/read`` (HubSpot's primary store, no lag): the domain
   key (``acme.co.uk``) and, when the ``domain`` match key is a ``domain_any_extension`` one,
   the domain name key (``acme``: ``acme.com`` and ``acme.es`` are one company);
2. a search on ``domain`` for companies that hold no key (made by hand, by HubSpot from contact
   e-mails, by another integration), confirmed by the normaliser (:mod:`.search`);
3. for domains a contact created in the last minutes has, the company HubSpot associated with
   that contact (:mod:`.autocompanies`), which search cannot see yet.

A company found in 2 or 3 is answered (``created=False``) and tagged with the driver's keys
and the external id (when it has none), so the next lookup is exact. A company made in the
portal in the last seconds, by hand or by HubSpot for a contact another process created, can
still be missed: search lags writes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from backends.base import Entity, ItemResult, NewRecord
from backends.hubspot.finding import FindingMixin
from backends.hubspot.keys import normalise_for_key
from backends.hubspot.owned import DOMAIN_KEY, is_domain_name

__all__ = ["AdoptMixin", "Pending"]

log = logging.getLogger("backends.hubspot")


@dataclass(slots=True)
class Pending:
    """One record on its way to ``batch/create``."""

    record: NewRecord
    properties: dict[str, str]
    dropped: dict[str, str] = field(default_factory=dict)
    unstored: dict[str, Any] = field(default_factory=dict)

    @property
    def external_id(self) -> str:
        return self.record.external_id


class AdoptMixin(FindingMixin):
    """Company de-duplication of :class:`backends.hubspot.HubSpotBackend`."""

    def identities(self, entity: Entity, item: Pending) -> list[tuple[str, str]]:
        """``(property, value)`` pairs that make ``item`` the same record as one holding them:
        a contact's email (HubSpot's own rule), a company's domain key and, under a
        ``domain_any_extension`` key, its domain name key."""
        if entity is Entity.CONTACT:
            email = (item.properties.get("email") or "").strip().lower()
            return [("email", email)] if email else []
        out = []
        domain = item.properties.get(self.options.domain_key_property)
        if domain:
            out.append((self.options.domain_key_property, domain))
        name = item.record.match_keys.get(DOMAIN_KEY)
        if name and is_domain_name(name):
            out.append((self.options.domain_name_key_property, name))
        return out

    async def read_by(self, object_type: str, prop: str, values: Sequence[str]) -> dict[str, str]:
        """``{value: oldest record id}`` by a unique property (``batch/read``)."""
        if not values:
            return {}
        found = await self.batch_read(object_type, values, [prop], id_property=prop)
        by_value: dict[str, str] = {}
        for obj in sorted(found, key=lambda o: int(str(o.get("id", "0")) or 0)):
            value = (obj.get("properties") or {}).get(prop)
            if value:
                by_value.setdefault(
                    str(value).lower() if prop == "email" else str(value), str(obj["id"])
                )
                self._known[(object_type, str(obj["id"]))] = True
        return by_value

    async def adopt_existing(
        self, pending: list[Pending], outcome: dict[str, ItemResult]
    ) -> list[Pending]:
        """Answer companies whose domain already has a company with it (see the module
        docstring); return the ones still to create."""
        name_prop = self.options.domain_name_key_property
        held: dict[str, str] = {}  # external id → company id
        for prop in (self.options.domain_key_property, name_prop):
            values = sorted({p.properties[prop] for p in pending if p.properties.get(prop)})
            holders = await self.read_by("companies", prop, values)
            for item in pending:
                crm_id = holders.get(item.properties.get(prop) or "")
                if crm_id and item.external_id not in held:
                    held[item.external_id] = crm_id
        found = await self._unkeyed_companies([p for p in pending if p.external_id not in held])
        rest: list[Pending] = []
        adopted: dict[str, tuple[dict[str, Any], Pending]] = {}
        for item in pending:
            crm_id = held.get(item.external_id)
            obj = found.get(item.external_id)
            if obj is not None:
                crm_id = str(obj["id"])
                adopted.setdefault(crm_id, (obj, item))
            if crm_id is None:
                rest.append(item)
                continue
            outcome[item.external_id] = ItemResult(crm_id=crm_id, dropped=item.dropped)
            log.info(
                "hubspot: company %s is the existing company %s (domain %s)",
                item.external_id,
                crm_id,
                item.properties.get(self.options.domain_key_property),
            )
        if adopted:
            await self._tag_adopted(adopted)
        return rest

    async def _unkeyed_companies(self, pending: Sequence[Pending]) -> dict[str, dict[str, Any]]:
        """``{external id: company}`` for companies without our keys whose domain is the
        item's: by search, then through recent contacts' associations."""
        if not pending or "domain" not in await self.catalog.definitions("companies"):
            return {}
        name_prop = self.options.domain_name_key_property
        wanted: dict[str, dict[str, str]] = {"domain": {}, "domain_any_extension": {}}
        for item in pending:
            name = item.record.match_keys.get(DOMAIN_KEY)
            if name and is_domain_name(name):
                wanted["domain_any_extension"][item.external_id] = name
            elif item.properties.get(self.options.domain_key_property):
                domain = item.properties[self.options.domain_key_property]
                wanted["domain"][item.external_id] = domain
        names = ["domain", self.options.external_id_property]
        definitions = await self.catalog.definitions("companies")
        out: dict[str, dict[str, Any]] = {}
        for kind, by_item in wanted.items():
            values = sorted(set(by_item.values()))
            if not values:
                continue
            key = name_prop if kind == "domain_any_extension" and name_prop in definitions else None
            hits = await self.search_field("companies", "domain", kind, values, names,
                                           key_property=key)  # fmt: skip
            missing = [v for v in values if v not in hits]
            if missing:
                hits.update(await self.companies_from_emails(kind, missing, names))
            for external_id, value in by_item.items():
                if value in hits:
                    out[external_id] = hits[value]
        return out

    async def _tag_adopted(self, adopted: Mapping[str, tuple[dict[str, Any], Pending]]) -> None:
        """Write the driver's keys, from the company's own domain, and the external id of the
        first record answered with it (where it has none) on companies found without them:
        best effort, one ``batch/update`` whose inputs fail alone (a key another company
        holds stays with it)."""
        ext = self.options.external_id_property
        inputs = []
        for index, (crm_id, (obj, item)) in enumerate(adopted.items()):
            props = obj.get("properties") or {}
            tags: dict[str, str] = {}
            domain = normalise_for_key("domain", props.get("domain"))
            if domain:
                tags[self.options.domain_key_property] = domain
            if item.properties.get(self.options.domain_name_key_property) and domain:
                name = normalise_for_key("domain_any_extension", domain) or ""
                tags[self.options.domain_name_key_property] = name
            if not props.get(ext):
                tags[ext] = item.external_id
            if tags:
                inputs.append(
                    {"id": crm_id, "properties": tags, "objectWriteTraceId": f"enginy-{index}"}
                )
        if not inputs:
            return
        response = await self.client.request(
            "POST",
            self.client.paths.batch("companies", "update"),
            json={"inputs": inputs},
            accept=(400, 409),
        )
        errors = response.json_dict().get("errors") or []
        if not response.ok or errors:
            log.info("hubspot: could not tag every adopted company: %s", response.json_dict())
