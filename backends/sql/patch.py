"""Managed-mode updates in one statement (PostgreSQL, SQLite).

An update batch needs, per row, the typed columns it sets and a merge of the ``extra`` JSON
column (keys set, keys removed). Reading the rows to merge in Python costs a locked ``SELECT``
and a per-row executemany ``UPDATE``; instead the whole batch travels as **one JSON document**
(one bound parameter) and one ``UPDATE ... FROM <the document's rows> ... RETURNING id`` applies
it: the merge happens in SQL, RETURNING names the rows that exist (the others are unknown ids),
and the statement's text does not depend on the batch (one compiled and prepared statement per
entity).

* PostgreSQL: ``jsonb_array_elements`` yields the rows; the merge is
  ``(extra || set) - removed`` (shallow, as in Python).
* SQLite (≥ 3.35 for RETURNING): ``json_each`` yields the rows; the merge is two
  ``json_patch`` calls (first null every key being set or removed, then set). ``json_patch``
  is RFC 7386, which drops ``null`` members and merges nested objects, so a batch setting a
  JSON value that holds a ``null`` somewhere is not planned here (the caller falls back to the
  read-merge-write path).

Semantics match :meth:`RecordWritesMixin._merge`: a value fitting its typed column goes there
(and any stale copy leaves ``extra``), any other value goes to ``extra`` (the column is nulled),
a cleared field nulls its column and leaves ``extra``; an empty ``extra`` is stored as NULL.
Several updates of one record in a batch are folded in order into one row of the document.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from backends.base import RecordUpdate

from .mapped import RecordStore, fits_managed

__all__ = ["PatchPlan", "patch_statement", "plan_patch", "supports_patch"]

#: SQLite gained UPDATE ... FROM in 3.33 and RETURNING in 3.35.
_SQLITE_OK = sqlite3.sqlite_version_info >= (3, 35, 0)


def supports_patch(store: RecordStore, dialect: str) -> bool:
    """Whether ``store``'s updates can run as one :func:`patch_statement`."""
    return store.managed and (dialect == "postgresql" or (dialect == "sqlite" and _SQLITE_OK))


@dataclass
class _Row:
    cols: dict[str, Any] = field(default_factory=dict)
    xset: dict[str, Any] = field(default_factory=dict)
    xdel: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class PatchPlan:
    """The batch as the statement's one parameter, and each update's primary key."""

    payload: str
    pks: list[Any | None]


def _has_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_null(v) for v in value)
    return False


def plan_patch(
    store: RecordStore, updates: Sequence[RecordUpdate], dialect: str
) -> PatchPlan | None:
    """The document for ``updates``; ``None`` when SQLite's ``json_patch`` could not merge it
    exactly (a ``null`` inside a value bound for ``extra``)."""
    rows: dict[Any, _Row] = {}
    pks: list[Any | None] = []
    columns = store.columns
    for u in updates:
        pk = store.parse_id(u.crm_id)
        pks.append(pk)
        if pk is None:
            continue
        row = rows.get(pk)
        if row is None:
            row = rows[pk] = _Row()
        for name, value in u.fields.items():
            column = columns.get(name)
            if column is not None and (value is None or fits_managed(column, value)):
                row.cols[column.name] = value
                row.xset.pop(name, None)
                row.xdel.add(name)  # a copy stored when it had another type
            else:
                if column is not None:
                    row.cols[column.name] = None
                row.xset[name] = value
                row.xdel.discard(name)
        for name in u.clear:
            column = columns.get(name)
            if column is not None:
                row.cols[column.name] = None
            row.xset.pop(name, None)
            row.xdel.add(name)
    if dialect == "sqlite" and any(_has_null(v) for r in rows.values() for v in r.xset.values()):
        return None
    doc = []
    # Sorted: concurrent batches lock their rows in one order.
    for pk in sorted(rows):
        r = rows[pk]
        item: dict[str, Any] = {"id": pk, "c": r.cols}
        if r.xset or r.xdel:
            item["x"] = r.xset
            if dialect == "sqlite":
                item["dp"] = dict.fromkeys([*r.xset, *r.xdel])
            else:
                item["d"] = sorted(r.xdel)
        doc.append(item)
    return PatchPlan(json.dumps(doc, separators=(",", ":")), pks)


def patch_statement(store: RecordStore, dialect: Dialect) -> sa.TextClause:
    """``UPDATE <table> ... FROM <payload rows> WHERE id = row.id RETURNING id`` for every typed
    column (a row that does not name a column keeps its value), with ``:payload`` and ``:now``
    (the ``updated_at`` stamp)."""
    q = dialect.identifier_preparer.quote
    table = store.table
    t = q(table.name)
    sets = []
    if dialect.name == "postgresql":
        for column in store.columns.values():
            c = q(column.name)
            value = f"(e.r -> 'c' ->> '{column.name}')"
            if isinstance(column.type, sa.Integer):
                value = f"CAST({value} AS BIGINT)"
            sets.append(
                f"{c} = CASE WHEN (e.r -> 'c') ? '{column.name}' THEN {value} ELSE t.{c} END"
            )
        sets.append(
            "extra = CASE WHEN e.r ? 'x' THEN NULLIF("
            "(CASE WHEN jsonb_typeof(t.extra) = 'object' THEN t.extra ELSE CAST('{}' AS JSONB) END"
            " || (e.r -> 'x')) - ARRAY(SELECT jsonb_array_elements_text(e.r -> 'd')),"
            " CAST('{}' AS JSONB)) ELSE t.extra END"
        )
        sets.append("updated_at = :now")
        sql = (
            f"UPDATE {t} AS t SET {', '.join(sets)} "
            "FROM jsonb_array_elements(CAST(:payload AS JSONB)) AS e(r) "
            "WHERE t.id = e.r ->> 'id' RETURNING t.id"
        )
    else:
        for column in store.columns.values():
            c = q(column.name)
            path = f"'$.c.{column.name}'"
            sets.append(
                f"{c} = CASE WHEN json_type(e.value, {path}) IS NOT NULL "
                f"THEN json_extract(e.value, {path}) ELSE {t}.{c} END"
            )
        sets.append(
            "extra = CASE WHEN json_type(e.value, '$.x') IS NOT NULL THEN NULLIF(json_patch("
            f"json_patch(CASE WHEN json_type({t}.extra) = 'object' THEN {t}.extra ELSE '{{}}' END,"
            " json_extract(e.value, '$.dp')), json_extract(e.value, '$.x')), '{}')"
            f" ELSE {t}.extra END"
        )
        sets.append("updated_at = :now")
        sql = (
            f"UPDATE {t} SET {', '.join(sets)} FROM json_each(:payload) AS e "
            f"WHERE {t}.id = json_extract(e.value, '$.id') RETURNING {t}.id"
        )
    return sa.text(sql).bindparams(
        sa.bindparam("payload", type_=sa.Text()),
        sa.bindparam("now", type_=table.c.updated_at.type),
    )
