"""The backend driver interface: what every CRM driver implements.

A driver receives records already translated into the *backend's* vocabulary (the front applies
the YAML field mapping once, see ``adapter/mapping.py``) together with normalised match keys
(``adapter/matching.py``). It stores, finds and updates them, and reports per-item outcomes.

Layout of the interface (one async class, grouped by resource):

* **Contacts and companies** (required core). Both are *records* and share one set of methods
  keyed by :class:`Entity`, because every CRM we have met treats them as the same kind of
  object with a different type name (HubSpot object types, SQL tables, ...):
  :meth:`Backend.create_records`, :meth:`Backend.find_records`, :meth:`Backend.update_records`,
  :meth:`Backend.get_records`; a sync's lookup by several keys, :meth:`Backend.match_records`,
  has a default built on :meth:`Backend.find_records`.
* **Associations** (optional, :attr:`Capability.ASSOCIATIONS`): :meth:`Backend.create_associations`.
* **Activities** (optional, :attr:`Capability.ACTIVITIES`): :meth:`Backend.create_activity`.
* **Tasks** (optional, :attr:`Capability.TASKS`): :meth:`Backend.create_task`,
  :meth:`Backend.get_tasks`, :meth:`Backend.update_task`, :meth:`Backend.update_tasks`.
* **Users** (optional, :attr:`Capability.USERS`): :meth:`Backend.list_users`.

Batch methods come in pairs: a single-item primitive (``create_record``) and a batch method
(``create_records``) whose default implementation here loops over the primitive. Drivers with a
native batch API override the batch method; the defaults exist to be overridden.

Per-item outcomes are returned as :class:`ItemResult` values, one per input and in input order.
Exceptions are raised only when the *whole* call failed (auth, outage, rate limit after retries).

The interface spans four modules, one job each: the errors (:mod:`backends.errors`), the
optional groups (:mod:`backends.capabilities`), the values that cross the interface
(:mod:`backends.records`) and the class itself (here). This module exports every public name
of the four; drivers import them from here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from backends.capabilities import CAPABILITY_METHODS, Capability
from backends.errors import (
    AuthFailed,
    BackendError,
    Conflict,
    InvalidRecord,
    NotFound,
    RateLimited,
    SchemaError,
    Unavailable,
    Unsupported,
)
from backends.records import (
    EXTERNAL_ID,
    TASK_FIELDS,
    Activity,
    AssociationPair,
    Entity,
    FirstMatches,
    ItemResult,
    MatchKey,
    NewActivity,
    NewRecord,
    NewTask,
    RecordUpdate,
    SetupReport,
    StoredRecord,
    Task,
    TaskChanges,
    User,
    Value,
)

__all__ = [
    "CAPABILITY_METHODS",
    "EXTERNAL_ID",
    "TASK_FIELDS",
    "Activity",
    "AssociationPair",
    "AuthFailed",
    "Backend",
    "BackendError",
    "Capability",
    "Conflict",
    "DriverOptions",
    "Entity",
    "FirstMatches",
    "InvalidRecord",
    "ItemResult",
    "MatchKey",
    "NewActivity",
    "NewRecord",
    "NewTask",
    "NotFound",
    "RateLimited",
    "RecordUpdate",
    "SchemaError",
    "SetupReport",
    "StoredRecord",
    "Task",
    "TaskChanges",
    "Unavailable",
    "Unsupported",
    "User",
    "Value",
    "overridden_capabilities",
]

# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


class DriverOptions(BaseModel):
    """Base of every driver's typed options (``backend.options`` in the YAML).

    Unknown keys are rejected so that a misspelt option is reported at start-up with its path.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------------------------
# The interface
# --------------------------------------------------------------------------------------------


class Backend:
    """Base class of every driver.

    Subclasses set :attr:`name`, :attr:`capabilities` and :attr:`Options`, and implement at
    least the record primitives. A driver is constructed with its validated options, then
    :meth:`open` is awaited once before use and :meth:`close` once at shutdown.
    """

    #: Short driver name used in logs and in the registry.
    name: ClassVar[str] = "base"
    #: The optional groups this driver implements.
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    #: The driver's typed options model.
    Options: ClassVar[type[DriverOptions]] = DriverOptions
    #: Default Enginy-name → backend-name field mapping per entity; the YAML overrides it.
    default_field_map: ClassVar[Mapping[Entity, Mapping[str, str]]] = {}
    #: Whether the data lives in this process only (several server workers would each see
    #: their own copy, so the front refuses to start more than one).
    process_local: ClassVar[bool] = False
    #: Set by the front before :meth:`open` (``enginy-adapter check`` without ``--migrate``):
    #: :meth:`open` and :meth:`check_setup` must then change nothing in the backend (no
    #: schema created or migrated, no property or field created), only read and report.
    read_only: bool = False

    #: Set by the front: a driver that retries upstream calls reports each retry through it,
    #: with a short reason (``"429"``, ``"5xx"``, ``"network"``...), for the retry metric.
    on_upstream_retry: Callable[[str], None] | None = None

    def __init__(self, options: DriverOptions | None = None) -> None:
        self.options = options if options is not None else self.Options()

    # -- lifecycle --------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, create schema, warm caches. Raises :class:`Unavailable` or
        :class:`AuthFailed` when the backend cannot be used. Called once."""

    async def close(self) -> None:
        """Release connections. Called once; must not raise."""

    async def ping(self) -> None:
        """Check that the backend is reachable and the credentials work.

        Returns ``None``; raises :class:`Unavailable` or :class:`AuthFailed`. Must be cheap:
        the front caches its result for a few seconds.
        """

    async def check_setup(self, field_maps: Mapping[Entity, Mapping[str, str]]) -> SetupReport:
        """Deeper set-up checks for ``enginy-adapter check``, run after :meth:`open` and
        :meth:`ping`: does the backend have what the configuration needs?

        ``field_maps`` is the effective Enginy-name → backend-field mapping per entity (the
        driver's defaults with the YAML's overrides). Returns a :class:`SetupReport`; raises
        only when the backend cannot be reached. Read-only unless the driver's options allow
        it to create what is missing. This default finds nothing to report.
        """
        return SetupReport()

    # -- contacts and companies (required) ----------------------------------------------------

    async def create_record(self, entity: Entity, record: NewRecord) -> ItemResult:
        """Create one record, idempotently on ``record.external_id``.

        Returns an :class:`ItemResult` with the ``crm_id`` (``created=False`` when a record
        with that external id already existed: its id is returned and nothing is written).
        A record the backend rejects gives ``ItemResult(error=InvalidRecord(...))``.
        Raises only for whole-call failures (:class:`Unavailable`, :class:`AuthFailed`).
        Idempotent: yes, and must stay so under concurrent calls with the same external id.
        """
        raise Unsupported(f"{self.name} does not implement create_record")

    async def create_records(
        self, entity: Entity, records: Sequence[NewRecord]
    ) -> list[ItemResult]:
        """Create records; one :class:`ItemResult` per input, in order.

        Same contract as :meth:`create_record` for each item. Within one call the same
        external id may appear twice; both items get the same ``crm_id``.
        This default loops over :meth:`create_record`; it exists to be overridden by drivers
        with a native batch (one transaction, one round trip).
        """
        return [await self.create_record(entity, record) for record in records]

    async def find_records(
        self, entity: Entity, key: MatchKey, values: Sequence[str]
    ) -> dict[str, StoredRecord]:
        """Find records by one match key.

        ``values`` are normalised values of key ``key.name`` (``EXTERNAL_ID`` for the external
        id the record was created with). Returns a mapping from each value that matched to the
        record holding it; values without a match are absent. When several records hold the
        same value, the oldest one wins. Read-only; raises only for whole-call failures.
        A driver should answer a batch with a constant number of backend calls.
        """
        raise Unsupported(f"{self.name} does not implement find_records")

    async def match_records(
        self,
        entity: Entity,
        keys: Sequence[MatchKey],
        values: Sequence[Sequence[str | None]],
    ) -> list[StoredRecord | None]:
        """A sync's lookup: for each item, the record found by the first of ``keys`` (in
        priority order, the external id first) whose value for that item matches.

        ``values[k][i]`` is item ``i``'s normalised value of ``keys[k]`` (``None``: the item has
        none); ``values[k]`` may normalise on demand, so read each value only for the items
        still unmatched, as :class:`FirstMatches` does. Returns one entry per item, in order:
        its record, or ``None``. Read-only; raises only for whole-call failures.

        This default calls :meth:`find_records` once per key for the items still unmatched; a
        driver that can run those lookups in one trip (one connection, one hand-over to a
        database thread) overrides it with the same answers.
        """
        matches = FirstMatches(values)
        for key, wanted in matches.rounds(keys):
            matches.take(await self.find_records(entity, key, wanted))
        return matches.found

    async def get_records(self, entity: Entity, crm_ids: Sequence[str]) -> dict[str, StoredRecord]:
        """Fetch records by CRM id. Returns ``{crm_id: record}`` for those that exist
        (unknown ids are absent). Read-only."""
        raise Unsupported(f"{self.name} does not implement get_records")

    async def update_record(self, entity: Entity, update: RecordUpdate) -> ItemResult:
        """Apply a partial update to one record.

        Only the keys in ``update.fields`` change, plus ``update.clear``; everything else is
        left as stored. Returns ``ItemResult(crm_id=...)`` on success,
        ``ItemResult(error=NotFound(...))`` for an unknown ``crm_id`` and
        ``ItemResult(error=InvalidRecord(...))`` for a rejected value. Idempotent: yes.
        """
        raise Unsupported(f"{self.name} does not implement update_record")

    async def update_records(
        self, entity: Entity, updates: Sequence[RecordUpdate]
    ) -> list[ItemResult]:
        """Apply partial updates; one :class:`ItemResult` per input, in order.

        This default loops over :meth:`update_record`; it exists to be overridden by drivers
        with a native batch update.
        """
        return [await self.update_record(entity, update) for update in updates]

    # -- associations (Capability.ASSOCIATIONS) -------------------------------------------------

    async def create_associations(self, pairs: Sequence[AssociationPair]) -> list[ItemResult]:
        """Link contacts to companies; one :class:`ItemResult` per pair, in order.

        A pair that already exists succeeds silently (idempotent). A pair naming an unknown
        contact or company gets ``ItemResult(error=NotFound(...))``. The ``crm_id`` of a
        successful result is the contact's id.
        """
        raise Unsupported(f"{self.name} does not support associations")

    # -- activities (Capability.ACTIVITIES) ----------------------------------------------------

    async def create_activity(self, activity: NewActivity) -> Activity:
        """Store one activity and return it with its new ``id``.

        Idempotent on ``activity.idempotency_key`` when set: a repeat returns the first
        activity unchanged (even under concurrent calls). Raises :class:`NotFound` when
        ``contact_id`` or ``company_id`` names a record that does not exist, and
        :class:`InvalidRecord` for a value the backend rejects.
        """
        raise Unsupported(f"{self.name} does not support activities")

    # -- tasks (Capability.TASKS) ---------------------------------------------------------------

    async def create_task(self, task: NewTask) -> Task:
        """Create a task (``completed=False``) and return it with its new ``id``.

        Raises :class:`NotFound` when ``contact_id`` / ``company_id`` names a record that does
        not exist, :class:`InvalidRecord` for a rejected value. Not idempotent: the contract
        gives no key for it.
        """
        raise Unsupported(f"{self.name} does not support tasks")

    async def get_tasks(self, ids: Sequence[str]) -> list[Task]:
        """Return the tasks with these ids, in the order asked, skipping unknown ids (and
        repeated ones). Read-only."""
        raise Unsupported(f"{self.name} does not support tasks")

    async def get_task(self, task_id: str) -> Task:
        """Return one task; raises :class:`NotFound`. Defaults to :meth:`get_tasks`."""
        tasks = await self.get_tasks([task_id])
        if not tasks:
            raise NotFound(f"No task exists with ID: {task_id}")
        return tasks[0]

    async def update_task(self, task_id: str, changes: TaskChanges) -> Task:
        """Apply a partial update (see :class:`TaskChanges`) and return the task after it.

        Raises :class:`NotFound` for an unknown id, and when ``contact_id`` / ``company_id``
        names a record that does not exist (the task's links are then left as they were).
        Idempotent: yes (completing a completed task keeps its ``completed_at`` unless a new
        one is given).
        """
        raise Unsupported(f"{self.name} does not support tasks")

    async def update_tasks(self, ids: Sequence[str], changes: TaskChanges) -> list[Task]:
        """Apply the same changes to several tasks; return the updated ones in the order asked,
        skipping unknown ids. This default loops over :meth:`update_task`; it exists to be
        overridden by drivers with a native batch update."""
        updated: list[Task] = []
        seen: set[str] = set()
        for task_id in ids:
            if task_id in seen:
                continue
            seen.add(task_id)
            try:
                updated.append(await self.update_task(task_id, changes))
            except NotFound:
                continue
        return updated

    # -- users (Capability.USERS) -------------------------------------------------------------

    async def list_users(self) -> list[User]:
        """Return the CRM's users/owners. Read-only; may be cached by the driver."""
        raise Unsupported(f"{self.name} does not list users")

    # -- browsing (Capability.BROWSE), for the dashboard's record pages ----------------------

    async def counts(self) -> dict[str, int]:
        """Return how many items are stored, keyed ``contacts``, ``companies``,
        ``associations``, ``activities`` and ``tasks``. Read-only."""
        raise Unsupported(f"{self.name} does not support browsing")

    async def list_records(
        self, entity: Entity, *, limit: int = 50, offset: int = 0, search: str | None = None
    ) -> list[StoredRecord]:
        """Return stored records, newest first, paged by ``limit``/``offset``. Read-only.

        ``search`` keeps only the records whose CRM id, external id or the text of one of
        whose field values contains it, ignoring case (at least ASCII case); it is matched
        literally (``%`` and ``_`` are not wildcards). ``None`` or ``""``: every record.
        """
        raise Unsupported(f"{self.name} does not support browsing")

    async def list_associated(self, entity: Entity, crm_id: str) -> list[StoredRecord]:
        """Return the records linked to ``crm_id``: a contact's companies when ``entity`` is
        ``CONTACT``, a company's contacts when it is ``COMPANY``. Unknown id: empty list."""
        raise Unsupported(f"{self.name} does not support browsing")

    async def list_activities(
        self, *, contact_id: str | None = None, company_id: str | None = None, limit: int = 100
    ) -> list[Activity]:
        """Return activities, newest ``occurred_at`` first (then newest created), optionally
        only those of one contact or company. Read-only."""
        raise Unsupported(f"{self.name} does not support browsing")

    async def list_tasks(
        self,
        *,
        contact_id: str | None = None,
        company_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
        completed: bool | None = None,
        search: str | None = None,
    ) -> list[Task]:
        """Return tasks, newest first, paged by ``limit``/``offset``, optionally only those of
        one contact or company, only completed (``completed=True``) or open (``False``) ones,
        and only those whose subject or description contains ``search`` (ignoring case, matched
        literally as in :meth:`list_records`). Read-only."""
        raise Unsupported(f"{self.name} does not support browsing")


def overridden_capabilities(driver: type[Backend]) -> frozenset[Capability]:
    """The capabilities whose methods ``driver`` overrides (used to check declarations)."""
    found = set()
    for capability, methods in CAPABILITY_METHODS.items():
        if all(getattr(driver, m) is not getattr(Backend, m) for m in methods):
            found.add(capability)
    return frozenset(found)
