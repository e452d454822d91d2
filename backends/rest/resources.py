"""The manifest's resources: contacts and companies (required), associations, activities, tasks
and users (each optional; a group left out is a capability the driver does not declare).

Each operation lists the roots its templates may read; a template reading another root fails
when the configuration loads, with its YAML path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from backends.rest.components import tagged
from backends.rest.customfields import DropUnknown, UnknownFields
from backends.rest.expr import TemplateValue
from backends.rest.finding import FIND_ROOTS, FindStrategy
from backends.rest.paths import check_path
from backends.rest.requests import ListSpec, Operation, RequestSpec, ResponseSpec, check_roots

__all__ = [
    "ACTIVITY_ROOTS",
    "ActivitiesSpec",
    "ActivityShape",
    "AssociationsSpec",
    "BatchSpec",
    "CreateSpec",
    "GetManySpec",
    "IdFormat",
    "ListSpec",
    "RecordResource",
    "RecordShape",
    "TaskShape",
    "TasksSpec",
    "UsersSpec",
    "well_formed",
]

COMMON = {"vars", "now"}
CREATE_ROOTS = COMMON | {"fields", "external_id", "keys", "token"}
BATCH_ROOTS = COMMON | {"records"}
UPDATE_ROOTS = COMMON | {"id", "fields", "current"}
GET_ROOTS = COMMON | {"id"}
GET_MANY_ROOTS = COMMON | {"ids"}
ASSOCIATION_ROOTS = COMMON | {"contact_id", "company_id"}
ACTIVITY_ROOTS = COMMON | {
    "type",
    "direction",
    "subject",
    "body",
    "owner_id",
    "occurred_at",
    "contact_id",
    "company_id",
    "metadata",
    "idempotency_key",
    "extra",
    "token",
}
TASK_ROOTS = COMMON | {
    "subject",
    "description",
    "type",
    "owner_id",
    "due_date",
    "contact_id",
    "company_id",
    "extra",
    "token",
}
TASK_UPDATE_ROOTS = COMMON | {"id", "fields", "completed", "completed_at"}
LIST_ROOTS = COMMON


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_operation(op: Operation | None, roots: set[str], where: str) -> None:
    if op is not None:
        check_roots(op.request.roots(), roots, where)


def _path(value: str | None) -> str | None:
    return None if value is None else check_path(value)


class BatchSpec(_Spec):
    """A native batch create: one call for up to ``max_size`` records (``records`` root: the
    bodies a create of each record alone would send), answered with the created records in
    order at ``response.items``."""

    request: RequestSpec
    response: ResponseSpec = Field(default_factory=ResponseSpec)
    max_size: int = Field(100, ge=1, le=10_000)
    #: ``atomic``: one bad record fails the call (then each record is sent alone);
    #: ``per_item``: each item of the answer says its own outcome (``item_error`` path).
    mode: Literal["atomic", "per_item"] = "atomic"
    item_error: str | None = None

    @field_validator("item_error")
    @classmethod
    def _item_error(cls, value: str | None) -> str | None:
        return _path(value)


class CreateSpec(Operation):
    """``create``: one record, plus the optional native batch."""

    #: A header the API honours as an idempotency key (``Idempotency-Key``): a create
    #: retried with the same key makes one record, so retries need no lookup first.
    idempotency_header: str | None = None
    #: The create is an upsert keyed by the external id (``PUT /contacts/by-external-id/
    #: {external_id}``, Salesforce's ``PATCH .../Enginy_Id__c/{value}``): no look-up first,
    #: and retries are safe. ``created_status``: the answers that mean "made" (not "updated").
    upsert: bool = False
    created_status: list[int] = Field(default_factory=lambda: [201])
    batch: BatchSpec | None = None


class GetManySpec(Operation):
    """``get_many``: records by a list of ids (``ids`` root), ``per_call`` at a time."""

    per_call: int = Field(100, ge=1, le=1000)


IdFormat = Literal["any", "integer", "uuid"]

_ID_PATTERNS = {
    "integer": re.compile(r"^[0-9]{1,18}$"),
    "uuid": re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$"),
}


def well_formed(ids: Sequence[str], id_format: IdFormat) -> list[str]:
    """The ids that can name a record in an API whose ids have ``id_format`` (an API asked
    for ``abc`` among integer ids may answer 500, or a 404 page in HTML)."""
    pattern = _ID_PATTERNS.get(id_format)
    return [i for i in ids if pattern is None or pattern.match(i)]


class RecordShape(_Spec):
    """How a stored record reads."""

    id: str = "id"
    #: What the API's ids look like; other ids name nothing and are never sent.
    id_format: IdFormat = "any"
    #: Creation time, for "the oldest record wins".
    created: str | None = None
    #: Paths never returned as fields (with ``fields: null``).
    exclude: list[str] = Field(default_factory=list)
    #: Fields read through an expression over the ``record`` root instead of their path
    #: (``website: "=record.website | domain"``, ``assigned_to: "=record.assigned_to.0.id"``).
    read: dict[str, TemplateValue] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _read_roots(self) -> RecordShape:
        for name, template in self.read.items():
            check_roots(template.roots(), {"record", "vars"}, f"read.{name}")
        return self

    @field_validator("id", "created")
    @classmethod
    def _paths(cls, value: str | None) -> str | None:
        return _path(value)


class RecordResource(_Spec):
    """``contacts:`` / ``companies:``."""

    #: The API's own fields (record paths) the driver writes and reads; ``null``: any.
    fields: list[str] | None = None
    unknown_fields: tagged(UnknownFields) = Field(  # type: ignore[valid-type]
        default_factory=lambda: DropUnknown(type="drop")
    )
    #: Where Enginy's ``externalId`` is kept (a field the driver writes with every create).
    external_id: str
    #: Match-key name → field where the driver keeps that key's normalised value.
    keys: dict[str, str] = Field(default_factory=dict)
    record: RecordShape = Field(default_factory=RecordShape)
    create: CreateSpec
    get: Operation | None = None
    get_many: GetManySpec | None = None
    update: Operation
    #: Strategies per match key, tried in order; ``externalId`` is required.
    find: dict[str, list[tagged(FindStrategy)]]  # type: ignore[valid-type]
    #: Which record a value held by several gives.
    several: Literal["oldest", "newest", "first"] = "oldest"
    #: A create refused as "already exists" (a ``conflict``) answers with the existing record
    #: found by the record's match keys, instead of failing it.
    adopt_on_conflict: bool = True

    @field_validator("external_id")
    @classmethod
    def _ext(cls, value: str) -> str:
        return check_path(value)

    @field_validator("keys")
    @classmethod
    def _keys(cls, value: dict[str, str]) -> dict[str, str]:
        for path in value.values():
            check_path(path)
        return value

    @model_validator(mode="after")
    def _operations(self) -> RecordResource:
        if "externalId" not in self.find or not self.find["externalId"]:
            raise ValueError(
                "find.externalId is required: creates find the record a lost answer made "
                "by its external id before sending again"
            )
        if self.get is None and self.get_many is None:
            raise ValueError("needs get (one record by {id}) or get_many (by a list of ids)")
        _check_operation(self.create, CREATE_ROOTS, "create.request")
        if self.create.batch is not None:
            check_roots(self.create.batch.request.roots(), BATCH_ROOTS, "create.batch.request")
        _check_operation(self.get, GET_ROOTS, "get.request")
        _check_operation(self.get_many, GET_MANY_ROOTS, "get_many.request")
        _check_operation(self.update, UPDATE_ROOTS, "update.request")
        for key, strategies in self.find.items():
            for index, strategy in enumerate(strategies):
                roots = strategy.request.roots()
                check_roots(roots, FIND_ROOTS | COMMON, f"find.{key}[{index}].request")
        return self


class AssociationsSpec(Operation):
    """``associations``: one call per contact → company pair (a field on the contact, its own
    call, or a link endpoint). ``conflict`` answers mean "already linked"."""

    @model_validator(mode="after")
    def _roots(self) -> AssociationsSpec:
        _check_operation(self, ASSOCIATION_ROOTS, "request")
        return self


class ActivityShape(_Spec):
    """How a stored activity reads (record paths); a path left out reads as the value sent."""

    id: str = "id"
    subject: str | None = None
    body: str | None = None
    occurred_at: str | None = None

    @field_validator("id", "subject", "body", "occurred_at")
    @classmethod
    def _paths(cls, value: str | None) -> str | None:
        return _path(value)


class ActivitiesSpec(_Spec):
    """One route of ``activities``: where activities of ``types`` go (a note, an activity, an
    interaction); the first route whose ``types`` hold the activity's type (or that lists
    none) takes it."""

    types: list[str] | None = None
    create: Operation
    record: ActivityShape = Field(default_factory=ActivityShape)
    #: Finds an activity by the ``token`` its create wrote (the idempotency key, or a random
    #: token without one; sought as ``value``): before a create and after one whose answer
    #: was lost or held no id. Without it, a repeated ``messageId`` logs a second activity.
    find: list[tagged(FindStrategy)] = Field(default_factory=list)  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _roots(self) -> ActivitiesSpec:
        _check_operation(self.create, ACTIVITY_ROOTS, "create.request")
        for index, strategy in enumerate(self.find):
            check_roots(strategy.request.roots(), ACTIVITY_ROOTS | FIND_ROOTS, f"find[{index}]")
            if strategy.match is None:
                raise ValueError(f"find[{index}].match: name the field that holds the token")
        if self.find and "token" not in self.create.request.roots():
            raise ValueError("create.request must write the token (=token) that find looks for")
        return self


class TaskShape(_Spec):
    """How a stored task reads: record paths, or lists of paths (the first present wins:
    ``due_date: [custom_fields.enginy_due_at, due_date]``)."""

    id: str = "id"
    id_format: IdFormat = "any"
    subject: str = "subject"
    description: str | list[str] | None = None
    type: str | list[str] | None = None
    owner_id: str | list[str] | None = None
    due_date: str | list[str] | None = None
    contact_id: str | list[str] | None = None
    company_id: str | list[str] | None = None
    #: The completion field, and the values that mean "completed".
    completed: str = "completed"
    completed_values: list[Any] = Field(default_factory=lambda: [True])
    completed_at: str | list[str] | None = None
    created_at: str | list[str] | None = None
    updated_at: str | list[str] | None = None
    #: Values read through an expression over the ``record`` root instead of a path
    #: (``type: "=record.type | upper"``).
    read: dict[str, TemplateValue] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _read(self) -> TaskShape:
        unknown = sorted(set(self.read) - set(TaskShape.model_fields) - {"read"})
        if unknown:
            raise ValueError(f"read names no task field: {', '.join(unknown)}")
        for name, template in self.read.items():
            check_roots(template.roots(), {"record", "vars"}, f"read.{name}")
        return self

    @field_validator(
        "id",
        "subject",
        "description",
        "type",
        "owner_id",
        "due_date",
        "contact_id",
        "company_id",
        "completed",
        "completed_at",
        "created_at",
        "updated_at",
    )
    @classmethod
    def _paths(cls, value: str | list[str] | None) -> str | list[str] | None:
        for path in [value] if isinstance(value, str) else value or []:
            check_path(path)
        return value


class TasksSpec(_Spec):
    """``tasks``: create, read and update tasks; completion is a field write."""

    create: Operation
    get: Operation | None = None
    get_many: GetManySpec | None = None
    update: Operation
    record: TaskShape = Field(default_factory=TaskShape)
    #: A field the driver fills with a unique token on create: finds the task when the
    #: create's answer holds no id (BottleCRM) or was lost (a retry never duplicates).
    token: str | None = None
    #: Finds a task by its token (``value``); needed with ``token``.
    find: list[tagged(FindStrategy)] = Field(default_factory=list)  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _roots(self) -> TasksSpec:
        if self.get is None and self.get_many is None:
            raise ValueError("needs get (one task by {id}) or get_many (by a list of ids)")
        if self.token is not None and not self.find:
            raise ValueError("token needs find: the strategies that find a task by it")
        _check_operation(self.create, TASK_ROOTS, "create.request")
        _check_operation(self.get, GET_ROOTS, "get.request")
        _check_operation(self.get_many, GET_MANY_ROOTS, "get_many.request")
        _check_operation(self.update, TASK_UPDATE_ROOTS, "update.request")
        for index, strategy in enumerate(self.find):
            check_roots(strategy.request.roots(), FIND_ROOTS | COMMON, f"find[{index}].request")
        return self

    @field_validator("token")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        return _path(value)


class UsersSpec(ListSpec):
    """``users``: the CRM's users (owners), for Enginy's owner selection."""

    id: str = "id"
    name: str | list[str] = "name"
    email: str | None = "email"

    @model_validator(mode="after")
    def _roots(self) -> UsersSpec:
        _check_operation(self, LIST_ROOTS, "request")
        return self
