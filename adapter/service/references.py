"""Reference fields that name nothing: ``contactId``, ``companyId`` (and ``contactCRMId``,
``companyCRMId``) and ``ownerId`` are a 400 naming the field, never a 404 (which is for the
resource in the path) nor a record saved unlinked.

Where the check lives (``docs/architecture.md``, "Reference fields"):

* **Contacts and companies are checked by the driver, inside its write.** The interface
  requires it (``create_activity``, ``create_task``, ``update_task`` raise
  :class:`~backends.base.NotFound`, ``create_associations`` reports it per pair) and the
  conformance suite proves it for every driver. The check is then atomic with the write and
  costs nothing extra on success. What a ``NotFound`` does not say is *which* field named
  nothing, nor, on ``PATCH /tasks/:id``, whether it is the task itself: only then, on the error
  path, :func:`missing_references` asks the driver with one batched ``get_records`` per entity
  (for every pair of an associations batch at once).
* **Owners are checked here**, against the users ``GET /users`` lists (the YAML list, else the
  driver's, cached for a minute): drivers do not know owners as records. An empty list means
  owners are not managed through the adapter, and nothing is checked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from adapter.errors import ApiError
from backends.base import Backend, Capability, Entity, NotFound, Unsupported, User

__all__ = [
    "REFERENCE_FIELDS",
    "InvalidReference",
    "ReferenceChecks",
    "UserDirectory",
    "describe",
    "missing_references",
]

#: The wire fields of activities and tasks that name a record, and its entity.
REFERENCE_FIELDS: dict[str, Entity] = {"contactId": Entity.CONTACT, "companyId": Entity.COMPANY}


class InvalidReference(ApiError):
    """400: a reference field names no record (or no user)."""

    code = "invalid_reference"

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))


def describe(field: str, entity: Entity | None, value: str) -> str:
    """``contactId: no contact exists with ID: ct_1``."""
    what = entity.value if entity is not None else "user"
    shown = value if len(value) <= 200 else value[:200] + "..."
    return f"{field}: no {what} exists with ID: {shown}"


async def missing_references(
    backend: Backend, references: Mapping[str, tuple[Entity, str | None]]
) -> list[str]:
    """The fields of ``references`` (field -> (entity, id)) whose id names no record, in
    order: one ``get_records`` call per entity, whatever the number of fields."""
    wanted: dict[Entity, set[str]] = {}
    for entity, value in references.values():
        if value:
            wanted.setdefault(entity, set()).add(value)
    existing: dict[Entity, set[str]] = {}
    for entity, ids in wanted.items():
        existing[entity] = set(await backend.get_records(entity, sorted(ids)))
    return [
        field
        for field, (entity, value) in references.items()
        if value and value not in existing[entity]
    ]


class UserDirectory:
    """The users an ``ownerId`` may name: the YAML ``users:`` list, else the driver's users
    (:attr:`Capability.USERS`), fetched at most once per ``ttl`` seconds, and again (at most
    once per ``refresh`` seconds) when an id is not found, so that a user added in the CRM is
    accepted without a restart."""

    def __init__(
        self,
        backend: Backend,
        static: Sequence[User] | None,
        *,
        ttl: float = 60.0,
        refresh: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backend = backend
        self._static = None if static is None else frozenset(u.id for u in static)
        self._ttl = ttl
        self._refresh = refresh
        self._clock = clock
        self._ids: frozenset[str] | None = None
        self._fetched = -float("inf")
        self._lock = asyncio.Lock()

    async def unknown(self, ids: Iterable[str]) -> set[str]:
        """The ids among ``ids`` that name no user; empty when no user list is kept."""
        wanted = {i for i in ids if i}
        if not wanted:
            return set()
        known = await self._ids_known(max_age=self._ttl)
        if known is None:
            return set()
        missing = wanted - known
        if missing and self._static is None:
            known = await self._ids_known(max_age=self._refresh)
            missing = wanted - known if known is not None else set()
        return missing

    async def _ids_known(self, max_age: float) -> frozenset[str] | None:
        if self._static is not None:
            return self._static or None
        if Capability.USERS not in self._backend.capabilities:
            return None
        async with self._lock:
            if self._clock() - self._fetched >= max_age:
                try:
                    users = await self._backend.list_users()
                except Unsupported:
                    users = []
                self._ids = frozenset(u.id for u in users)
                self._fetched = self._clock()
        return self._ids or None


class ReferenceChecks:
    """The reference checks of the writes that name a contact, a company or an owner
    (activities and tasks), for the service's halves that make them."""

    backend: Backend
    scrub: Callable[[str], str]
    directory: UserDirectory

    async def _check_owner(self, owner_id: str | None) -> None:
        if owner_id and await self.directory.unknown([owner_id]):
            raise InvalidReference([describe("ownerId", None, owner_id)])

    async def _reference_error(
        self, error: NotFound, contact_id: str | None, company_id: str | None
    ) -> ApiError:
        """The 400 for a write the driver refused with ``NotFound`` for its contact or
        company: which one is asked on this error path only."""
        references = {
            "contactId": (REFERENCE_FIELDS["contactId"], contact_id),
            "companyId": (REFERENCE_FIELDS["companyId"], company_id),
        }
        missing = await missing_references(self.backend, references)
        if not missing:
            # Found now (created meanwhile?): the driver's own words, whatever they are.
            return InvalidReference([self.scrub(error.message)])
        return InvalidReference(
            [describe(f, references[f][0], references[f][1] or "") for f in missing]
        )
