"""The HTTP side of each route: read and validate the body, call the service, render JSON.

Kept apart from ``app.py`` (which is only the route table and the lifespan) and from
``adapter/service/`` (which knows nothing of HTTP). There is no ``try/except`` for driver
errors here: they propagate to the handlers of ``adapter.errors``.

The hot path is lean on purpose: the body is read once with a size limit, validated from the
raw bytes by pydantic (``model_validate_json``), and the response is serialised by pydantic
straight to bytes.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import from_json
from starlette.requests import Request
from starlette.responses import Response

from adapter.contract import (
    CREATE_RESPONSE,
    SYNC_RESPONSE,
    UPDATE_RESPONSE,
    ActivityIn,
    ActivityOut,
    AssociationsRequest,
    CreateCompaniesRequest,
    CreateContactsRequest,
    HealthOk,
    QueuedTaskOut,
    RecordIn,
    TaskBatchPatch,
    TaskIds,
    TaskIn,
    TaskOut,
    TaskPatch,
    UpdateCompaniesRequest,
    UpdateContactsRequest,
    UserOut,
)
from adapter.errors import (
    BadRequest,
    InvalidJson,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from adapter.service import Service
from backends.base import Entity

__all__ = ["Endpoints", "read_json", "read_records"]

M = TypeVar("M", bound=BaseModel)

_TASK_LIST = TypeAdapter(list[TaskOut])
_UPDATED_TASKS = TypeAdapter(list[TaskOut | QueuedTaskOut])
_USER_LIST = TypeAdapter(list[UserOut])
_HEALTH_OK = HealthOk().model_dump_json().encode()
_JSON = "application/json"


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == _JSON or (media.startswith("application/") and media.endswith("+json"))


async def read_json(request: Request, model: type[M], max_bytes: int) -> M:
    """Read the body (415 unless JSON, 413 over ``max_bytes``) and validate it (400)."""
    body = await _read_body(request, max_bytes)
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc) from None


async def read_records(
    request: Request, model: type[CreateContactsRequest | CreateCompaniesRequest], max_bytes: int
) -> list[RecordIn]:
    """The records of a create or sync body (``contacts`` or ``companies``), as
    :func:`read_json` with ``model`` would give them.

    A batch of a hundred records is parsed once into plain objects and each record's
    ``externalId`` checked here, a record being a dict kept as sent with ``externalId`` put
    first (as the model orders it). Any body that is not plainly such a batch (a missing list,
    a record that is not an object, an id that is not a non-empty string) is validated by the
    model instead, which then answers with its usual messages (or its usual result: an id sent
    as an integer).
    """
    body = await _read_body(request, max_bytes)
    field = "contacts" if model is CreateContactsRequest else "companies"
    try:
        parsed = from_json(body)
    except ValueError:
        parsed = None
    items = parsed.get(field) if type(parsed) is dict else None
    if type(items) is list:
        records: list[RecordIn] = []
        for item in items:
            if type(item) is not dict:
                break
            ext = item.get("externalId")
            if type(ext) is not str or not ext:
                break
            records.append({"externalId": ext, **item})  # type: ignore[typeddict-item]
        else:
            return records
    try:
        validated = model.model_validate_json(body)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc) from None
    return (
        validated.contacts
        if isinstance(validated, CreateContactsRequest)
        else (validated.companies)
    )


async def _read_body(request: Request, max_bytes: int) -> bytes:
    """The body's bytes: 415 unless JSON, 413 over ``max_bytes``, 400 for a JSON with
    ``NaN`` or ``Infinity``."""
    headers = request.headers
    if not _is_json(headers.get("content-type")):
        raise UnsupportedMediaType("the body must be JSON (Content-Type: application/json)")
    declared = headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest("invalid Content-Length header")
        if int(declared) > max_bytes:
            raise PayloadTooLarge(f"the body is larger than the limit of {max_bytes} bytes")
    # Enforced while streaming too: a chunked body has no Content-Length to trust.
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"the body is larger than the limit of {max_bytes} bytes")
        chunks.append(chunk)
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if b"NaN" in body or b"Infinity" in body:
        _reject_non_standard_numbers(body)
    return body


def _no_constant(name: str) -> Any:
    raise InvalidJson(f"malformed JSON body: {name} is not a JSON value")


def _reject_non_standard_numbers(body: bytes) -> None:
    # pydantic's parser reads NaN, Infinity and -Infinity, which JSON does not have (RFC 8259):
    # they would be stored as "NaN" in an id or as null in a custom field. The bytes test in
    # read_json is the cheap filter; this parse tells such a token from the same letters
    # inside a string. A body json cannot parse (or too deeply nested for it) is left to
    # pydantic's message.
    with contextlib.suppress(ValueError, RecursionError):
        json.loads(body, parse_constant=_no_constant)


def _json(content: bytes, status: int = 200) -> Response:
    return Response(content, status_code=status, media_type=_JSON)


def _model(model: BaseModel) -> Response:
    # exclude_none: optional keys (``errors`` of an associations answer) are left out.
    return _json(model.model_dump_json(exclude_none=True).encode())


def _whole(model: ActivityOut | TaskOut) -> Response:
    # Not exclude_none: a stored activity or task is shown whole, nulls included; only the
    # ``warnings`` of an answer to a write are left out when there are none.
    exclude = None if getattr(model, "warnings", None) else {"warnings"}
    return _json(model.model_dump_json(exclude=exclude).encode())


class Endpoints:
    """One Starlette endpoint per contract route, bound to a :class:`Service`."""

    def __init__(self, service: Service, max_body_bytes: int) -> None:
        self.service = service
        self.max_body_bytes = max_body_bytes

    async def health(self, request: Request) -> Response:
        await self.service.check_health()
        return _json(_HEALTH_OK)

    # -- contacts -----------------------------------------------------------------------------

    async def create_contacts(self, request: Request) -> Response:
        records = await read_records(request, CreateContactsRequest, self.max_body_bytes)
        response = await self.service.create_records(Entity.CONTACT, records)
        return _json(CREATE_RESPONSE.dump_json(response))

    async def sync_contacts(self, request: Request) -> Response:
        records = await read_records(request, CreateContactsRequest, self.max_body_bytes)
        response = await self.service.sync_records(Entity.CONTACT, records)
        return _json(SYNC_RESPONSE.dump_json(response))

    async def update_contacts(self, request: Request) -> Response:
        body = await read_json(request, UpdateContactsRequest, self.max_body_bytes)
        response = await self.service.update_records(Entity.CONTACT, body.contacts)
        return _json(UPDATE_RESPONSE.dump_json(response))

    # -- companies ----------------------------------------------------------------------------

    async def create_companies(self, request: Request) -> Response:
        records = await read_records(request, CreateCompaniesRequest, self.max_body_bytes)
        response = await self.service.create_records(Entity.COMPANY, records)
        return _json(CREATE_RESPONSE.dump_json(response))

    async def sync_companies(self, request: Request) -> Response:
        records = await read_records(request, CreateCompaniesRequest, self.max_body_bytes)
        response = await self.service.sync_records(Entity.COMPANY, records)
        return _json(SYNC_RESPONSE.dump_json(response))

    async def update_companies(self, request: Request) -> Response:
        body = await read_json(request, UpdateCompaniesRequest, self.max_body_bytes)
        response = await self.service.update_records(Entity.COMPANY, body.companies)
        return _json(UPDATE_RESPONSE.dump_json(response))

    # -- associations and activities ----------------------------------------------------------

    async def create_associations(self, request: Request) -> Response:
        body = await read_json(request, AssociationsRequest, self.max_body_bytes)
        return _model(await self.service.create_associations(body.associations))

    async def create_activity(self, request: Request) -> Response:
        body = await read_json(request, ActivityIn, self.max_body_bytes)
        return _whole(await self.service.create_activity(body))

    # -- tasks --------------------------------------------------------------------------------

    async def create_task(self, request: Request) -> Response:
        body = await read_json(request, TaskIn, self.max_body_bytes)
        return _whole(await self.service.create_task(body))

    async def get_task(self, request: Request) -> Response:
        return _whole(await self.service.get_task(request.path_params["task_id"]))

    async def update_task(self, request: Request) -> Response:
        body = await read_json(request, TaskPatch, self.max_body_bytes)
        task = await self.service.update_task(request.path_params["task_id"], body)
        if isinstance(task, QueuedTaskOut):
            # A queued update shows only what it knows; a task is shown whole.
            return _json(task.model_dump_json(exclude_unset=True).encode())
        return _whole(task)

    async def get_tasks(self, request: Request) -> Response:
        body = await read_json(request, TaskIds, self.max_body_bytes)
        return _json(_TASK_LIST.dump_json(await self.service.read_tasks(body)))

    async def update_tasks(self, request: Request) -> Response:
        body = await read_json(request, TaskBatchPatch, self.max_body_bytes)
        tasks = await self.service.update_tasks(body)
        if any(isinstance(t, QueuedTaskOut) for t in tasks):
            # Tasks read back are built with every field set, so only the queued ones lose
            # the keys they do not know.
            return _json(_UPDATED_TASKS.dump_json(tasks, exclude_unset=True))
        return _json(_UPDATED_TASKS.dump_json(tasks))

    # -- users --------------------------------------------------------------------------------

    async def list_users(self, request: Request) -> Response:
        users = await self.service.list_users()
        return _json(_USER_LIST.dump_json(users, exclude_none=True))
