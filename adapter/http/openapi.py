"""The OpenAPI 3.1 document of the contract, generated from the wire models.

The operation table below is written by hand from ``enginy-custom-crm.md`` (Part A overriding
Part B); the body schemas come from the pydantic models of :mod:`adapter.contract`, so a change
to a model shows up here without an edit. ``tests/test_openapi.py`` checks in CI that every route
of the app is documented and every documented route is served.

Served at ``/openapi.json`` behind the API key, like the rest.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from pydantic import TypeAdapter
from pydantic.json_schema import JsonSchemaMode
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from adapter import contract as c
from adapter.config import Settings

__all__ = ["OPENAPI_PATH", "OPERATIONS", "Operation", "build_openapi", "openapi_endpoint"]

#: Where the document is served (under ``server.root_path``).
OPENAPI_PATH = "/openapi.json"

_REF = "#/components/schemas/{model}"


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
        description="`created` counts the pairs linked now." + _QUEUED.replace(
            "with `queued: true`", "with `queued`: how many pairs were"
        ),
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

_STATUS_TEXT = {
    400: "Malformed JSON, wrong shape, missing required field, a misspelt field, a reference "
    "that names nothing, a number that is not finite, or every record failed",
    401: "Missing or invalid API key",
    404: "Unknown id",
    408: "The body stopped arriving (`server.limits.body_timeout_seconds`)",
    413: "Body larger than `server.max_body_bytes`",
    415: "Body is not JSON",
    501: "The backend does not support this operation",
    503: "Backend unavailable, rate limited or refusing the adapter's credentials, or the "
    "server at its limits (`overloaded`); retry (see Retry-After)",
}


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "title": "Error",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string", "description": "Short machine-readable code"},
            "message": {"type": "string", "description": "Human-readable detail"},
            "requestId": {
                "type": "string",
                "description": "The request's id (also in X-Request-ID): the server log's line "
                "for it has the detail an error body leaves out",
            },
        },
        # Some errors add documented keys (`errors` of a failed batch, `status` of /health).
        "additionalProperties": True,
    }


def _model_schemas() -> tuple[dict[Any, Any], dict[str, Any]]:
    pairs: dict[tuple[type[Any], JsonSchemaMode], None] = {}
    for op in OPERATIONS:
        if op.request is not None:
            pairs[(op.request, "validation")] = None
        models = op.response if isinstance(op.response, list) else [op.response]
        if op.queued is not None:
            models = [*models, op.queued]
        for model in models:
            if isinstance(model, type):
                pairs[(model, "serialization")] = None
    # TypeAdapter rather than models_json_schema: some bodies are typed dicts, not models.
    # (a type is hashable; mypy's stub for the key type variable does not see it)
    inputs = [(cast(Hashable, model), mode, TypeAdapter(model)) for model, mode in pairs]
    refs, defs = TypeAdapter.json_schemas(inputs, ref_template=_REF)
    return refs, defs.get("$defs", {})


def _path_template(path: str) -> list[dict[str, Any]]:
    return [
        {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
        for part in path.split("/")
        if part.startswith("{")
    ]


def build_openapi(settings: Settings | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document for this service's configuration (header name, root path)."""
    header = settings.auth.header if settings is not None else "X-API-Key"
    server_url = "/"
    if settings is not None:
        public = getattr(getattr(settings, "ui", None), "public_base_url", None)
        server_url = public or settings.server.root_path or "/"
    refs, schemas = _model_schemas()
    schemas["Error"] = _error_schema()
    error_ref = {"$ref": _REF.format(model="Error")}

    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs, error_ref)

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Enginy Custom CRM adapter",
            "version": _version(),
            "description": "Enginy's Custom CRM contract as served by enginy-crm-adapter. "
            "Every route needs the API key in the configured header.",
        },
        "servers": [{"url": server_url}],
        "security": [{"apiKey": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": header}},
        },
    }


def _operation(op: Operation, refs: dict[Any, Any], error_ref: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI operation object of one route."""
    responses: dict[str, Any] = {}
    if isinstance(op.response, str):
        ok: dict[str, Any] = {
            "description": "OK",
            "content": {
                op.response: {
                    "schema": (
                        {"type": "object"}
                        if op.response == "application/json"
                        else {"type": "string"}
                    )
                }
            },
        }
    else:
        one = op.response[0] if isinstance(op.response, list) else op.response
        schema: dict[str, Any] = refs[(one, "serialization")]
        if op.queued is not None:
            # anyOf, not oneOf: neither schema forbids the other's keys, so an ordinary answer
            # matches the queued one's schema too and would fail "exactly one".
            schema = {"anyOf": [schema, refs[(op.queued, "serialization")]]}
        if isinstance(op.response, list):
            schema = {"type": "array", "items": schema}
        ok = {"description": "OK", "content": {"application/json": {"schema": schema}}}
    responses["200"] = ok
    # Every operation may meet the server's limits (503 overloaded, server.limits).
    for status in sorted({401, 503, *op.errors}):
        responses[str(status)] = {
            "description": _STATUS_TEXT[status],
            "content": {"application/json": {"schema": error_ref}},
        }
    operation: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "responses": responses,
    }
    if op.description:
        operation["description"] = op.description
    if params := _path_template(op.path):
        operation["parameters"] = params
    if op.request is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(op.request, "validation")]}},
        }
    return operation


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("enginy-crm-adapter")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0.0.0"


def openapi_endpoint(settings: Settings) -> Callable[[Request], Awaitable[Response]]:
    """The ``GET /openapi.json`` endpoint: the document, built on first request."""
    document: dict[str, Any] | None = None

    async def openapi(request: Request) -> Response:
        nonlocal document
        if document is None:
            document = build_openapi(settings)
        return JSONResponse(document)

    return openapi
