"""Enginy's Custom CRM wire format: one pydantic type per request and response body.

The types live in :mod:`.types` (shared field types, base classes), :mod:`.records`
(contacts and companies), :mod:`.engagements` (associations, activities, tasks) and
:mod:`.users` (users, health); they are all importable from here.

Names follow the contract exactly (``externalId``, ``crmId``, ``contactCRMId``...; see
``enginy-custom-crm.md`` Part A.1). Python attributes are snake_case; the wire names are aliases.

Requests are validated straight from the raw body bytes (``model_validate_json``), which is the
fast path in pydantic; a batch of records is parsed once and checked by
``adapter.http.endpoints.read_records``, which falls back to its model for any body that is not
plainly a batch (so answers and messages are the model's). Contact and company records are
typed dicts that keep every extra key (A.8): a batch holds a hundred of them, and a typed dict
validates in pydantic's core without building a model object per record. For the same reason
the responses to those batches are typed dicts, serialised by a ``TypeAdapter``. Activities
and tasks also accept unknown keys (in ``model_extra``) and hand them to the driver in
``extra``; the other objects collect theirs. Unknown keys are never taken in silence: the
answer's ``warnings`` names them, and a key that is a near miss of a field is a 400
(``adapter/service/checks.py``).

Identifiers are strings on the wire; a JSON integer is accepted and kept as its decimal text
(Enginy's company ids look numeric), everywhere an id is read; a float or a boolean is a 400.
Datetimes must be ISO 8601 strings and booleans JSON booleans (strict: no epoch numbers, no
``"yes"``).

Datetimes are read as ISO 8601 (an offset-less value is taken as UTC) and always written as UTC
with a ``Z`` suffix, as in every example of the contract.
"""

from __future__ import annotations

from .engagements import (
    ActivityCreated,
    ActivityIn,
    ActivityOut,
    AssociationError,
    AssociationIn,
    AssociationsRequest,
    AssociationsResponse,
    KeyWarning,
    QueuedActivityOut,
    QueuedTaskOut,
    TaskBatchPatch,
    TaskIds,
    TaskIn,
    TaskOut,
    TaskPatch,
    TaskWritten,
)
from .records import (
    CREATE_RESPONSE,
    SYNC_RESPONSE,
    UPDATE_RESPONSE,
    CreateCompaniesRequest,
    CreateContactsRequest,
    CreateError,
    CreateResponse,
    CreateResult,
    FieldWarning,
    RecordIn,
    RecordUpdateIn,
    SyncResponse,
    SyncResult,
    UpdateCompaniesRequest,
    UpdateContactsRequest,
    UpdateResponse,
    UpdateResult,
)
from .types import format_datetime
from .users import HealthOk, UserOut

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
