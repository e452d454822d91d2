"""The documented routes: the contract's 15, then the adapter's operational ones.

Written by hand from ``enginy-custom-crm.md`` (Part A overriding Part B); the body schemas are
the pydantic models of :mod:`adapter.contract`, named here and rendered by
:mod:`adapter.http.openapi`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from adapter import contract as c

__all__ = ["OPERATIONS", "Operation"]


@dataclass(frozen=True)
class Operation:
    """One documented route. ``response`` is a model or typed dict, ``[Model]`` for a bare
    array, or a raw media type (``text/plain``) for the operational routes. ``queued`` is the
    other shape of the answer (of the array's items) when the outbox accepted the write."""

    method: Literal["GET", "POST", "PUT", "PATCH"]
    path: str
    operation_id: str
    summary: str
    tag: str
    response: type[Any] | list[type[Any]] | str
    request: type[Any] | None = None
    errors: tuple[int, ...] = ()
    description: str = ""
    extra_responses: dict[int, str] = field(default_factory=dict)
    queued: type[Any] | None = None


_BODY_ERRORS = (400, 408, 413, 415)
_QUEUED = (
    " With the outbox on (`outbox.enabled`), a write the backend cannot take now (unreachable, "
    "rate-limited, timing out) is queued and answered with `queued: true`; see docs/outbox.md."
)
_BACKEND_ERRORS = (503,)

#: The contract's 15 routes, then the adapter's own operational ones.
OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "GET",
        "/health",
        "health",
        "Check the key and the backend's reachability",
        "connection",
        c.HealthOk,
        errors=(503,),
        description="The backend check is cached for `server.health_cache_seconds` "
        '(A.12). 503 body: `{"status": "unavailable", "error", "message"}`.',
    ),
    Operation(
        "POST",
        "/contacts",
        "createContacts",
        "Create contacts (idempotent on externalId)",
        "contacts",
        c.CreateResponse,
        c.CreateContactsRequest,
        errors=(*_BODY_ERRORS, *_BACKEND_ERRORS),
        description="One `results` entry per record that now exists; permanent per-record "
        "failures in `errors` (200), or 400 with `errors` when every record failed (A.5).",
    ),
    Operation(
        "POST",
        "/contacts/sync",
        "syncContacts",
        "Find existing contacts",
        "contacts",
        c.SyncResponse,
        c.CreateContactsRequest,
        errors=(*_BODY_ERRORS, *_BACKEND_ERRORS),
        description="Only the matches, by externalId then the configured keys (A.7).",
    ),
    Operation(
        "PUT",
        "/contacts",
        "updateContacts",
        "Partially update contacts",
        "contacts",
        c.UpdateResponse,
        c.UpdateContactsRequest,
        errors=(*_BODY_ERRORS, *_BACKEND_ERRORS),
        description="Only the keys present change; an unknown crmId is `success: false`, "
        "`error: not_found` (A.6)." + _QUEUED,
    ),
    Operation(
        "POST",
        "/companies",
        "createCompanies",
        "Create companies (idempotent on externalId)",
        "companies",
        c.CreateResponse,
        c.CreateCompaniesRequest,
        errors=(*_BODY_ERRORS, *_BACKEND_ERRORS),
    ),
    Operation(
        "POST",
        "/companies/sync",
        "syncCompanies",
        "Find existing companies",
        "companies",
        c.SyncResponse,
        c.CreateCompaniesRequest,
        errors=(*_BODY_ERRORS, *_BACKEND_ERRORS),
    ),
    Operation(
        "PUT",
        "/companies",
        "updateCompanies",
        "Partially update companies",
        "companies",
        c.UpdateResponse,
        c.UpdateCompaniesRequest,
        errors=(*_BODY_ERRORS, *_BACKEND_ERRORS),
        description="As PUT /contacts." + _QUEUED,
    ),
    Operation(
        "POST",
        "/associations",
        "createAssociations",
        "Link contacts to companies",
        "associations",
        c.AssociationsResponse,
        c.AssociationsRequest,
        errors=(*_BODY_ERRORS, 501, *_BACKEND_ERRORS),
        description="`created` counts the pairs linked now."
        + _QUEUED.replace("with `queued: true`", "with `queued`: how many pairs were"),
    ),
    Operation(
        "POST",
        "/activities",
        "createActivity",
        "Log a campaign activity",
        "activities",
        c.ActivityCreated,
        c.ActivityIn,
        errors=(*_BODY_ERRORS, 501, *_BACKEND_ERRORS),
        description="Idempotent on (type, direction, metadata.messageId) (A.9). A contactId, "
        "companyId or ownerId that names nothing is a 400 `invalid_reference` naming the "
        "field; keys that are not activity fields are listed in `warnings`." + _QUEUED,
        queued=c.QueuedActivityOut,
    ),
    Operation(
        "POST",
        "/tasks",
        "createTask",
        "Create a task",
        "tasks",
        c.TaskWritten,
        c.TaskIn,
        errors=(*_BODY_ERRORS, 501, *_BACKEND_ERRORS),
        description="A contactId, companyId or ownerId that names nothing is a 400 "
        "`invalid_reference` naming the field; keys that are not task fields are listed in "
        "`warnings`.",
    ),
    Operation(
        "POST",
        "/tasks/batch",
        "getTasks",
        "Get several tasks (unknown ids skipped)",
        "tasks",
        [c.TaskOut],
        c.TaskIds,
        errors=(*_BODY_ERRORS, 501, *_BACKEND_ERRORS),
    ),
    Operation(
        "PATCH",
        "/tasks/batch",
        "completeTasks",
        "Complete or reopen several tasks",
        "tasks",
        [c.TaskOut],
        c.TaskBatchPatch,
        errors=(*_BODY_ERRORS, 501, *_BACKEND_ERRORS),
        description=_QUEUED.strip(),
        queued=c.QueuedTaskOut,
    ),
    Operation(
        "GET",
        "/tasks/{taskId}",
        "getTask",
        "Get one task",
        "tasks",
        c.TaskOut,
        errors=(404, 501, *_BACKEND_ERRORS),
    ),
    Operation(
        "PATCH",
        "/tasks/{taskId}",
        "updateTask",
        "Update or complete one task",
        "tasks",
        c.TaskWritten,
        c.TaskPatch,
        errors=(*_BODY_ERRORS, 404, 501, *_BACKEND_ERRORS),
        description="Completing sets `completedAt` (the request's value, else now); "
        "un-completing clears it (A.10). 404 only for the task in the path: a contactId, "
        "companyId or ownerId that names nothing is a 400 `invalid_reference`." + _QUEUED,
        queued=c.QueuedTaskOut,
    ),
    Operation(
        "GET",
        "/users",
        "listUsers",
        "List CRM users/owners",
        "users",
        [c.UserOut],
        errors=(501, *_BACKEND_ERRORS),
        description="501 `not_implemented` when neither the backend nor the "
        "configuration lists users, so Enginy turns owner selection off (A.11).",
    ),
    # -- the adapter's own ---------------------------------------------------------------------
    Operation("GET", "/openapi.json", "openapi", "This document", "operations", "application/json"),
    Operation(
        "GET",
        "/metrics",
        "metrics",
        "Prometheus metrics",
        "operations",
        "text/plain",
        description="Absent when `observability.metrics.listen` serves them on a "
        "separate address, or when metrics are disabled.",
    ),
)
