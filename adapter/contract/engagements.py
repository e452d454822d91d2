"""Associations, activities and tasks on the wire (A.9, A.10), and the warnings that name a
request's keys that are not fields of the contract.

Activities and tasks accept unknown keys (in ``model_extra``) and hand them to the driver in
``extra``; the other objects collect theirs to report them back.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from .types import Bool, Ident, NonBlank, OptIdent, UtcDateTime, _Closed, _Ids, _Open, _Reported

__all__ = [
    "ActivityCreated",
    "ActivityIn",
    "ActivityOut",
    "AssociationError",
    "AssociationIn",
    "AssociationsRequest",
    "AssociationsResponse",
    "KeyWarning",
    "QueuedActivityOut",
    "QueuedTaskOut",
    "TaskBatchPatch",
    "TaskIds",
    "TaskIn",
    "TaskOut",
    "TaskPatch",
    "TaskWritten",
]


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
