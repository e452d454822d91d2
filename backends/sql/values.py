"""Computing the values that configuration writes into columns (:class:`ValueSpec`).

A spec is evaluated against the *inputs* of the row being written: a record's fields (in the
backend's vocabulary), or an activity's / task's attributes. Templates never fail at run time:
they were parsed when the configuration loaded, and a placeholder without a value renders
empty (see :func:`render_template`).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import string
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from .coerce import coerce
from .id_strategies import id_generator
from .mapped_options import Condition, ValueSpec, template_fields

__all__ = [
    "all_specs",
    "column_values",
    "evaluate",
    "evaluate_all",
    "lookup_path",
    "options_specs",
    "render_template",
    "resolve_lookups",
    "value_inputs",
    "where_clause",
]

#: Characters trimmed from the ends of a single template whose placeholders were partly empty
#: (``"{last_name}, {first_name}"`` with only a last name → ``"Doe"``).
_EDGES = " \t,;:-|/·"
_SPACES = re.compile(r"\s{2,}")


def lookup_path(inputs: Mapping[str, Any], name: str) -> Any:
    """``inputs[name]``, following dots into nested mappings (``metadata.messageId``)."""
    if name in inputs or "." not in name:
        return inputs.get(name)
    value: Any = inputs
    for part in name.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value).strip()


def _present(value: Any) -> bool:
    return value is not None and _text(value) != ""


def _escaped(value: str, escape: str | None) -> str:
    if escape == "html":
        return html.escape(value).replace("\r\n", "\n").replace("\n", "<br>")
    if escape == "json":
        return json.dumps(value)[1:-1]
    return value


def render_template(
    template: str | list[str], inputs: Mapping[str, Any], escape: str | None = None
) -> str | None:
    """The text of ``template`` for ``inputs``; ``None`` when it comes out empty.

    A list of templates: the first whose placeholders all have values. A single template (or
    none of the list fully filled: then the last one): placeholders without a value render
    empty, runs of spaces collapse, and separators left dangling at either end are trimmed.
    """
    alternatives = [template] if isinstance(template, str) else template
    for alternative in alternatives:
        names = template_fields(alternative)
        if all(_present(lookup_path(inputs, n)) for n in names):
            return _format(alternative, inputs, escape) or None
    text = _format(alternatives[-1], inputs, escape)
    text = _SPACES.sub(" ", text).strip(_EDGES)
    return text or None


def _format(template: str, inputs: Mapping[str, Any], escape: str | None = None) -> str:
    # Rendered piece by piece (not str.format): a dotted placeholder names a path into the
    # inputs, never an attribute, and nothing in a template is evaluated.
    parts: list[str] = []
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(literal)
        if name is not None:
            value = lookup_path(inputs, name)
            parts.append(_escaped(_text(value), escape) if value is not None else "")
    return "".join(parts)


def evaluate(spec: ValueSpec, inputs: Mapping[str, Any], now: dt.datetime) -> Any:
    """The value ``spec`` gives for ``inputs`` at ``now`` (naive UTC)."""
    if spec.now:
        value: Any = now
    elif spec.field is not None:
        value = lookup_path(inputs, spec.field)
    elif spec.template is not None:
        value = render_template(spec.template, inputs, spec.escape)
    elif spec.generate is not None:
        value = id_generator(spec.generate)()
    elif spec.lookup is not None:
        value = spec._resolved
    else:
        value = spec.const
    if spec.map is not None:
        key = "null" if value is None else _text(value)
        if key in spec.map:
            value = spec.map[key]
        elif spec.default is not None:
            return evaluate(spec.default, inputs, now)
    if (value is None or value == "") and spec.default is not None:
        return evaluate(spec.default, inputs, now)
    if spec.case is not None and isinstance(value, str):
        value = value.upper() if spec.case == "upper" else value.lower()
    return value


def evaluate_all(
    specs: Mapping[str, ValueSpec], inputs: Mapping[str, Any], now: dt.datetime
) -> dict[str, Any]:
    """``{column: value}`` for every spec."""
    return {column: evaluate(spec, inputs, now) for column, spec in specs.items()}


def value_inputs(specs: Mapping[str, ValueSpec]) -> set[str]:
    """Every input field the specs read (templates, ``field``, defaults)."""
    names: set[str] = set()
    for spec in specs.values():
        names |= spec.fields()
    return names


def where_clause(table: sa.Table, where: Mapping[str, Condition]) -> Any:
    """The SQL condition for ``where`` on ``table`` (``None`` when there is none). Constants
    are bound with the column's type (``active: true`` on a boolean, ``deleted: 0`` on a
    ``tinyint(1)``)."""
    parts: list[Any] = []
    for name, condition in where.items():
        column = table.c[name]
        wanted = condition.equals if isinstance(condition.equals, list) else [condition.equals]
        values = [coerce(column, v) for v in wanted if v is not None]
        terms: list[Any] = []
        if any(v is None for v in wanted):
            terms.append(column.is_(None))
        if len(values) == 1:
            terms.append(column == sa.literal(values[0], column.type))
        elif values:
            terms.append(column.in_([sa.literal(v, column.type) for v in values]))
        clause = sa.or_(*terms) if len(terms) > 1 else terms[0]
        if condition.negate:
            # NOT (x = 1) is unknown for a NULL x: "not 1" must keep NULL rows.
            clause = sa.or_(sa.not_(clause), column.is_(None)) if values else sa.not_(clause)
        parts.append(clause)
    if not parts:
        return None
    return sa.and_(*parts) if len(parts) > 1 else parts[0]


def column_values(
    table: sa.Table,
    specs: Mapping[str, ValueSpec],
    inputs: Mapping[str, Any],
    now: dt.datetime,
    *,
    truncate: bool = False,
) -> dict[str, Any]:
    """``{column: value}`` for ``specs`` on ``table``, each converted for its column (raises
    :class:`backends.sql.coerce.ValueRejected`). Specs are evaluated in order and each result
    is an input of the next ones under its column's name (a field of the same name wins):
    ``name`` from a template, then ``complete_name: {field: name}``."""
    scope = dict(inputs)
    out: dict[str, Any] = {}
    for column, spec in specs.items():
        value = coerce(table.c[column], evaluate(spec, scope, now), truncate=truncate)
        out[column] = value
        scope.setdefault(column, value)
    return out


def all_specs(specs: Iterable[ValueSpec]) -> list[ValueSpec]:
    """``specs`` and their defaults, flattened."""
    out: list[ValueSpec] = []
    for spec in specs:
        while spec is not None:
            out.append(spec)
            spec = spec.default  # type: ignore[assignment]
    return out


def options_specs(options: Any) -> list[ValueSpec]:
    """Every value spec of the SQL driver's options (defaults included)."""
    found: list[ValueSpec] = []

    def walk(node: Any) -> None:
        if isinstance(node, ValueSpec):
            found.extend(all_specs([node]))
        elif isinstance(node, BaseModel):
            for name in type(node).model_fields:
                walk(getattr(node, name))
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(options)
    return found


async def resolve_lookups(
    conn: AsyncConnection, options: Any, table_of: Callable[[str, str | None], sa.Table]
) -> list[str]:
    """Read every ``lookup`` value from the database (one query each, once); return the
    problems (a lookup finding no row, or several)."""
    problems: list[str] = []
    done: dict[str, Any] = {}
    for spec in options_specs(options):
        lookup = spec.lookup
        if lookup is None:
            continue
        label = lookup.model_dump_json()
        if label not in done:
            table = table_of(lookup.table, lookup.db_schema)
            stmt = sa.select(table.c[lookup.column]).limit(2)
            for name, value in lookup.where.items():
                column, _, key = name.partition(".")
                if key:  # a key of a JSON column, compared as text
                    stmt = stmt.where(table.c[column][key].as_string() == str(value))
                else:
                    stmt = stmt.where(table.c[column] == value)
            values = (await conn.execute(stmt)).scalars().all()
            where = ", ".join(f"{c} = {v!r}" for c, v in lookup.where.items()) or "any row"
            if len(values) != 1:
                problems.append(
                    f"lookup of {lookup.table}.{lookup.column} where {where} found "
                    f"{'no row' if not values else 'several rows'}"
                )
            done[label] = values[0] if values else None
        spec._resolved = done[label]
    return problems
