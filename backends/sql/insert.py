"""Managed-mode creates on PostgreSQL in one statement (SQLite: two, same idea).

A create batch inserts the record rows (``ON CONFLICT (external_id) DO NOTHING``: idempotent)
and the match-key rows of the records it made. Sent as two multi-row ``INSERT`` statements in
a transaction, that is four round trips (``BEGIN``, two inserts, ``COMMIT``) and a per-row
parameter set for every row (about 1,400 bound values for 100 contacts). Here the batch travels
as **two JSON parameters** and one statement with data-modifying CTEs inserts both::

    WITH ins AS (INSERT INTO contacts ... SELECT ... FROM jsonb_to_recordset(:rows)
                 ORDER BY external_id ON CONFLICT (external_id) DO NOTHING
                 RETURNING id, external_id),
         keys AS (INSERT INTO match_keys ... SELECT ... FROM ins JOIN jsonb_to_recordset(:keys))
    SELECT external_id FROM ins

One statement is atomic on its own, so it runs without ``BEGIN``/``COMMIT``: one round trip,
and its text does not depend on the batch (one prepared statement per entity). Rows come out
in external-id order, as in the multi-row path, so concurrent batches lock in one order.

SQLite has no data-modifying CTEs: there the rows are one ``INSERT ... SELECT ... FROM
json_each(:rows) ... ON CONFLICT DO NOTHING RETURNING external_id`` and the keys of the records
it made a second ``INSERT ... SELECT ... FROM json_each(:keys)``, in one transaction; still no
per-row parameter sets to build.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from .mapped import RecordStore

__all__ = ["create_payload", "create_statement", "sqlite_create_statements"]


def _sql_type(column: sa.Column[Any]) -> str:
    return "bigint" if isinstance(column.type, sa.Integer) else "text"


def create_statement(store: RecordStore, match_keys: sa.Table, dialect: Dialect) -> sa.TextClause:
    """The statement for ``store`` (managed, PostgreSQL): parameters ``rows``, ``keys``
    (:func:`create_payload`), ``now`` and ``entity``; returns the external ids it created."""
    q = dialect.identifier_preparer.quote
    typed = list(store.columns.values())
    names = ["id", "external_id", *(c.name for c in typed), "extra"]
    record = ", ".join(
        [
            "id text",
            "external_id text",
            *(f"{q(c.name)} {_sql_type(c)}" for c in typed),
            "extra jsonb",
        ]
    )
    # A record without extra fields stores JSON null there, as the multi-row path does.
    values = ", ".join(
        [
            "r.id",
            "r.external_id",
            *(f"r.{q(c.name)}" for c in typed),
            "COALESCE(r.extra, CAST('null' AS JSONB))",
            ":now",
            ":now",
        ]
    )
    columns = ", ".join([*(q(n) for n in names), "created_at", "updated_at"])
    sql = (
        f"WITH ins AS (INSERT INTO {q(store.table.name)} ({columns}) "
        f"SELECT {values} FROM jsonb_to_recordset(CAST(:rows AS JSONB)) AS r({record}) "
        "ORDER BY r.external_id "
        "ON CONFLICT (external_id) DO NOTHING RETURNING id, external_id), "
        f"keys AS (INSERT INTO {q(match_keys.name)} (entity, key_name, value, crm_id) "
        "SELECT :entity, k.key_name, k.value, ins.id FROM ins "
        "JOIN jsonb_to_recordset(CAST(:keys AS JSONB)) AS k(ext text, key_name text, value text) "
        "ON k.ext = ins.external_id) "
        "SELECT external_id FROM ins"
    )
    return sa.text(sql).bindparams(
        sa.bindparam("rows", type_=sa.Text()),
        sa.bindparam("keys", type_=sa.Text()),
        sa.bindparam("entity", type_=sa.String()),
        sa.bindparam("now", type_=store.table.c.created_at.type),
    )


def create_payload(
    rows: Sequence[Mapping[str, Any]], keys: Sequence[tuple[str, str, str]]
) -> tuple[str, str]:
    """The ``rows`` and ``keys`` parameters: record rows (column → value, with ``id`` and
    ``external_id``) and ``(external id, key name, value)`` triples."""
    key_docs = [{"ext": ext, "key_name": name, "value": value} for ext, name, value in keys]
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    return dumps(list(rows)), dumps(key_docs)


def sqlite_create_statements(
    store: RecordStore, match_keys: sa.Table, dialect: Dialect
) -> tuple[sa.TextClause, sa.TextClause]:
    """SQLite: the rows statement (``rows``, ``now``; returns the external ids it created)
    and the keys statement (``keys``: ``[crm id, key name, value]`` triples, ``entity``)."""
    q = dialect.identifier_preparer.quote
    typed = list(store.columns.values())
    names = ["id", "external_id", *(c.name for c in typed)]
    picked = [f"json_extract(e.value, '$.{n}')" for n in names]
    # A record without extra fields stores JSON null there, as the multi-row path does.
    extra = "COALESCE(json_extract(e.value, '$.extra'), 'null')"
    columns = ", ".join([*(q(n) for n in names), "extra", "created_at", "updated_at"])
    rows = (
        f"INSERT INTO {q(store.table.name)} ({columns}) "
        f"SELECT {', '.join([*picked, extra, ':now', ':now'])} FROM json_each(:rows) AS e "
        # WHERE true: SQLite's parser needs it before an upsert clause on INSERT ... SELECT.
        "WHERE true ORDER BY 2 ON CONFLICT (external_id) DO NOTHING RETURNING external_id"
    )
    keys = (
        f"INSERT INTO {q(match_keys.name)} (entity, key_name, value, crm_id) "
        "SELECT :entity, json_extract(e.value, '$[1]'), json_extract(e.value, '$[2]'), "
        "json_extract(e.value, '$[0]') FROM json_each(:keys) AS e"
    )
    return (
        sa.text(rows).bindparams(
            sa.bindparam("rows", type_=sa.Text()),
            sa.bindparam("now", type_=store.table.c.created_at.type),
        ),
        sa.text(keys).bindparams(
            sa.bindparam("keys", type_=sa.Text()), sa.bindparam("entity", type_=sa.String())
        ),
    )
