"""The OpenAPI 3.1 document of the contract, generated from the wire models.

The operation table (:mod:`adapter.http.openapi_operations`) is written by hand from
``enginy-custom-crm.md`` (Part A overriding Part B); the body schemas come from the pydantic
models of :mod:`adapter.contract`, so a change to a model shows up here without an edit.
``tests/test_openapi.py`` checks in CI that every route of the app is documented and every
documented route is served.

Served at ``/openapi.json`` behind the API key, like the rest.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any, cast

from pydantic import TypeAdapter
from pydantic.json_schema import JsonSchemaMode
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from adapter.config import Settings
from adapter.http.openapi_operations import OPERATIONS, Operation

__all__ = ["OPENAPI_PATH", "OPERATIONS", "Operation", "build_openapi", "openapi_endpoint"]

#: Where the document is served (under ``server.root_path``).
OPENAPI_PATH = "/openapi.json"

_REF = "#/components/schemas/{model}"

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
