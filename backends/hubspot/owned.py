"""The key properties the driver owns: which key each holds, and their values on writes.

* ``linkedin_key_property`` (contacts, companies): the LinkedIn URL, normalised; always.
* ``domain_key_property`` (companies): the domain, normalised (``acme.co.uk``); always.
* ``domain_name_key_property`` (companies): the domain's name under any extension (``acme``);
  only when the ``domain`` match key is a ``domain_any_extension`` one, and the property is
  made then (so a plain domain key never makes ``acme.com`` and ``acme.es`` clash).

The domain key always holds the full domain (``acme.co.uk``), whatever the ``domain`` key's
normaliser, so changing ``matching:`` never leaves keys of the other kind behind. Which
normaliser the configured ``domain`` key uses shows in the value the front computed: a domain
keeps its dots, the name a ``domain_any_extension`` key keeps has none (``acme``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from backends.base import AuthFailed, Conflict, Entity, InvalidRecord
from backends.hubspot.core import OBJECT_TYPES
from backends.hubspot.keys import normalise_for_key
from backends.hubspot.search import SearchMixin

__all__ = ["DOMAIN_KEY", "LINKEDIN_KEY", "OwnedKeysMixin", "is_domain_name"]

log = logging.getLogger("backends.hubspot")

LINKEDIN_KEY = "linkedinUrl"
DOMAIN_KEY = "domain"


def is_domain_name(value: str | None) -> bool:
    """Whether a ``domain`` key value is the name a ``domain_any_extension`` key keeps
    (``acme``) rather than a domain (``acme.com``)."""
    return bool(value) and "." not in (value or "")


class OwnedKeysMixin(SearchMixin):
    """Owned key properties of :class:`backends.hubspot.HubSpotBackend`."""

    def owned_properties(self) -> frozenset[str]:
        """Every property the driver owns on contacts and companies (never returned as a
        record's field)."""
        return frozenset(
            {
                self.options.external_id_property,
                self.options.linkedin_key_property,
                self.options.domain_key_property,
                self.options.domain_name_key_property,
            }
        )

    def key_property(self, entity: Entity, key_name: str, kind: str) -> str | None:
        """The owned property holding key ``key_name`` normalised as ``kind``, if any."""
        if key_name == LINKEDIN_KEY and kind == "linkedin":
            return self.options.linkedin_key_property
        if entity is Entity.COMPANY and key_name == DOMAIN_KEY:
            if kind == "domain":
                return self.options.domain_key_property
            if kind == "domain_any_extension":
                return self.options.domain_name_key_property
        return None

    async def usable_key_property(self, entity: Entity, key_name: str, kind: str) -> str | None:
        """:meth:`key_property` when the portal has it. The domain name key is made on its
        first use (when properties may be created): only portals that match companies under
        any extension get it."""
        prop = self.key_property(entity, key_name, kind)
        if prop is None:
            return None
        object_type = OBJECT_TYPES[entity]
        if prop in await self.catalog.definitions(object_type):
            return prop
        if prop != self.options.domain_name_key_property or self.read_only:
            return None
        refused = self.__dict__.get("_name_key_refused")
        if refused is None and not self.options.create_properties:
            refused = "create_properties is false"
        if refused is None:
            try:
                await self.catalog.ensure(
                    object_type,
                    prop,
                    "Enginy domain name key",
                    unique=True,
                    description="Normalised match key kept by the Enginy adapter; do not edit.",
                )
                return prop
            except (AuthFailed, InvalidRecord, Conflict) as exc:
                refused = f"HubSpot refused to create it ({exc.message})"
        if not self.__dict__.get("_name_key_refused"):
            # Once per process: the set-up is not tried again on every call.
            self.__dict__["_name_key_refused"] = refused
            log.warning(
                "hubspot: companies.%s is missing and %s: domain_any_extension keys are looked "
                "up by search only, which lags writes (create it as a unique text property)",
                prop,
                refused,
            )
        return None

    def _linkedin_value(self, entity: Entity, fields: Mapping[str, object]) -> str | None:
        field = self.default_field_map.get(entity, {}).get(LINKEDIN_KEY, LINKEDIN_KEY)
        return normalise_for_key("linkedin", fields.get(field))

    def _domain_touched(self, fields: Mapping[str, object], clear: frozenset[str]) -> bool:
        field = self.default_field_map[Entity.COMPANY].get(DOMAIN_KEY, DOMAIN_KEY)
        return field in fields or field in clear

    def _domain_source(self, fields: Mapping[str, object]) -> str | None:
        field = self.default_field_map[Entity.COMPANY].get(DOMAIN_KEY, DOMAIN_KEY)
        return normalise_for_key("domain", fields.get(field))

    async def owned_values(
        self, entity: Entity, fields: Mapping[str, object], match_keys: Mapping[str, str]
    ) -> dict[str, str]:
        """``{owned property: value}`` for a new record (only properties the portal has):
        the front's keys, else the default-mapped fields normalised here (a record created
        without the front)."""
        definitions = await self.catalog.definitions(OBJECT_TYPES[entity])
        out: dict[str, str] = {}
        linkedin = match_keys.get(LINKEDIN_KEY) or self._linkedin_value(entity, fields)
        if linkedin:
            out[self.options.linkedin_key_property] = linkedin
        if entity is Entity.COMPANY:
            front = match_keys.get(DOMAIN_KEY)
            domain = self._domain_source(fields) if not front or is_domain_name(front) else front
            if domain:
                out[self.options.domain_key_property] = domain
            if is_domain_name(front):
                name = await self.usable_key_property(entity, DOMAIN_KEY, "domain_any_extension")
                if name is not None:
                    definitions = await self.catalog.definitions(OBJECT_TYPES[entity])
                    out[name] = front or ""
        return {prop: value for prop, value in out.items() if prop in definitions}

    async def owned_changes(
        self,
        entity: Entity,
        fields: Mapping[str, object],
        clear: frozenset[str],
        match_keys: Mapping[str, str | None],
    ) -> dict[str, str]:
        """``{owned property: value or ""}`` for a partial update: the keys whose field the
        update sets or clears follow it; the others are left alone."""
        definitions = await self.catalog.definitions(OBJECT_TYPES[entity])
        out: dict[str, str] = {}
        linkedin_field = self.default_field_map.get(entity, {}).get(LINKEDIN_KEY, LINKEDIN_KEY)
        if LINKEDIN_KEY in match_keys:
            out[self.options.linkedin_key_property] = match_keys[LINKEDIN_KEY] or ""
        elif linkedin_field in fields or linkedin_field in clear:
            out[self.options.linkedin_key_property] = self._linkedin_value(entity, fields) or ""
        if entity is Entity.COMPANY and (
            DOMAIN_KEY in match_keys or self._domain_touched(fields, clear)
        ):
            front = match_keys.get(DOMAIN_KEY)
            if front and not is_domain_name(front):
                out[self.options.domain_key_property] = front
            elif self._domain_touched(fields, clear) or front is None:
                out[self.options.domain_key_property] = self._domain_source(fields) or ""
            name_prop = self.options.domain_name_key_property
            if is_domain_name(front):
                if await self.usable_key_property(entity, DOMAIN_KEY, "domain_any_extension"):
                    definitions = await self.catalog.definitions(OBJECT_TYPES[entity])
                out[name_prop] = front or ""
            elif name_prop in definitions:
                # The domain changed and no domain_any_extension key asks for the name: a name
                # kept from the old domain would be stale.
                out[name_prop] = ""
        return {prop: value for prop, value in out.items() if prop in definitions}
