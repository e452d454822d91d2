"""One call of an operation: how its request is built (``request:``) and its answer read
(``response:``).

``request`` has a ``method``, a ``path`` whose ``{...}`` parts are expressions (``/api/contacts/
{id}/``; each value is URL-encoded), and ``query``, ``headers`` and ``body`` templates
(:mod:`backends.rest.expr`). ``response`` names, by path, where the answer holds the record
(``record``), its id (``id``), a list of records (``items``, each with its id at ``item_id``),
and a condition under which a 2xx is a failure after all (``failed_when``, e.g.
``{path: success, equals: false}``).

In a dry run nothing is sent: :meth:`ResponseSpec.synthesize` makes the answer a successful
call would have had, with an id that says it is not real.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from backends.rest.components import tagged
from backends.rest.errors import BodyMatch
from backends.rest.expr import Context, Expr, TemplateValue, parse_expression
from backends.rest.pagination import Pagination
from backends.rest.paths import MISSING, check_path, get_path, set_path

__all__ = ["Built", "ListSpec", "Operation", "RequestSpec", "ResponseSpec", "check_roots"]

_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "SEARCH"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


@dataclass(frozen=True, slots=True)
class Built:
    """A request ready for the HTTP layer."""

    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]
    json: Any

    def describe(self) -> str:
        """``POST /api/contacts/?a=1`` (for dry-run and debug lines)."""
        query = "&".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.method} {self.path}{'?' + query if query else ''}"


class RequestSpec(_Spec):
    method: Method = "GET"
    path: str = Field(min_length=1)
    query: dict[str, TemplateValue] = Field(default_factory=dict)
    headers: dict[str, TemplateValue] = Field(default_factory=dict)
    body: TemplateValue | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") and not value.startswith(("http://", "https://")):
            raise ValueError("must start with '/' (relative to base_url) or be a full URL")
        for text in _PLACEHOLDER.findall(value):
            parse_expression(text.strip())
        return value

    def _path_exprs(self) -> list[Expr]:
        return [parse_expression(t.strip()) for t in _PLACEHOLDER.findall(self.path)]

    def roots(self) -> set[str]:
        found: set[str] = set()
        for expr in self._path_exprs():
            found |= expr.roots()
        for template in [*self.query.values(), *self.headers.values()]:
            found |= template.roots()
        if self.body is not None:
            found |= self.body.roots()
        return found

    def tables(self) -> set[str]:
        found: set[str] = set()
        for template in [*self.query.values(), *self.headers.values()]:
            found |= template.tables()
        return found | (self.body.tables() if self.body is not None else set())

    def build(self, ctx: Context, tables: Mapping[str, Mapping[str, Any]]) -> Built:
        """The request for ``ctx``. ``ValueError`` when a path part has no value."""

        def fill(match: re.Match[str]) -> str:
            value = parse_expression(match.group(1).strip()).evaluate(ctx, tables)
            if value is MISSING or value is None or value == "":
                raise ValueError(f"no value for {{{match.group(1)}}} in path {self.path}")
            return quote(str(value), safe="")

        path = _PLACEHOLDER.sub(fill, self.path)
        params: dict[str, Any] = {}
        for name, template in self.query.items():
            value = template.evaluate(ctx, tables)
            if value is not MISSING and value is not None:
                params[name] = value
        headers = {
            name: str(value)
            for name, template in self.headers.items()
            if (value := template.evaluate(ctx, tables)) not in (MISSING, None)
        }
        body = self.body.evaluate(ctx, tables) if self.body is not None else None
        return Built(self.method, path, params, headers, body)


class ResponseSpec(_Spec):
    #: Path of the new (or this) record's id.
    id: str | None = None
    #: Path of the record object.
    record: str | None = None
    #: Path of a list of records (finds, lists, batch answers).
    items: str | None = None
    #: Path of an item's id inside each of ``items``.
    item_id: str = "id"
    #: A 2xx that is a failure after all (APIs that answer 200 with ``{"success": false}``).
    failed_when: BodyMatch | None = None
    #: A 2xx without a body means the id named nothing (Directus answers a PATCH of a
    #: missing item with 204).
    empty_means_not_found: bool = False

    @field_validator("id", "record", "items", "item_id")
    @classmethod
    def _paths(cls, value: str | None) -> str | None:
        return None if value is None else check_path(value)

    def record_of(self, body: Any) -> Any:
        return get_path(body, self.record) if self.record is not None else body

    def id_of(self, body: Any) -> str | None:
        """The id in ``body``: at ``id``, else the record's ``item_id``; ``None`` if absent."""
        value = get_path(body, self.id) if self.id is not None else MISSING
        if value is MISSING:
            record = self.record_of(body)
            value = get_path(record, self.item_id) if isinstance(record, Mapping) else MISSING
        return None if value in (MISSING, None, "") else str(value)

    def items_of(self, body: Any) -> list[Any]:
        value = get_path(body, self.items) if self.items is not None else body
        return value if isinstance(value, list) else []

    def failed(self, body: Any) -> bool:
        return self.failed_when is not None and self.failed_when.test(body)

    def synthesize(self, sent: Any, fake_id: str) -> Any:
        """The answer a successful call would have had (for a dry run)."""
        document: dict[str, Any] = {}
        if self.items is not None:
            set_path(document, self.items, [])
        if self.record is not None:
            record = dict(sent) if isinstance(sent, Mapping) else {}
            set_path(record, self.item_id, fake_id)
            set_path(document, self.record, record)
        if self.id is not None:
            set_path(document, self.id, fake_id)
        if self.id is None and self.record is None and self.items is None:
            set_path(document, self.item_id, fake_id)
        return document


class Operation(_Spec):
    """One call: ``request`` and how to read its ``response``."""

    request: RequestSpec
    response: ResponseSpec = Field(default_factory=ResponseSpec)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        # ``{method, path, body, ...}`` without ``request:``: those keys are the request.
        if isinstance(data, Mapping) and "request" not in data and "path" in data:
            request = {k: v for k, v in data.items() if k in RequestSpec.model_fields}
            rest = {k: v for k, v in data.items() if k not in RequestSpec.model_fields}
            return {"request": request, **rest}
        return data


class ListSpec(Operation):
    """A list read page by page (``pagination``: :mod:`backends.rest.pagination`)."""

    pagination: tagged(Pagination) | None = None  # type: ignore[valid-type]


def check_roots(template_roots: set[str], allowed: set[str], where: str) -> None:
    """Raise ``ValueError`` naming the roots a template reads that its operation lacks."""
    unknown = sorted(template_roots - allowed)
    if unknown:
        raise ValueError(
            f"{where} reads {', '.join(unknown)}, which this operation does not provide "
            f"(it provides: {', '.join(sorted(allowed))})"
        )
