"""Contacts and companies on the wire: the batch requests and their answers (A.4-A.8).

Records are typed dicts that keep every extra key (A.8): a batch holds a hundred of them, and a
typed dict validates in pydantic's core without building a model object per record. For the
same reason the responses to those batches are typed dicts, serialised by a ``TypeAdapter``.
"""

from __future__ import annotations

from typing import Any, NotRequired, Required

from pydantic import ConfigDict, TypeAdapter
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from .types import Ident, _Closed

__all__ = [
    "CREATE_RESPONSE",
    "SYNC_RESPONSE",
    "UPDATE_RESPONSE",
    "CreateCompaniesRequest",
    "CreateContactsRequest",
    "CreateError",
    "CreateResponse",
    "CreateResult",
    "FieldWarning",
    "RecordIn",
    "RecordUpdateIn",
    "SyncResponse",
    "SyncResult",
    "UpdateCompaniesRequest",
    "UpdateContactsRequest",
    "UpdateResponse",
    "UpdateResult",
]


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
