"""The REST driver's manifest: ``backend.options`` for ``driver: rest``, validated at load.

Shape (``docs/rest.md`` documents every key; ``examples/rest/*.yaml`` are complete presets)::

    base_url, headers, verify_tls, timeouts, budget_seconds, max_attempts, concurrency
    auth:           {type: bearer | api_key | basic | oauth2_* | none, ...}
    rate_limit:     {requests, per_seconds, remaining_header, limit_header, redis_url}
    errors:         {message: [paths], rules: [...], retry_after: {...}}
    dry_run:        false
    vars, tables:   constants and lookup tables the templates read
    custom_fields:  {list, define, ...}         (for unknown_fields: {type: defined})
    contacts, companies:                        (required)
    associations, activities, tasks, users:     (optional: left out, not declared)
    health:         the request ``ping`` sends

Every error is reported with its YAML path (``backend.options.contacts.find.email[0].request:
reads fields, which this operation does not provide``) and never with a configured value.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from backends.base import DriverOptions
from backends.http import RateLimitOptions
from backends.rest.auth import AuthSpec, NoAuth
from backends.rest.components import tagged
from backends.rest.customfields import CustomFieldsApi, DefinedUnknown
from backends.rest.errors import ErrorsSpec
from backends.rest.requests import Operation, check_roots
from backends.rest.resources import (
    ActivitiesSpec,
    AssociationsSpec,
    RecordResource,
    TasksSpec,
    UsersSpec,
)

__all__ = ["RestOptions", "RestRateLimit", "Timeouts"]


class Timeouts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    connect: float = Field(default=5.0, gt=0)
    read: float = Field(default=30.0, gt=0)
    write: float = Field(default=30.0, gt=0)
    pool: float = Field(default=10.0, gt=0)


class RestRateLimit(RateLimitOptions):
    """``rate_limit``: the client-side budget (per process, or shared in Redis with
    ``redis_url``) and the headers in which the API says how much is left."""

    #: Calls per ``per_seconds`` (none: no client-side limit, only the server's 429s).
    requests: int | None = Field(default=None, ge=1)
    per_seconds: float = Field(default=1.0, gt=0)
    remaining_header: str | None = None
    limit_header: str | None = None


class RestOptions(DriverOptions):
    """Options (the manifest) of :class:`backends.rest.RestBackend`."""

    base_url: str
    auth: tagged(AuthSpec) = Field(default_factory=lambda: NoAuth(type="none"))  # type: ignore[valid-type]
    #: Headers sent with every call (constants).
    headers: dict[str, str] = Field(default_factory=dict)
    #: Verify the server's TLS certificate (``true``), or the path of a CA bundle to verify it
    #: with. ``false`` only for a test server.
    verify_tls: bool | str = True
    timeouts: Timeouts = Timeouts()
    #: Total time one Enginy request may spend in the CRM, retries and waits included.
    budget_seconds: float = Field(default=25.0, gt=0)
    #: Attempts per call (first included).
    max_attempts: int = Field(4, ge=1, le=20)
    #: Calls in flight at once for one batch without a native batch endpoint.
    concurrency: int = Field(4, ge=1, le=64)
    max_connections: int = Field(20, ge=1)
    rate_limit: RestRateLimit = RestRateLimit()
    errors: ErrorsSpec = Field(default_factory=ErrorsSpec)
    #: Before a call naming contacts or companies (an association, an activity, a task),
    #: check that they exist: many APIs accept a dangling id silently.
    verify_links: bool = True
    #: Send nothing: log each request that would be sent (secrets masked) and answer as if it
    #: had succeeded, with ids starting ``dry-run-``.
    dry_run: bool = False
    #: Constants the templates read as ``vars.<name>``.
    vars: dict[str, Any] = Field(default_factory=dict)
    #: Lookup tables for ``map(<table>)`` (activity types, task statuses...).
    tables: dict[str, dict[str, Any]] = Field(default_factory=dict)
    custom_fields: CustomFieldsApi | None = None
    #: Driver-owned custom fields to define at start-up, per ``target`` (the external id and
    #: key fields): ``{Contact: [{key: enginy_id, label: Enginy ID, filterable: true}]}``.
    own_fields: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    contacts: RecordResource
    companies: RecordResource
    associations: AssociationsSpec | None = None
    #: One route, or a list of routes by activity type.
    activities: list[ActivitiesSpec] | None = None
    tasks: TasksSpec | None = None
    users: UsersSpec | None = None
    #: The request ``ping`` sends (default: the contacts' first externalId lookup).
    health: Operation | None = None

    @field_validator("activities", mode="before")
    @classmethod
    def _one_route(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with https:// (or http:// for a server on this host)")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _cross_checks(self) -> RestOptions:
        for name in ("contacts", "companies"):
            resource: RecordResource = getattr(self, name)
            if isinstance(resource.unknown_fields, DefinedUnknown) and self.custom_fields is None:
                raise ValueError(
                    f"{name}.unknown_fields is 'defined': the custom_fields section (how the "
                    "CRM lists and defines its custom fields) is required"
                )
        unknown = sorted(self._tables_used() - set(self.tables))
        if unknown:
            raise ValueError(f"map() names tables that are not in tables: {', '.join(unknown)}")
        if self.health is not None:
            check_roots(self.health.request.roots(), {"vars", "now"}, "health.request")
        return self

    def _tables_used(self) -> set[str]:
        found: set[str] = set()
        operations: list[Any] = []
        for resource in (self.contacts, self.companies):
            operations += [resource.create, resource.get, resource.get_many, resource.update]
            operations += [s for strategies in resource.find.values() for s in strategies]
        for route in self.activities or []:
            operations += [route.create, *route.find]
        if self.tasks is not None:
            operations += [self.tasks.create, self.tasks.get, self.tasks.update]
        operations += [self.associations, self.users]
        for op in operations:
            if op is not None:
                found |= op.request.tables()
        return found
