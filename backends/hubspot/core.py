"""Shared state and helpers of the HubSpot driver (the mixins in records/engagements/tasks/
owners build on :class:`HubSpotCore`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

import httpx
from cachetools import TTLCache

from backends.base import (
    Backend,
    DriverOptions,
    Entity,
    NotFound,
    StoredRecord,
    Unavailable,
)
from backends.hubspot.client import HubSpotClient, Sleep
from backends.hubspot.options import HubSpotOptions
from backends.hubspot.properties import PropertyCatalog, from_hubspot_value
from backends.hubspot.recent import build_recent

__all__ = [
    "BATCH_LIMIT",
    "OBJECT_TYPES",
    "HubSpotCore",
    "chunks",
    "is_record_id",
]

log = logging.getLogger("backends.hubspot")

#: HubSpot's limit for every object batch endpoint (create/read/update/upsert/archive).
BATCH_LIMIT = 100

OBJECT_TYPES: dict[Entity, str] = {Entity.CONTACT: "contacts", Entity.COMPANY: "companies"}

#: Properties HubSpot maintains itself; never returned as record fields.
SYSTEM_PROPERTIES = frozenset(
    {"hs_object_id", "createdate", "lastmodifieddate", "hs_lastmodifieddate"}
)

T = TypeVar("T")


def chunks(items: Sequence[T], size: int = BATCH_LIMIT) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def is_record_id(value: str) -> bool:
    """HubSpot record ids are decimal numbers; anything else cannot exist."""
    return value.isdigit() and len(value) < 20


class HubSpotCore(Backend):
    """Lifecycle, client, property catalog and record helpers."""

    name: ClassVar[str] = "hubspot"
    Options: ClassVar[type[DriverOptions]] = HubSpotOptions
    options: HubSpotOptions

    def __init__(
        self,
        options: DriverOptions | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if options is None:
            raise TypeError("HubSpotBackend needs options (at least a token)")
        if not isinstance(options, HubSpotOptions):
            raise TypeError("HubSpotBackend needs HubSpotOptions (HubSpotBackend.Options)")
        super().__init__(options)
        self._clock = clock
        self.client = HubSpotClient(options, transport, sleep=sleep, clock=clock)
        # The front sets on_upstream_retry after construction, so look it up at retry time.
        self.client.on_retry = self._report_retry
        self.catalog = PropertyCatalog(
            self.client,
            policy=options.unknown_properties,
            group=options.property_group,
            ttl=options.properties_ttl_seconds,
            timer=clock,
        )
        #: Record ids known to exist (created, found or checked lately): spares existence
        #: checks before activities and tasks.
        self._known: TTLCache[tuple[str, str], bool] = TTLCache(
            maxsize=10_000, ttl=600, timer=clock
        )
        #: Contacts created lately, by e-mail domain (see :mod:`.autocompanies`).
        self.recent = build_recent(options, clock)
        self._opened = False

    def _report_retry(self, kind: str) -> None:
        if self.on_upstream_retry is not None:
            self.on_upstream_retry(kind)

    # -- lifecycle ------------------------------------------------------------------------------

    async def open(self) -> None:
        """Check the token and create/verify the external-id property on contacts and
        companies. Raises :class:`AuthFailed` (bad token/scopes) or :class:`Unavailable`."""
        with self.client.budget():
            for object_type in OBJECT_TYPES.values():
                await self._ensure_external_id(object_type)
                await self._ensure_key_properties(object_type)
        self._opened = True

    #: The driver's key properties per object type: (option name, label).
    KEY_PROPERTIES: ClassVar[dict[str, tuple[tuple[str, str], ...]]] = {
        "contacts": (("linkedin_key_property", "Enginy LinkedIn key"),),
        "companies": (
            ("domain_key_property", "Enginy domain key"),
            ("linkedin_key_property", "Enginy LinkedIn key"),
        ),
    }

    @property
    def _may_create(self) -> bool:
        """Whether properties may be created: allowed by the options, and not a read-only
        ``check`` (see :attr:`backends.base.Backend.read_only`)."""
        return self.options.create_properties and not self.read_only

    async def _ensure_key_properties(self, object_type: str) -> None:
        """Create the unique key properties (normalised LinkedIn URL, company domain). Without
        them lookups fall back to search, which lags writes: logged, not fatal."""
        for option, label in self.KEY_PROPERTIES[object_type]:
            name = getattr(self.options, option)
            exists = await self.catalog.ensure(
                object_type,
                name,
                label,
                unique=True,
                create=self._may_create,
                description="Normalised match key kept by the Enginy adapter; do not edit.",
            )
            if not exists:
                log.warning(
                    "hubspot: %s.%s is missing (create it as a unique text property, or set "
                    "create_properties: true); lookups by that key use search, which lags writes",
                    object_type,
                    name,
                )

    async def _ensure_external_id(self, object_type: str) -> None:
        name = self.options.external_id_property
        exists = await self.catalog.ensure(
            object_type,
            name,
            "Enginy external ID",
            unique=True,
            create=self._may_create,
        )
        if not exists and self.read_only:
            return  # ``check`` without ``--migrate``: check_setup reports it
        if not exists:
            raise Unavailable(
                f"HubSpot property {object_type}.{name} is missing; create it as a unique "
                "text property or set backend.options.create_properties: true"
            )
        definition = (await self.catalog.definitions(object_type)).get(name) or {}
        if not definition.get("hasUniqueValue", False):
            log.warning(
                "hubspot: %s.%s is not a unique property; creates cannot be read back by it "
                "with batch/read and idempotency is weaker",
                object_type,
                name,
            )

    async def close(self) -> None:
        await self.client.aclose()
        await self.recent.aclose()

    async def ping(self) -> None:
        """One cheap authenticated read (contacts, limit 1)."""
        with self.client.budget(min(10.0, self.options.budget_seconds)):
            await self.client.request(
                "GET", self.client.paths.objects("contacts"), params={"limit": "1"}
            )

    # -- helpers ------------------------------------------------------------------------------

    async def _read_properties(self, object_type: str) -> list[str]:
        """Properties asked for on reads: the default map's, every custom property, the
        configured extras and the external id."""
        wanted = set(self.options.read_properties)
        wanted.add(self.options.external_id_property)
        for entity, object_name in OBJECT_TYPES.items():
            if object_name == object_type:
                wanted.update(self.default_field_map.get(entity, {}).values())
        definitions = await self.catalog.definitions(object_type)
        wanted.update(n for n, d in definitions.items() if not d.get("hubspotDefined", False))
        return sorted(n for n in wanted if n in definitions)

    async def _to_record(self, object_type: str, obj: Mapping[str, Any]) -> StoredRecord:
        definitions = await self.catalog.definitions(object_type)
        props = obj.get("properties") or {}
        ext = self.options.external_id_property
        own = {
            ext,
            self.options.linkedin_key_property,
            self.options.domain_key_property,
            self.options.domain_name_key_property,
        }
        originals = self.catalog.original_names(object_type)
        fields = {
            originals.get(name, name): from_hubspot_value(definitions.get(name), value)
            for name, value in props.items()
            if value not in (None, "") and name not in SYSTEM_PROPERTIES and name not in own
        }
        crm_id = str(obj.get("id"))
        self._known[(object_type, crm_id)] = True
        return StoredRecord(crm_id=crm_id, external_id=props.get(ext) or None, fields=fields)

    async def batch_read(
        self,
        object_type: str,
        ids: Iterable[str],
        properties: Sequence[str],
        id_property: str | None = None,
    ) -> list[dict[str, Any]]:
        """``batch/read`` in chunks of 100; missing ids are simply absent (207/404)."""
        unique = list(dict.fromkeys(ids))
        found: list[dict[str, Any]] = []
        for part in chunks(unique):
            body: dict[str, Any] = {
                "inputs": [{"id": value} for value in part],
                "properties": list(properties),
                "propertiesWithHistory": [],
            }
            if id_property:
                body["idProperty"] = id_property  # top level for batch/read (not per input)
            response = await self.client.request(
                "POST",
                self.client.paths.batch(object_type, "read"),
                json=body,
                params={"archived": "false"},
                accept=(404,),
            )
            found.extend(
                r for r in response.json_dict().get("results") or [] if isinstance(r, dict)
            )
        return found

    async def note_fields(
        self, object_type: str, notes: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> None:
        """Keep fields that have no property as a note on each record's timeline
        (``unknown_properties: note``): one ``batch/create`` of notes per 100 records."""
        type_id = {"contacts": 202, "companies": 190}[object_type]  # note → contact / company
        stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        for part in chunks(list(notes)):
            inputs = [
                {
                    "properties": {
                        "hs_timestamp": stamp,
                        "hs_note_body": "Enginy fields:\n"
                        + "\n".join(f"{k}: {v}" for k, v in fields.items()),
                    },
                    "associations": [
                        {
                            "to": {"id": crm_id},
                            "types": [
                                {
                                    "associationCategory": "HUBSPOT_DEFINED",
                                    "associationTypeId": type_id,
                                }
                            ],
                        }
                    ],
                }
                for crm_id, fields in part
            ]
            await self.client.request(
                "POST", self.client.paths.batch("notes", "create"), json={"inputs": inputs}
            )

    async def require_records(self, checks: Mapping[str, Iterable[str | None]]) -> None:
        """Raise :class:`NotFound` unless every id exists (``{"contacts": [ids]}``)."""
        for object_type, ids in checks.items():
            missing = [i for i in dict.fromkeys(ids) if i and (object_type, i) not in self._known]
            if not missing:
                continue
            bad = [i for i in missing if not is_record_id(i)]
            valid = [i for i in missing if is_record_id(i)]
            if valid:
                found = await self.batch_read(object_type, valid, ["hs_object_id"])
                for obj in found:
                    self._known[(object_type, str(obj.get("id")))] = True
                bad += [i for i in valid if (object_type, i) not in self._known]
            if bad:
                kind = "contact" if object_type == "contacts" else "company"
                raise NotFound(f"No {kind} exists with ID: {', '.join(bad)}")
