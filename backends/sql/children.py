"""Multi-valued fields kept in tables of their own (e-mail addresses, phone numbers).

A record's field (``email``) holds its *primary* value; the child table holds every value.

* **Direct child** (CiviCRM ``civicrm_email``): each row points at its record
  (``record_column``) and one row is flagged primary (``primary: {is_primary: 1}``).
* **Shared value rows through a link table** (SuiteCRM ``email_addresses`` +
  ``email_addr_bean_rel``, EspoCRM ``email_address`` + ``entity_email_address``): a value row
  exists once per address and link rows join it to records, the link flagged primary.

Writing a value: the record's primary row (link) is pointed at the new value, or created;
clearing it deletes the primary row (link), or retires it with ``on_delete`` values
(``deleted: 1``). Other rows (secondary addresses the CRM holds) are never touched. Every
operation takes a whole batch and runs a constant number of statements.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .batching import chunked
from .coerce import coerce
from .id_strategies import id_generator
from .lookup import Comparison
from .mapped_options import ChildLink, ChildTable, Scalar
from .values import column_values, where_clause

__all__ = ["ChildStore", "ChildWrite", "LinkStore"]


def _flags(table: sa.Table, primary: Mapping[str, Scalar]) -> Any:
    """SQL condition: the row carries the ``primary`` values."""
    terms = [
        table.c[c] == sa.literal(coerce(table.c[c], v), table.c[c].type) for c, v in primary.items()
    ]
    if not terms:
        return None
    return sa.and_(*terms) if len(terms) > 1 else terms[0]


def _and(*terms: Any) -> Any:
    present = [t for t in terms if t is not None]
    return sa.and_(*present) if present else sa.true()


@dataclass
class LinkStore:
    """A link table between records and shared value rows."""

    config: ChildLink
    table: sa.Table
    pk: sa.Column[Any] | None
    record_col: sa.Column[Any]
    child_col: sa.Column[Any]

    def __post_init__(self) -> None:
        self.visible = where_clause(self.table, self.config.where)
        self.primary = _flags(self.table, self.config.primary)
        self.insert_specs = dict(self.config.on_create)
        for column, condition in self.config.where.items():
            if column not in self.insert_specs and condition.insert_value is not None:
                self.insert_specs[column] = _const(condition.insert_value)


def _const(value: Scalar) -> Any:
    from .mapped_options import ValueSpec

    return ValueSpec(const=value)


@dataclass(frozen=True)
class ChildWrite:
    """Set (``value``) or clear (``None``) one record's primary value of a child field.
    ``inputs`` are the record's fields (for the child's configured values)."""

    record: Any
    value: str | None
    inputs: Mapping[str, Any]


@dataclass
class ChildStore:
    """One multi-valued field's table (see the module docstring)."""

    field: str
    config: ChildTable
    table: sa.Table
    pk: sa.Column[Any] | None
    value_col: sa.Column[Any]
    record_col: sa.Column[Any] | None
    link: LinkStore | None
    comparison: Comparison

    def __post_init__(self) -> None:
        self.visible = where_clause(self.table, self.config.where)
        self.primary = _flags(self.table, self.config.primary)
        self.insert_specs = dict(self.config.on_create)
        for column, condition in self.config.where.items():
            if column not in self.insert_specs and condition.insert_value is not None:
                self.insert_specs[column] = _const(condition.insert_value)

    # -- reading ---------------------------------------------------------------------------

    def _owner(self) -> sa.Column[Any]:
        return self.record_col if self.link is None else self.link.record_col  # type: ignore[return-value]

    def _rows(self, records: Sequence[Any]) -> sa.Select[Any]:
        """Every current row (link) of ``records``: owner, value, is-primary, row key."""
        if self.link is None:
            assert self.record_col is not None
            flag = (
                sa.case((self.primary, 1), else_=0) if self.primary is not None else sa.literal(0)
            )
            key = self.pk if self.pk is not None else self.value_col
            # (A constant in ORDER BY would be a column position on MySQL.)
            order = [self.record_col, *([flag.desc()] if self.primary is not None else []), key]
            return (
                sa.select(self.record_col, self.value_col, flag.label("is_primary"), key)
                .where(self.record_col.in_(records), _and(self.visible))
                .order_by(*order)
            )
        link = self.link
        assert self.pk is not None
        flag = sa.case((link.primary, 1), else_=0) if link.primary is not None else sa.literal(0)
        key = link.pk if link.pk is not None else link.child_col
        return (
            sa.select(link.record_col, self.value_col, flag.label("is_primary"), key, self.pk)
            .select_from(link.table.join(self.table, self.pk == link.child_col))
            .where(link.record_col.in_(records), _and(link.visible, self.visible))
            .order_by(link.record_col, *([flag.desc()] if link.primary is not None else []), key)
        )

    async def primary_rows(
        self, conn: AsyncConnection, records: Iterable[Any]
    ) -> dict[Any, tuple[Any, Any]]:
        """``{record: (value, row key)}``: the primary row (link) of each record, or its first
        row when none is flagged primary."""
        found: dict[Any, tuple[Any, Any]] = {}
        for part in chunked(sorted(set(records), key=str)):
            for row in await conn.execute(self._rows(part)):
                if row[0] not in found:
                    found[row[0]] = (row[1], row[3])
        return found

    async def lookup(
        self, conn: AsyncConnection, forms: Mapping[str, str]
    ) -> list[tuple[str, Any]]:
        """``(key value, record)`` for every row whose value matches one of ``forms`` (lower-case
        stored form → key value): one indexed ``IN``."""
        expr = self.comparison.expression
        out: list[tuple[str, Any]] = []
        if self.link is None:
            assert self.record_col is not None
            base = sa.select(self.record_col, expr).where(_and(self.visible))
        else:
            assert self.pk is not None
            base = (
                sa.select(self.link.record_col, expr)
                .select_from(self.table.join(self.link.table, self.link.child_col == self.pk))
                .where(_and(self.visible, self.link.visible))
            )
        for part in chunked(list(forms)):
            stmt = base.where(expr.in_(self.comparison.forms(part)))
            for record, stored in await conn.execute(stmt):
                key = forms.get(self.comparison.form_of(stored) or "")
                if key is not None:
                    out.append((key, record))
        return out

    async def lookup_like(
        self, conn: AsyncConnection, patterns: list[str]
    ) -> list[tuple[Any, Any]]:
        """``(stored value, record)`` of the rows whose value matches one of the ``LIKE``
        ``patterns`` (lower case, escape ``\\``)."""
        expr = self.comparison.expression
        if self.link is None:
            assert self.record_col is not None
            base = sa.select(expr, self.record_col).where(_and(self.visible))
        else:
            assert self.pk is not None
            base = (
                sa.select(expr, self.link.record_col)
                .select_from(self.table.join(self.link.table, self.link.child_col == self.pk))
                .where(_and(self.visible, self.link.visible))
            )
        out: list[tuple[Any, Any]] = []
        for part in chunked(patterns, 120):
            likes = [expr.like(self.comparison.transform(p), escape="\\") for p in part]
            out += [
                (stored, record)
                for stored, record in await conn.execute(base.where(sa.or_(*likes)))
            ]
        return out

    # -- writing ---------------------------------------------------------------------------

    async def write(
        self,
        conn: AsyncConnection,
        writes: Sequence[ChildWrite],
        now: dt.datetime,
        *,
        fresh: bool = False,
    ) -> None:
        """Apply ``writes`` (``fresh``: the records are new, they have no rows yet)."""
        if not writes:
            return
        current = {} if fresh else await self.primary_rows(conn, [w.record for w in writes])
        if self.link is None:
            await self._write_direct(conn, writes, current, now)
        else:
            await self._write_linked(conn, writes, current, now)

    def _value(self, value: str) -> Any:
        return coerce(self.value_col, value)

    def _new_key(self, strategy: str, column: sa.Column[Any] | None) -> dict[str, Any]:
        if column is None or strategy == "database":
            return {}
        return {column.name: coerce(column, id_generator(strategy)())}

    async def _write_direct(
        self,
        conn: AsyncConnection,
        writes: Sequence[ChildWrite],
        current: Mapping[Any, tuple[Any, Any]],
        now: dt.datetime,
    ) -> None:
        assert self.record_col is not None
        inserts: list[dict[str, Any]] = []
        updates: list[tuple[Any, dict[str, Any]]] = []
        retire: list[Any] = []
        for w in writes:
            old = current.get(w.record)
            if not self.config.create_rows:
                if old is not None and old[0] != w.value:
                    updates.append((old[1], {self.value_col.name: _maybe(self, w.value)}))
                continue
            if w.value is None:
                if old is not None:
                    retire.append(old[1])
                continue
            if old is not None and old[0] == w.value:
                continue
            inputs = {**w.inputs, self.field: w.value}
            if old is not None:
                values = column_values(self.table, self.config.on_update, inputs, now)
                updates.append((old[1], {**values, self.value_col.name: self._value(w.value)}))
                continue
            row = column_values(self.table, self.insert_specs, inputs, now)
            row.update({c: coerce(self.table.c[c], v) for c, v in self.config.primary.items()})
            row[self.record_col.name] = w.record
            row[self.value_col.name] = self._value(w.value)
            row.update(self._new_key(self.config.id_strategy, self.pk))
            inserts.append(row)
        key = self.pk if self.pk is not None else self.value_col
        await _insert(conn, self.table, inserts)
        await _update(conn, self.table, key, updates)
        await _retire(conn, self.table, key, retire, self.config.on_delete, now)

    def _form(self, value: str) -> str:
        """The form a value is compared in (one shared row per form)."""
        return self.comparison.transform(value.strip().lower())

    async def _ensure_values(
        self,
        conn: AsyncConnection,
        values: Iterable[str],
        inputs: Mapping[str, Mapping[str, Any]],
        now: dt.datetime,
    ) -> dict[str, Any]:
        """``{form: value row key}`` for ``values``: existing shared rows (compared as lookups
        compare), and rows inserted (as first typed) for the forms that had none."""
        assert self.pk is not None
        first: dict[str, str] = {}
        for value in values:
            first.setdefault(self._form(value), value)
        found: dict[str, Any] = {}
        expr = self.comparison.expression
        for part in chunked(list(first)):
            stmt = sa.select(self.pk, expr).where(expr.in_(part), _and(self.visible))
            for key, stored in await conn.execute(stmt.order_by(self.pk)):
                found.setdefault(self._form(str(stored)), key)
        missing = [(form, value) for form, value in first.items() if form not in found]
        rows = []
        for _, value in missing:
            scope = {**inputs[value], self.field: value}
            row = column_values(self.table, self.insert_specs, scope, now)
            row[self.value_col.name] = self._value(value)
            row.update(self._new_key(self.config.id_strategy, self.pk))
            rows.append(row)
        if rows:
            await _insert(conn, self.table, rows)
        if rows and self.pk.name in rows[0]:
            found.update(
                (form, r[self.pk.name]) for (form, _), r in zip(missing, rows, strict=True)
            )
        elif rows:
            # Keys made by the database: read them back by value.
            stmt = sa.select(self.pk, self.value_col).where(
                self.value_col.in_([r[self.value_col.name] for r in rows])
            )
            for key, stored in await conn.execute(stmt.order_by(self.pk.desc())):
                found.setdefault(self._form(str(stored)), key)
        return found

    async def _write_linked(
        self,
        conn: AsyncConnection,
        writes: Sequence[ChildWrite],
        current: Mapping[Any, tuple[Any, Any]],
        now: dt.datetime,
    ) -> None:
        link = self.link
        assert link is not None
        setting = [w for w in writes if w.value is not None]
        changed = [w for w in setting if w.record not in current or current[w.record][0] != w.value]
        changed_ids = {id(w) for w in changed}
        inputs = {w.value: {**w.inputs} for w in changed if w.value is not None}
        keys = await self._ensure_values(conn, inputs, inputs, now) if changed else {}
        inserts: list[dict[str, Any]] = []
        updates: list[tuple[Any, dict[str, Any]]] = []
        retire: list[Any] = []
        for w in writes:
            old = current.get(w.record)
            if w.value is None:
                if old is not None:
                    retire.append(old[1])
                continue
            if id(w) not in changed_ids:
                continue
            target = keys[self._form(w.value)]
            link_inputs = {**w.inputs, self.field: w.value}
            if old is not None and link.pk is not None:
                values = column_values(link.table, link.config.on_update, link_inputs, now)
                updates.append((old[1], {**values, link.child_col.name: target}))
                continue
            if old is not None:  # no key of its own: retire it, link the new value
                retire.append(old[1])
            row = column_values(link.table, link.insert_specs, link_inputs, now)
            row.update({c: coerce(link.table.c[c], v) for c, v in link.config.primary.items()})
            row[link.record_col.name] = w.record
            row[link.child_col.name] = target
            row.update(self._new_key(link.config.id_strategy, link.pk))
            inserts.append(row)
        key = link.pk if link.pk is not None else link.child_col
        await _retire(conn, link.table, key, retire, link.config.on_delete, now)
        await _insert(conn, link.table, inserts)
        await _update(conn, link.table, key, updates)


def _maybe(child: ChildStore, value: str | None) -> Any:
    return None if value is None else child._value(value)


async def _insert(conn: AsyncConnection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    # Rows with different column sets go in separate statements: an explicit NULL would
    # override a column's default.
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    for group in groups.values():
        for part in chunked(group):
            await conn.execute(sa.insert(table), part)


async def _update(
    conn: AsyncConnection,
    table: sa.Table,
    key: sa.Column[Any],
    updates: list[tuple[Any, dict[str, Any]]],
) -> None:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row_key, values in updates:
        params = {f"v_{c}": v for c, v in values.items()}
        params["k_key"] = row_key
        groups.setdefault(tuple(sorted(values)), []).append(params)
    for columns, rows in groups.items():
        stmt = (
            sa.update(table)
            .where(key == sa.bindparam("k_key", type_=key.type))
            .values({c: sa.bindparam(f"v_{c}", type_=table.c[c].type) for c in columns})
        )
        await conn.execute(stmt, rows)


async def _retire(
    conn: AsyncConnection,
    table: sa.Table,
    key: sa.Column[Any],
    keys: list[Any],
    on_delete: Mapping[str, Any],
    now: dt.datetime,
) -> None:
    if not keys:
        return
    for part in chunked(keys):
        if on_delete:
            values = column_values(table, on_delete, {}, now)
            await conn.execute(sa.update(table).where(key.in_(part)).values(values))
        else:
            await conn.execute(sa.delete(table).where(key.in_(part)))
