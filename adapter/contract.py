"""Enginy's Custom CRM wire format: one pydantic type per request and response body.

Names follow the contract exactly (``externalId``, ``crmId``, ``contactCRMId``...; see
``enginy-custom-crm.md`` Part A.1). Python attributes are snake_case; the wire names are aliases.

Requests are validated straight from the raw body bytes (``model_validate_json``), which is the
fast path in pydantic. Contact and company records are typed dicts that keep every extra key
(A.8): a batch holds a hundred of them, and a typed dict validates in pydantic's core without
building a model object per record. For the same reason the responses to those batches are
typed dicts, serialised by a ``TypeAdapter``. Activities and tasks also accept unknown keys (in
``model_extra``) and hand them to the driver in ``extra``; the other objects collect theirs.
Unknown keys are never taken in silence: the answer's ``warnings`` names them, and a key that is
a near miss of a field is a 400 (``adapter/service/checks.py``).

Identifiers are strings on the wire; a JSON integer is accepted and kept as its decimal text
(Enginy's company ids look numeric), everywhere an id is read; a float or a boolean is a 400.
Datetimes must be ISO 8601 strings and booleans JSON booleans (strict: no epoch numbers, no
``"yes"``).

Datetimes are read as ISO 8601 (an offset-less value is taken as UTC) and always written as UTC
with a ``Z`` suffix, as in every example of the contract.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, NotRequired, Required

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
    StringConstraints,
    TypeAdapter,
)
from pydantic.alias_generators import to_camel
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

__all__ = [
    "CREATE_RESPONSE",
    "SYNC_RESPONSE",
    "UPDATE_RESPONSE",
    "ActivityCreated",
    "ActivityIn",
    "ActivityOut",
    "AssociationError",
    "AssociationIn",
    "AssociationsRequest",
    "AssociationsResponse",
    "CreateCompaniesRequest",
    "CreateContactsRequest",
    "CreateError",
    "CreateResponse",
    "CreateResult",
    "FieldWarning",
    "HealthOk",
    "KeyWarning",
    "QueuedActivityOut",
    "QueuedTaskOut",
    "RecordIn",
    "RecordUpdateIn",
    "SyncResponse",
    "SyncResult",
    "TaskBatchPatch",
    "TaskIds",
    "TaskIn",
    "TaskOut",
    "TaskPatch",
    "TaskWritten",
    "UpdateCompaniesRequest",
    "UpdateContactsRequest",
    "UpdateResponse",
    "UpdateResult",
    "UserOut",
    "format_datetime",
]


# --------------------------------------------------------------------------------------------
# Shared field types
# --------------------------------------------------------------------------------------------


def _as_utc(value: datetime) -> datetime:
    # Enginy's examples are all UTC; a value without an offset is read as UTC rather than as
    # the server's local time, which would shift it by the host's timezone.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00+10:00 has no UTC equivalent; a ValueError makes it a 400.
        raise ValueError("datetime out of range") from None


def format_datetime(value: datetime) -> str:
    """Render ``value`` as ISO 8601 in UTC with a ``Z`` suffix (milliseconds when present)."""
    value = _as_utc(value)
    spec = "milliseconds" if value.microsecond else "seconds"
    return value.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


#: A datetime read from an ISO 8601 string only (naive = UTC) and written as ``...Z``. Strict:
#: pydantic would otherwise read a JSON number as seconds since the epoch (``5`` → 1970).
UtcDateTime = Annotated[
    datetime, Strict(), AfterValidator(_as_utc), PlainSerializer(format_datetime, return_type=str)
]
#: A JSON boolean only (lax mode would take ``"yes"``, ``"on"`` or ``1`` as true).
Bool = Annotated[bool, Strict()]

if TYPE_CHECKING:
    Ident = str
    OptIdent = str
else:
    #: An identifier: a non-empty string, or a JSON integer kept as its decimal text (Enginy's
    #: company ids look numeric). Not a float, not a boolean: ``1.0`` or ``true`` is a 400. The
    #: schema says ``anyOf: [string, integer]``, as the server reads it.
    #: ``left_to_right``: a string (the usual case) is settled by the first branch, which costs
    #: less than pydantic's "smart" union on a batch of a hundred records.
    Ident = Annotated[
        Annotated[str, StringConstraints(min_length=1), Strict()]
        | Annotated[int, Strict(), AfterValidator(str)],
        Field(union_mode="left_to_right"),
    ]
    #: An optional reference to a record or owner (``contactId``, ``ownerId``...): any string, or
    #: a JSON integer kept as its decimal text.
    OptIdent = Annotated[
        Annotated[str, Strict()] | Annotated[int, Strict(), AfterValidator(str)],
        Field(union_mode="left_to_right"),
    ]

#: The characters Unicode calls White_Space, listed one by one: ``\S`` differs between regex
#: dialects (U+0085 and U+001C..U+001F are spaces to Python, not to ECMAScript; U+FEFF the
#: reverse), and the same pattern is both the server's check and the published schema.
_NON_SPACE = r"[^\x09-\x0d\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
#: A required non-blank string (``type`` of an activity, ``subject`` of a task).
NonBlank = Annotated[
    str, StringConstraints(strip_whitespace=False, min_length=1, pattern=_NON_SPACE)
]


class _Wire(BaseModel):
    """Base of every wire model: camelCase aliases, names accepted either way."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


class _Open(_Wire):
    """A wire object that keeps unknown keys (in ``model_extra``).

    Only the wire names are recognised here: a custom field that happens to be spelt like a
    Python attribute (``external_id``) stays a field instead of being taken as the envelope.
    """

    model_config = ConfigDict(extra="allow", validate_by_name=False)


class _Closed(_Wire):
    """A wire object that ignores unknown keys."""

    model_config = ConfigDict(extra="ignore")


class _Reported(_Wire):
    """A wire object whose unknown keys are collected (in ``model_extra``) to be reported back,
    or refused when they are a near miss of a field (``adapter/service/checks.py``); the driver
    never sees them."""

    model_config = ConfigDict(extra="allow")


class _Ids(_Reported):
    """A wire object holding identifiers (which may arrive as JSON integers)."""


# --------------------------------------------------------------------------------------------
# Contacts and companies
# --------------------------------------------------------------------------------------------


class RecordIn(TypedDict, total=False):
    """A contact or company on create or sync: ``externalId`` plus any fields, kept as sent."""

    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]

    externalId: Required[Ident]


class CreateContactsRequest(_Closed):
    """``POST /contacts`` and ``POST /contacts/sync``."""

    contacts: list[RecordIn]


class CreateCompaniesRequest(_Closed):
    """``POST /companies`` and ``POST /companies/sync``."""

    companies: list[RecordIn]


class RecordUpdateIn(TypedDict, total=False):
    """A contact or company on update: ``crmId`` plus the fields to change (A.6)."""

    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]

    crmId: Required[Ident]


class UpdateContactsRequest(_Closed):
    """``PUT /contacts``."""

    contacts: list[RecordUpdateIn]


class UpdateCompaniesRequest(_Closed):
    """``PUT /companies``."""

    companies: list[RecordUpdateIn]


# The responses about record batches are typed dicts too, keyed by their wire names: the
# service builds plain dicts and pydantic serialises them straight to JSON (the adapters
# below), where a model object per record cost as much to build as to serialise.


class CreateResult(TypedDict):
    externalId: str
    crmId: str


class CreateError(TypedDict):
    """A record of a create batch that failed for a permanent reason (A.5)."""

    externalId: str
    error: str
    message: str


class FieldWarning(TypedDict):
    """A field the backend did not write although its record was written (an enumeration
    value with no matching option, a field with no property under a ``drop`` policy).
    ``externalId`` on creates, ``crmId`` on updates; ``field`` is Enginy's name."""

    externalId: NotRequired[str]
    crmId: NotRequired[str]
    field: str
    message: str


class CreateResponse(TypedDict):
    """``{"results": [...], "errors": [...], "warnings": [...]}``; ``errors`` and ``warnings``
    are left out when empty (extra top-level keys are allowed, A.1)."""

    results: list[CreateResult]
    errors: NotRequired[list[CreateError]]
    warnings: NotRequired[list[FieldWarning]]


class SyncResult(TypedDict):
    externalId: str
    crmId: str
    properties: dict[str, Any]


class SyncResponse(TypedDict):
    """Only the matches (A.7)."""

    results: list[SyncResult]


class UpdateResult(TypedDict):
    """``error`` and ``message`` only when ``success`` is false; ``queued: true`` when the
    update was accepted into the outbox, to be applied once the backend takes it."""

    crmId: str
    success: bool
    error: NotRequired[str]
    message: NotRequired[str]
    queued: NotRequired[bool]


class UpdateResponse(TypedDict):
    """``warnings`` (fields not written, see :class:`FieldWarning`) only when there are some."""

    results: list[UpdateResult]
    warnings: NotRequired[list[FieldWarning]]


#: Serialisers of the typed-dict responses, built once.
CREATE_RESPONSE: TypeAdapter[CreateResponse] = TypeAdapter(CreateResponse)
SYNC_RESPONSE: TypeAdapter[SyncResponse] = TypeAdapter(SyncResponse)
UPDATE_RESPONSE: TypeAdapter[UpdateResponse] = TypeAdapter(UpdateResponse)


# --------------------------------------------------------------------------------------------
# Associations
# --------------------------------------------------------------------------------------------


class AssociationIn(_Ids):
    """One pair to link; unknown keys are reported in the answer's ``warnings``."""

    contact_crm_id: Ident = Field(alias="contactCRMId")
    company_crm_id: Ident = Field(alias="companyCRMId")


class AssociationsRequest(_Closed):
    """``POST /associations``."""

    associations: list[AssociationIn]


class AssociationError(_Closed):
    contact_crm_id: str = Field(alias="contactCRMId")
    company_crm_id: str = Field(alias="companyCRMId")
    error: str
    message: str


class KeyWarning(TypedDict):
    """A key of the request that is not a field of the contract: reported back rather than
    ignored (or kept) in silence. ``field`` is where it was (``associations[2].note``)."""

    field: str
    message: str


class AssociationsResponse(_Closed):
    """``{"success", "created", "errors"?, "queued"?, "warnings"?}``; ``created`` counts the
    pairs that succeeded, ``queued`` those accepted into the outbox (created once the backend
    takes them)."""

    success: bool
    created: int
    errors: list[AssociationError] | None = None
    queued: int | None = None
    warnings: list[KeyWarning] | None = None


# --------------------------------------------------------------------------------------------
# Activities
# --------------------------------------------------------------------------------------------


class ActivityIn(_Open):
    """``POST /activities``: ``type`` required and non-blank (A.9); unknown keys kept."""

    type: NonBlank
    direction: str | None = None
    subject: str | None = None
    body: str | None = None
    owner_id: OptIdent | None = None
    occurred_at: UtcDateTime | None = None
    contact_id: OptIdent | None = None
    company_id: OptIdent | None = None
    metadata: dict[str, Any] | None = None


class ActivityOut(_Closed):
    """The stored activity, as ``POST /activities`` returns it."""

    id: str
    type: str
    subject: str | None = None
    body: str | None = None
    direction: str | None = None
    owner_id: str | None = None
    occurred_at: UtcDateTime | None = None
    contact_id: str | None = None
    company_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: UtcDateTime | None = None


class ActivityCreated(ActivityOut):
    """What ``POST /activities`` answers: the stored activity, plus ``warnings`` naming the
    request's keys that are not activity fields (only when there are some)."""

    warnings: list[KeyWarning] | None = None


class QueuedActivityOut(ActivityCreated):
    """An activity accepted into the outbox: the values as they will be stored, ``queued:
    true``, no ``createdAt`` yet, and for ``id`` the queue's receipt (``queued-<uid>``): the
    CRM's own id does not exist until the activity is delivered."""

    queued: bool = True


# --------------------------------------------------------------------------------------------
# Tasks
# --------------------------------------------------------------------------------------------


class TaskIn(_Open):
    """``POST /tasks``: ``subject`` required and non-blank (A.10); unknown keys kept."""

    subject: NonBlank
    description: str | None = None
    type: str | None = None
    owner_id: OptIdent | None = None
    due_date: UtcDateTime | None = None
    contact_id: OptIdent | None = None
    company_id: OptIdent | None = None
    #: Created already completed (A.10, as on PATCH): at ``completedAt``, else now.
    completed: Bool | None = None
    completed_at: UtcDateTime | None = None


class TaskPatch(_Reported):
    """``PATCH /tasks/:id``: a partial update; only the keys sent change (A.10). Unknown keys
    are reported in the answer's ``warnings``."""

    completed: Bool | None = None
    completed_at: UtcDateTime | None = None
    subject: NonBlank | None = None
    description: str | None = None
    type: str | None = None
    owner_id: OptIdent | None = None
    due_date: UtcDateTime | None = None
    contact_id: OptIdent | None = None
    company_id: OptIdent | None = None


class TaskIds(_Ids):
    """``POST /tasks/batch``: ``{"ids": [...]}``."""

    ids: list[Ident]


class TaskBatchPatch(_Ids):
    """``PATCH /tasks/batch``: ``{"ids": [...], "completed": bool, "completedAt"?}``."""

    ids: list[Ident]
    completed: Bool
    completed_at: UtcDateTime | None = None


class TaskOut(_Closed):
    """A task as every task route returns it; ``completedAt`` is null until completed."""

    id: str
    subject: str
    description: str | None = None
    type: str | None = None
    owner_id: str | None = None
    due_date: UtcDateTime | None = None
    contact_id: str | None = None
    company_id: str | None = None
    completed: bool = False
    completed_at: UtcDateTime | None = None
    created_at: UtcDateTime | None = None
    updated_at: UtcDateTime | None = None


class TaskWritten(TaskOut):
    """What ``POST /tasks`` and ``PATCH /tasks/:id`` answer: the task, plus ``warnings``
    naming the request's keys that are not task fields (only when there are some)."""

    warnings: list[KeyWarning] | None = None


class QueuedTaskOut(_Closed):
    """A task update accepted into the outbox, rendered with ``exclude_unset``: ``id``, the
    fields the update sets, the completion it will store, and ``queued: true``. What the
    adapter could not read (the backend is down) is left out, never invented. ``warnings``
    as on :class:`TaskWritten`."""

    id: str
    subject: str | None = None
    description: str | None = None
    type: str | None = None
    owner_id: str | None = None
    due_date: UtcDateTime | None = None
    contact_id: str | None = None
    company_id: str | None = None
    completed: bool | None = None
    completed_at: UtcDateTime | None = None
    queued: bool = True
    warnings: list[KeyWarning] | None = None


# --------------------------------------------------------------------------------------------
# Users and health
# --------------------------------------------------------------------------------------------


class UserOut(_Closed):
    id: str
    name: str
    email: str | None = None


class HealthOk(_Closed):
    status: str = "ok"
