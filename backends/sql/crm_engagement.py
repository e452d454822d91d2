"""Activities and tasks in the CRM's own tables (mapped mode, ``activities`` / ``tasks``).

The row is written where the CRM's screens read it and linked to its contact (and company):
by foreign-key columns (SuiteCRM ``notes.contact_id``), a polymorphic parent (``parent_type``
+ ``parent_id``; Odoo ``model`` + ``res_id``) and/or a targets table (CiviCRM
``civicrm_activity_contact``, Twenty ``noteTarget`` / ``taskTarget``). The adapter keeps its
copy in ``<prefix>activities`` / ``<prefix>tasks`` under the CRM row's id: the contract's
answers and idempotency keys come from there, while a task's mapped attributes and completion
are read back from the CRM row, so that a task completed in the CRM shows as completed to
Enginy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .batching import chunked
from .coerce import coerce, jsonable, parse_key
from .id_strategies import id_generator
from .mapped import RecordStore
from .related_options import EngagementTable, ParentColumns
from .values import column_values, evaluate, where_clause

__all__ = ["EngagementStore", "task_overlay"]


@dataclass
class EngagementStore:
    """One CRM table of activities or tasks."""

    config: EngagementTable
    table: sa.Table
    targets: sa.Table | None
    contacts: RecordStore
    companies: RecordStore

    def __post_init__(self) -> None:
        self.pk = self.table.c[self.config.primary_key]
        self.visible = where_clause(self.table, self.config.where)

    def parse_id(self, crm_id: str) -> Any | None:
        return parse_key(self.pk, crm_id)

    def _links(self, inputs: Mapping[str, Any]) -> tuple[Any | None, Any | None]:
        contact = inputs.get("contact_id")
        company = inputs.get("company_id")
        return (
            self.contacts.parse_id(contact) if contact else None,
            self.companies.parse_id(company) if company else None,
        )

    def _row(
        self, inputs: Mapping[str, Any], now: dt.datetime, changed: set[str] | None = None
    ) -> dict[str, Any]:
        """The columns ``inputs`` (the activity's / task's attributes) give: all of them for a
        new row (``changed`` is ``None``), else those of the ``changed`` attributes and the
        ``on_update`` values."""
        config = self.config
        new = changed is None
        touched: set[str] = set(inputs) if changed is None else changed
        cut = config.truncate
        specs = config.insert_values() if new else dict(config.on_update)
        row = column_values(self.table, specs, inputs, now, truncate=cut)
        for attribute, column in config.columns.items():
            if attribute in ("contact_id", "company_id") or not (new or attribute in touched):
                continue
            value = inputs.get(attribute)
            if value is None and column in row:
                continue  # a configured default (``occurred_at`` or now) stays
            row[column] = coerce(self.table.c[column], value, truncate=cut)
        contact, company = self._links(inputs)
        if new or touched & {"contact_id", "company_id"}:
            if config.contact_column is not None:
                row[config.contact_column] = contact
            if config.company_column is not None:
                row[config.company_column] = company
            for attribute, key in (("contact_id", contact), ("company_id", company)):
                if attribute in config.columns:
                    row[config.columns[attribute]] = key
            for parent in config.parents:
                row.update(_parent(parent, contact, company))
        completion = config.completed
        if completion is not None and (new or "completed" in touched):
            done = bool(inputs.get("completed"))
            row[completion.column] = coerce(
                self.table.c[completion.column],
                completion.done_value if done else completion.open,
            )
        return row

    async def insert(
        self, conn: AsyncConnection, inputs: Mapping[str, Any], now: dt.datetime
    ) -> str:
        """Insert the row (and its targets); return its id as text."""
        row = self._row(inputs, now)
        if self.config.id_strategy != "database":
            row[self.pk.name] = coerce(self.pk, id_generator(self.config.id_strategy)())
        result = await conn.execute(sa.insert(self.table).values(row))
        if self.pk.name in row:
            key = row[self.pk.name]
        else:
            inserted = result.inserted_primary_key
            assert inserted is not None
            key = inserted[0]
        await self._insert_targets(conn, key, inputs, now)
        return str(key)

    async def _insert_targets(
        self, conn: AsyncConnection, key: Any, inputs: Mapping[str, Any], now: dt.datetime
    ) -> None:
        config = self.config.targets
        if config is None or self.targets is None:
            return
        for specs in config.rows:
            # A row naming an attribute that is empty (no company given) is left out.
            if any(s.fields() and evaluate(s, inputs, now) is None for s in specs.values()):
                continue
            row = column_values(self.targets, specs, inputs, now)
            row[config.owner_column] = key
            if config.primary_key is not None and config.id_strategy != "database":
                pk = self.targets.c[config.primary_key]
                row[pk.name] = coerce(pk, id_generator(config.id_strategy)())
            await conn.execute(sa.insert(self.targets).values(row))

    async def update(
        self,
        conn: AsyncConnection,
        changes: Mapping[str, tuple[Mapping[str, Any], set[str]]],
        now: dt.datetime,
    ) -> None:
        """Write each row's changed attributes (``{crm_id: (all attributes, changed
        names)}``) and its ``on_update`` values."""
        for crm_id, (inputs, changed) in changes.items():
            key = self.parse_id(crm_id)
            if key is None:
                continue
            row = self._row(inputs, now, changed)
            if row:
                stmt = sa.update(self.table).where(self.pk == key).values(row)
                await conn.execute(stmt if self.visible is None else stmt.where(self.visible))

    async def read(self, conn: AsyncConnection, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """``{crm_id: attributes}`` of the visible rows among ``ids``: the mapped attributes
        (as stored, JSON-ready) and ``completed``."""
        keys = {k: c for c in set(ids) if (k := self.parse_id(c)) is not None}
        columns = {a: self.table.c[c] for a, c in self.config.columns.items()}
        completion = self.config.completed
        selected = [self.pk, *columns.values()]
        if completion is not None:
            selected.append(self.table.c[completion.column])
        out: dict[str, dict[str, Any]] = {}
        for part in chunked(list(keys)):
            stmt = sa.select(*selected).where(self.pk.in_(part))
            if self.visible is not None:
                stmt = stmt.where(self.visible)
            for row in await conn.execute(stmt):
                values: dict[str, Any] = {}
                for i, attribute in enumerate(columns, start=1):
                    values[attribute] = row[i]
                if completion is not None:
                    values["completed"] = completion.is_done(row[len(columns) + 1])
                out[str(row[0])] = values
        return out


def _parent(parent: ParentColumns, contact: Any, company: Any) -> dict[str, Any]:
    """The type and id columns of ``parent`` for the linked records (both NULL without
    one of the kinds it takes)."""
    choices = [("contact", parent.contact, contact), ("company", parent.company, company)]
    if parent.prefer == "company":
        choices.reverse()
    for _, type_name, key in choices:
        if type_name is not None and key is not None:
            return {parent.type_column: type_name, parent.id_column: key}
    return {parent.type_column: None, parent.id_column: None}


def task_overlay(stored: Mapping[str, Any], crm: Mapping[str, Any]) -> dict[str, Any]:
    """A side-table task row with the CRM row's attributes laid over it."""
    row = dict(stored)
    for attribute, value in crm.items():
        if attribute in ("due_date", "completed_at"):
            row[attribute] = _naive(value)
        elif attribute == "completed":
            row["completed"] = bool(value)
            if not value:
                row["completed_at"] = None
        elif attribute in ("contact_id", "company_id", "owner_id"):
            row[attribute] = None if value is None else str(value)
        else:
            row[attribute] = jsonable(value) if not isinstance(value, str) else value
    return row


def _naive(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    return None
