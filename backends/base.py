"""The backend driver interface: what every CRM driver implements.

A driver receives records already translated into the *backend's* vocabulary (the front applies
the YAML field mapping once, see ``adapter/mapping.py``) together with normalised match keys
(``adapter/matching.py``). It stores, finds and updates them, and reports per-item outcomes.

Layout of the interface (one async class, grouped by resource):

* **Contacts and companies** (required core). Both are *records* and share one set of methods
  keyed by :class:`Entity`, because every CRM we have met treats them as the same kind of
  object with a different type name (HubSpot object types, SQL tables, ...):
  :meth:`Backend.create_records`, :meth:`Backend.find_records`, :meth:`Backend.update_records`,
  :meth:`Backend.get_records`.
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
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

__all__ = [
    "EXTERNAL_ID",
    "Activity",
    "AssociationPair",
    "AuthFailed",
    "Backend",
    "BackendError",
    "Capability",
    "Conflict",
    "DriverOptions",
    "Entity",
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
    "overridden_capabilities",
]

#: The match-key name under which a record is found by the ``externalId`` Enginy gave it.
EXTERNAL_ID = "externalId"


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class BackendError(Exception):
    """Root of every error a driver raises or reports.

    ``code`` is the short machine-readable code the front puts in ``{"error": ...}``. The
    message must be good enough to debug from one log line and must never contain a secret
    (token, password, connection string with credentials).
    """

    code: ClassVar[str] = "backend_error"
    #: Whether retrying the same call later may succeed (the front answers 503).
    retryable: ClassVar[bool] = False

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)
        self.message = message or (self.__class__.__doc__ or self.code).strip().splitlines()[0]
        if code is not None:
            self.code = code  # type: ignore[misc]

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class NotFound(BackendError):
    """The record, task or object does not exist."""

    code = "not_found"


class Conflict(BackendError):
    """The write conflicts with an existing record (for example a unique value)."""

    code = "conflict"


class InvalidRecord(BackendError):
    """The backend rejected this record's values (too long, wrong type, unknown field...)."""

    code = "invalid_record"


class Unsupported(BackendError):
    """The driver does not implement this operation."""

    code = "not_implemented"


class SchemaError(BackendError):
    """The backend's schema or the driver's configuration does not allow the operation (a
    missing table or column, a type or collation the statement cannot use): retrying will
    fail the same way until an operator changes the schema or the configuration."""

    code = "backend_schema_error"


class AuthFailed(BackendError):
    """The backend refused the adapter's own credentials (token, password)."""

    code = "backend_auth_failed"
    retryable = True  # an operator can fix it; Enginy should come back later


class Unavailable(BackendError):
    """The backend cannot be reached or failed transiently (retry later)."""

    code = "backend_unavailable"
    retryable = True

    def __init__(
        self, message: str = "", *, retry_after: float | None = None, code: str | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class RateLimited(Unavailable):
    """The backend's rate limit was hit and retries did not get through in time."""

    code = "backend_rate_limited"


# --------------------------------------------------------------------------------------------
# Capabilities
# --------------------------------------------------------------------------------------------


class Capability(enum.Enum):
    """Optional groups of the interface a driver declares it implements.

    Contacts and companies are the required core and have no capability flag.
    """

    ASSOCIATIONS = "associations"
    ACTIVITIES = "activities"
    TASKS = "tasks"
    USERS = "users"
    #: Listing and counting stored data for the dashboard's record pages (embedded stores).
    BROWSE = "browse"


#: The methods a driver must override to declare each capability (used by the conformance
#: suite to check declarations, and by the docs' support table).
CAPABILITY_METHODS: dict[Capability, tuple[str, ...]] = {
    Capability.ASSOCIATIONS: ("create_associations",),
    Capability.ACTIVITIES: ("create_activity",),
    Capability.TASKS: ("create_task", "get_tasks", "update_task"),
    Capability.USERS: ("list_users",),
    Capability.BROWSE: (
        "counts",
        "list_records",
        "list_associated",
        "list_activities",
        "list_tasks",
    ),
}


class Entity(enum.StrEnum):
    """The two record types of the contract."""

    CONTACT = "contact"
    COMPANY = "company"

    @property
    def plural(self) -> str:
        return "contacts" if self is Entity.CONTACT else "companies"


# --------------------------------------------------------------------------------------------
# Record types (backend vocabulary)
# --------------------------------------------------------------------------------------------

#: A field value as it travels in JSON.
Value = Any


@dataclass(frozen=True, slots=True)
class MatchKey:
    """One way of finding a record: a normalised key.

    ``name`` identifies the key (``"externalId"``, ``"email"``, ``"linkedinUrl"``, ``"domain"``,
    ``"name"``, ``"phone"``, or any configured key); ``field`` is the backend field that holds
    the un-normalised value (``None`` for the external id), for drivers that search the field
    itself instead of storing normalised keys.
    """

    name: str
    field: str | None = None
    #: The normaliser the values went through (``email``, ``domain``,
    #: ``domain_any_extension``, ``linkedin``, ``name``, ``phone``; ``compound`` for a key of
    #: several fields), for drivers that search stored values in their raw forms; ``None``
    #: when the front does not say (a driver may then go by the key's name).
    normaliser: str | None = None
    #: A compound key's backend fields, in order: its value is a JSON array of their
    #: normalised values (``["ada","lovelace","acme"]``). Empty for a key of one field.
    fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NewRecord:
    """A contact or company to create.

    ``fields`` are in the backend's vocabulary (after field mapping). ``match_keys`` maps each
    match-key name to its normalised value; a driver stores them so that
    :meth:`Backend.find_records` can answer by key.
    """

    external_id: str
    fields: Mapping[str, Value]
    match_keys: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RecordUpdate:
    """A partial update of one record: only ``fields`` change; other fields are untouched.

    ``clear`` names fields to remove (set to null). ``match_keys`` holds the new normalised
    value of every match key whose field is present in the update; ``None`` removes the key.
    """

    crm_id: str
    fields: Mapping[str, Value]
    clear: frozenset[str] = frozenset()
    match_keys: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record as the backend holds it (fields in the backend's vocabulary)."""

    crm_id: str
    external_id: str | None
    fields: Mapping[str, Value]


@dataclass(frozen=True, slots=True)
class ItemResult:
    """The outcome of one item of a batch.

    On success ``crm_id`` is set and ``error`` is ``None``; ``created`` tells whether this call
    made a new record (``False`` when an idempotent create found the existing one). On a
    permanent per-item failure ``error`` holds a :class:`BackendError` (``InvalidRecord``,
    ``NotFound``, ``Conflict``) and ``crm_id`` may be ``None``. ``dropped`` names the fields a
    successful write left out, each with why (``{"industry": "'Technology' is not an option
    ..."}``, in the backend's vocabulary): the record was written, those fields were not.
    """

    crm_id: str | None = None
    error: BackendError | None = None
    created: bool = False
    dropped: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class AssociationPair:
    """A contact → company link, by CRM ids."""

    contact_id: str
    company_id: str


@dataclass(frozen=True, slots=True)
class NewActivity:
    """A campaign activity (email, LinkedIn message, InMail, connection request, other).

    ``idempotency_key`` is set by the front when the activity carries ``metadata.messageId``;
    a driver that sees the same key again returns the first activity instead of storing a new
    one. ``extra`` carries any unknown top-level keys Enginy sent.
    """

    type: str
    direction: str | None = None
    subject: str | None = None
    body: str | None = None
    owner_id: str | None = None
    occurred_at: datetime | None = None
    contact_id: str | None = None
    company_id: str | None = None
    metadata: Mapping[str, Value] = field(default_factory=dict)
    idempotency_key: str | None = None
    extra: Mapping[str, Value] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Activity:
    """A stored activity."""

    id: str
    type: str
    direction: str | None = None
    subject: str | None = None
    body: str | None = None
    owner_id: str | None = None
    occurred_at: datetime | None = None
    contact_id: str | None = None
    company_id: str | None = None
    metadata: Mapping[str, Value] = field(default_factory=dict)
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NewTask:
    """A task to create. ``extra`` carries unknown keys Enginy sent."""

    subject: str
    description: str | None = None
    type: str | None = None
    owner_id: str | None = None
    due_date: datetime | None = None
    contact_id: str | None = None
    company_id: str | None = None
    extra: Mapping[str, Value] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Task:
    """A stored task."""

    id: str
    subject: str
    description: str | None = None
    type: str | None = None
    owner_id: str | None = None
    due_date: datetime | None = None
    contact_id: str | None = None
    company_id: str | None = None
    completed: bool = False
    completed_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


#: Task fields a :class:`TaskChanges` may set (besides completion).
TASK_FIELDS = ("subject", "description", "type", "owner_id", "due_date", "contact_id", "company_id")


@dataclass(frozen=True, slots=True)
class TaskChanges:
    """A partial update of a task.

    ``fields`` maps names from :data:`TASK_FIELDS` to new values. ``completed`` (when not
    ``None``) sets completion: ``True`` with ``completed_at`` stores that time; ``True`` with
    ``completed_at=None`` stores ``now`` unless the task is already completed (then its
    ``completed_at`` is kept, so repeating a completion is idempotent); ``False`` clears
    ``completed_at``. ``now`` is the front's clock, passed in so all drivers agree.
    """

    now: datetime
    fields: Mapping[str, Value] = field(default_factory=dict)
    completed: bool | None = None
    completed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class User:
    """A CRM user or owner, as ``GET /users`` lists it."""

    id: str
    name: str
    email: str | None = None


@dataclass(frozen=True, slots=True)
class SetupReport:
    """What :meth:`Backend.check_setup` found, for ``enginy-adapter check``.

    ``problems`` would stop the service from working as configured (a missing column, a
    missing scope); ``notes`` are information for the operator (the portal, the record-link
    templates, a mapped field that will be dropped).
    """

    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


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
