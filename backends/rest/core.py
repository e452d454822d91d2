"""Shared state of the REST driver: the client, the custom-field catalog, the codecs, bounded
concurrency, per-key locks, and the life cycle (open, ping, check, close)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import httpx
from cachetools import TTLCache

from backends.base import (
    EXTERNAL_ID,
    Backend,
    BackendError,
    Capability,
    DriverOptions,
    Entity,
    NotFound,
    SetupReport,
    Unavailable,
)
from backends.http import Limiter
from backends.http.limiter import Clock, Sleep
from backends.rest.client import RestClient
from backends.rest.codec import RecordCodec
from backends.rest.customfields import FieldCatalog
from backends.rest.finding import FindStrategy
from backends.rest.manifest import RestOptions
from backends.rest.requests import Operation
from backends.rest.resources import IdFormat, RecordResource, well_formed

__all__ = ["RestCore"]

log = logging.getLogger("backends.rest")
T = TypeVar("T")

#: The optional groups and the manifest section that turns each on.
SECTIONS: dict[Capability, str] = {
    Capability.ASSOCIATIONS: "associations",
    Capability.ACTIVITIES: "activities",
    Capability.TASKS: "tasks",
    Capability.USERS: "users",
}


class RestCore(Backend):
    """Life cycle and helpers of :class:`backends.rest.RestBackend`."""

    name: ClassVar[str] = "rest"
    Options: ClassVar[type[DriverOptions]] = RestOptions
    options: RestOptions

    def __init__(
        self,
        options: DriverOptions | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        jitter: Callable[[], float] = random.random,
        limiter: Limiter | None = None,
    ) -> None:
        if not isinstance(options, RestOptions):
            raise TypeError("RestBackend needs RestOptions (RestBackend.Options): the manifest")
        super().__init__(options)
        self._sleep, self._clock = sleep, clock
        self.client = RestClient(
            options, transport, sleep=sleep, clock=clock, jitter=jitter, limiter=limiter
        )
        self.client.http.on_retry = self._report_retry
        self.catalog = (
            FieldCatalog(
                options.custom_fields,
                self._send_op,
                self._items_op,
                timer=clock,
                sleep=sleep,
                attempts=options.max_attempts,
            )
            if options.custom_fields is not None
            else None
        )
        self.codecs = {
            entity: RecordCodec(self.resource(entity), self.catalog) for entity in Entity
        }
        # The groups this manifest configures: the instance narrows the class's declaration.
        declared = frozenset(c for c, section in SECTIONS.items() if getattr(options, section))
        setattr(self, "capabilities", declared)  # noqa: B010 - an instance value over a ClassVar
        self._locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._slots = asyncio.Semaphore(options.concurrency)
        #: External id → crm id of records this process created or found lately: a create
        #: waiting on another's lock answers with its record without a call.
        self.made: TTLCache[tuple[Entity, str], str] = TTLCache(
            maxsize=50_000, ttl=600, timer=clock
        )
        #: Records known to exist lately (created, found or read): spares existence checks.
        self.known: TTLCache[tuple[Entity, str], bool] = TTLCache(
            maxsize=10_000, ttl=600, timer=clock
        )

    def _report_retry(self, kind: str) -> None:
        if self.on_upstream_retry is not None:
            self.on_upstream_retry(kind)

    def usable_ids(self, ids: Sequence[str], id_format: IdFormat) -> list[str]:
        """The ids that can name something (a dry run's own ids are always usable)."""
        ids = [i for i in dict.fromkeys(ids) if i]
        return ids if self.options.dry_run else well_formed(ids, id_format)

    def resource(self, entity: Entity) -> RecordResource:
        return self.options.contacts if entity is Entity.CONTACT else self.options.companies

    def lock(self, kind: str, key: str) -> asyncio.Lock:
        """One lock per (kind, key): concurrent creates of one external id run one at a time."""
        lock = self._locks.get((kind, key))
        if lock is None:
            lock = asyncio.Lock()
            self._locks[(kind, key)] = lock
        return lock

    async def gather(self, calls: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
        """Run ``calls`` at most ``concurrency`` at a time; results in order."""

        async def one(call: Callable[[], Awaitable[T]]) -> T:
            async with self._slots:
                return await call()

        if len(calls) == 1:
            return [await calls[0]()]
        return list(await asyncio.gather(*(one(call) for call in calls)))

    async def _send_op(self, op: Operation, ctx: Mapping[str, Any]) -> Any:
        return (await self.client.send(op.request, op.response, ctx, idempotent=False)).body

    async def _items_op(self, op: Operation, ctx: Mapping[str, Any]) -> list[Any]:
        return await self.client.collect(
            op.request, op.response, getattr(op, "pagination", None), ctx
        )

    # -- life cycle -----------------------------------------------------------------------------

    def _own_fields(self) -> list[tuple[str, str, str, bool]]:
        """The custom fields the driver needs: ``(target, label, key, filterable)``."""
        own: list[tuple[str, str, str, bool]] = []
        for entity in Entity:
            target = getattr(self.resource(entity).unknown_fields, "target", None)
            for key in self.codecs[entity].owned_custom_keys():
                assert target is not None  # owned keys exist only under a defined container
                own.append((target, key, key, True))
        for target, fields in self.options.own_fields.items():
            for item in fields:
                key = str(item["key"])
                own.append(
                    (target, str(item.get("label") or key), key, bool(item.get("filterable", True)))
                )
        return own

    async def open(self) -> None:
        """Define the driver's own custom fields (external id, keys) where the manifest keeps
        them in the CRM's custom fields; read nothing else. Opened :attr:`read_only` (``check``
        without ``--migrate``) it defines nothing and notes what is missing. Raises
        :class:`AuthFailed` or :class:`Unavailable` when the CRM cannot be used."""
        self._missing: list[str] = []
        if self.catalog is None or self.options.dry_run:
            return
        with self.client.budget():
            for target, label, key, filterable in self._own_fields():
                if self.read_only:
                    if await self.catalog.find(target, label, key) is None:
                        self._missing.append(f"{target}.{key}")
                    continue
                await self.catalog.ensure(target, label, "", key=key, filterable=filterable)

    async def close(self) -> None:
        await self.client.aclose()

    async def ping(self) -> None:
        """One cheap authenticated read: ``health``, else the contacts' first externalId
        lookup with a value no record holds."""
        if self.options.dry_run:
            return
        with self.client.budget(min(10.0, self.options.budget_seconds)):
            if self.options.health is not None:
                health = self.options.health
                await self.client.send(health.request, health.response, {})
                return
            strategy: FindStrategy = self.options.contacts.find[EXTERNAL_ID][0]
            probe = "enginy-adapter-ping"
            ctx = {"value": probe, "values": [probe], "key": EXTERNAL_ID}
            # A lookup answering 404 for "no such record" is a working lookup.
            with contextlib.suppress(NotFound):
                await self.client.send(strategy.request, strategy.response, ctx)

    async def check_setup(self, field_maps: Mapping[Entity, Mapping[str, str]]) -> SetupReport:
        """What ``enginy-adapter check`` reports: mapped fields the CRM has no place for,
        match keys without a find strategy, the groups configured."""
        problems: list[str] = []
        notes: list[str] = [
            "capabilities: " + (", ".join(sorted(c.value for c in self.capabilities)) or "none")
        ]
        if self.options.dry_run:
            notes.append("dry run: nothing is sent to the CRM (backend.options.dry_run)")
        missing = getattr(self, "_missing", [])
        if missing:
            notes.append(
                f"custom fields the driver defines at start-up (serve, or check --migrate): "
                f"{', '.join(missing)}"
            )
        for entity in Entity:
            spec = self.resource(entity)
            section = f"backend.options.{entity.plural}"
            fields = set(spec.fields or ())
            policy = spec.unknown_fields.type
            for enginy_name, backend_name in field_maps.get(entity, {}).items():
                if spec.fields is not None and backend_name not in fields and policy == "drop":
                    notes.append(
                        f"{section}: {enginy_name} maps to {backend_name!r}, which is not in "
                        "fields: it will be dropped (unknown_fields: drop)"
                    )
            keyed = [k for k in spec.find if k != EXTERNAL_ID]
            notes.append(f"{section}: found by externalId, {', '.join(keyed) or 'no match key'}")
        if self.catalog is not None and not self.options.dry_run:
            try:
                for entity in Entity:
                    target = getattr(self.resource(entity).unknown_fields, "target", None)
                    if target:
                        await self.catalog.keys(target, fresh=True)
            except BackendError as exc:
                if isinstance(exc, Unavailable):
                    raise
                problems.append(f"backend.options.custom_fields.list: {exc.message}")
        return SetupReport(problems=tuple(problems), notes=tuple(notes))
