"""The values that cross the driver interface, in the backend's vocabulary.

What the front hands a driver (:class:`NewRecord`, :class:`RecordUpdate`, :class:`MatchKey`,
:class:`NewActivity`, :class:`NewTask`, :class:`TaskChanges`, :class:`AssociationPair`) and
what it gets back (:class:`StoredRecord`, :class:`ItemResult`, :class:`Activity`,
:class:`Task`, :class:`User`, :class:`SetupReport`). All are frozen dataclasses, except
:class:`FirstMatches`, the bookkeeping of a sync's lookup by several keys in priority order.
Part of the driver interface: :mod:`backends.base` exports every name.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from backends.errors import BackendError

__all__ = [
    "EXTERNAL_ID",
    "TASK_FIELDS",
    "Activity",
    "AssociationPair",
    "Entity",
    "FirstMatches",
    "ItemResult",
    "MatchKey",
    "NewActivity",
    "NewRecord",
    "NewTask",
    "RecordUpdate",
    "SetupReport",
    "StoredRecord",
    "Task",
    "TaskChanges",
    "User",
    "Value",
]

_K = TypeVar("_K")

#: The match-key name under which a record is found by the ``externalId`` Enginy gave it.
EXTERNAL_ID = "externalId"


class Entity(enum.StrEnum):
    """The two record types of the contract."""

    CONTACT = "contact"
    COMPANY = "company"

    @property
    def plural(self) -> str:
        return "contacts" if self is Entity.CONTACT else "companies"


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
    :meth:`~backends.base.Backend.find_records` can answer by key.
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


class FirstMatches:
    """A sync's lookup by several keys in priority order: each item's record is the one found
    by the first key whose value for that item matches.

    ``values[k][i]`` is item ``i``'s normalised value of key ``k`` (``None``: it has none); each
    is read at most once, and only while item ``i`` is still unmatched, so ``values[k]`` may be
    a sequence that normalises on demand. Key by key, :meth:`wanted` gives the values worth
    looking up (those of the items no earlier key matched, each once) and :meth:`take`
    records what that lookup found; the loop stops when every item is matched (:attr:`done`).
    :meth:`Backend.match_records <backends.base.Backend.match_records>` runs it with one
    ``find_records`` per key; a driver that can answer several lookups in one trip runs the
    same loop there::

        matches = FirstMatches(values)
        for key, wanted in matches.rounds(keys):
            matches.take(lookup(key, wanted))  # {value: record}
        return matches.found
    """

    __slots__ = ("_asked", "_pending", "_values", "found")

    def __init__(self, values: Sequence[Sequence[str | None]]) -> None:
        self._values = values
        count = len(values[0]) if values else 0
        self._pending = list(range(count))
        self._asked: dict[int, str] = {}
        #: Per item, in input order: its record, or ``None`` while no key matched it.
        self.found: list[StoredRecord | None] = [None] * count

    @property
    def done(self) -> bool:
        """Every item has its record."""
        return not self._pending

    def rounds(self, keys: Sequence[_K]) -> Iterator[tuple[_K, list[str]]]:
        """``(key, its wanted values)`` for each of ``keys`` in order (given with
        ``values``) that has values to look up, until every item is matched; give each
        round's hits to :meth:`take` before asking for the next."""
        for k, key in enumerate(keys):
            if self.done:
                return
            wanted = self.wanted(k)
            if wanted:
                yield key, wanted

    def wanted(self, k: int) -> list[str]:
        """The values of key ``k`` of the items still unmatched, each once, in item order."""
        column = self._values[k]
        self._asked = asked = {i: v for i in self._pending if (v := column[i]) is not None}
        return list(dict.fromkeys(asked.values()))

    def take(self, hits: Mapping[str, StoredRecord]) -> None:
        """Give each item whose value in the last :meth:`wanted` is in ``hits`` that record."""
        asked, found = self._asked, self.found
        self._asked = {}
        if not hits:
            return
        still: list[int] = []
        for i in self._pending:
            value = asked.get(i)
            record = hits.get(value) if value is not None else None
            if record is None:
                still.append(i)
            else:
                found[i] = record
        self._pending = still


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
    """What :meth:`~backends.base.Backend.check_setup` found, for ``enginy-adapter check``.

    ``problems`` would stop the service from working as configured (a missing column, a
    missing scope); ``notes`` are information for the operator (the portal, the record-link
    templates, a mapped field that will be dropped).
    """

    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
