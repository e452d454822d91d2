"""Record tables as the driver sees them: the adapter's managed tables or the customer's.

A :class:`RecordStore` describes one entity's table: where the id lives, how it is made, which
field goes to which column, and how a row becomes fields again. The driver's batch code is the
same for both schema modes; only the store differs.

* Managed: the common contract fields have typed columns (``firstName`` → ``first_name``); a
  value of another type than the column's, and every other field, goes to the ``extra`` JSON
  column, so values round-trip exactly.
* Mapped: a field name *is* a column name of the customer's table (the YAML mapping renamed
  Enginy's names), of its one-to-one extension table (SuiteCRM ``contacts_cstm``), or names a
  child table (e-mail addresses). Values are checked against the reflected column types and
  lengths before anything is written. A field with none of these goes to the JSON column or
  the adapter's ``<prefix>extra_fields`` side table, or is the record's error. Rows outside
  the configured ``where`` (soft-deleted, archived, another record type) are invisible. The
  tables are never altered.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from backends.base import Entity

from .children import ChildStore, LinkStore
from .coerce import (
    ValueRejected,
    coerce,
    column_is_text,
    fits_managed,
    is_case_insensitive,
    jsonable,
    parse_key,
)
from .id_strategies import id_generator
from .lookup import comparison
from .mapped_options import Lookup, MappedTable, ValueSpec
from .schema import COMPANY_COLUMNS, CONTACT_COLUMNS, ManagedTables
from .values import value_inputs, where_clause

__all__ = [
    "RecordStore",
    "RowParts",
    "TableLookup",
    "ValueRejected",
    "coerce",
    "column_is_text",
    "fits_managed",
    "jsonable",
    "managed_store",
    "mapped_store",
]

#: Values that travel in JSON as they come from the database (see :func:`jsonable`).
_PLAIN = frozenset({str, int, float, bool})
#: Enginy fields whose values are numbers; every other known field is a string.
NUMBER_FIELDS = frozenset({"numberOfEmployees", "employeeCount", "foundedYear"})

#: ``(table name, schema) → reflected table``.
TableLookup = Callable[[str, "str | None"], sa.Table]


@dataclass
class RowParts:
    """A record's fields split by where they are stored (mapped mode)."""

    #: Columns of the record's own table (the JSON column included).
    row: dict[str, Any] = field(default_factory=dict)
    #: Child-table fields: field → primary value (``None``: clear it).
    children: dict[str, Any] = field(default_factory=dict)
    #: Extension-table columns.
    extension: dict[str, Any] = field(default_factory=dict)
    #: Fields for the adapter's ``<prefix>extra_fields`` table.
    side: dict[str, Any] = field(default_factory=dict)
    #: Fields not stored anywhere, with why (they only feed configured values).
    dropped: dict[str, str] = field(default_factory=dict)


@dataclass
class RecordStore:
    """One entity's record table."""

    entity: Entity
    table: sa.Table
    pk: sa.Column[Any]
    #: Oldest-first order of records (``seq`` for managed tables, the primary key otherwise).
    order: sa.Column[Any]
    #: The adapter makes ids instead of the database.
    makes_ids: bool
    managed: bool
    json_col: sa.Column[Any] | None
    #: field name → column (managed: the typed columns; mapped: every column but the key).
    columns: dict[str, sa.Column[Any]] = field(default_factory=dict)
    #: managed only: columns stamped on insert/update.
    stamp_cols: tuple[str, ...] = ()
    #: managed only: the record's own unique external-id column (mapped: ``<prefix>links``).
    ext_col: sa.Column[Any] | None = None
    #: PostgreSQL, SQLite: text holding NUL cannot be stored as sent, so an id containing one
    #: names no record (PostgreSQL would fail the whole statement: "invalid byte sequence").
    rejects_nul: bool = False
    #: How ids are made when ``makes_ids`` (see :mod:`backends.sql.id_strategies`).
    id_strategy: str = "uuid"
    #: Mapped: the condition of the rows the adapter sees (``None``: every row).
    visible: Any = None
    #: Mapped: multi-valued fields in child tables, by field name.
    children: dict[str, ChildStore] = field(default_factory=dict)
    #: Mapped: the one-to-one extension table, its key, and its columns by field name.
    extension: sa.Table | None = None
    extension_key: sa.Column[Any] | None = None
    extension_columns: dict[str, sa.Column[Any]] = field(default_factory=dict)
    #: Mapped: where fields without a column go (``reject``, ``json_column``, ``side_table``).
    extra_fields: str = "json_column"
    #: Mapped: values written into new rows / changed rows.
    insert_values: dict[str, ValueSpec] = field(default_factory=dict)
    update_values: dict[str, ValueSpec] = field(default_factory=dict)
    #: Mapped: how sync compares match keys with stored values, by field name.
    lookups: dict[str, Lookup] = field(default_factory=dict)
    #: Case-insensitive comparison of each text column (collation), by column name.
    case_insensitive: frozenset[str] = frozenset()

    @property
    def int_ids(self) -> bool:
        return isinstance(self.pk.type, sa.Integer)

    @property
    def text_ids(self) -> bool:
        """Whether the key is text (compared with the side tables' text ids without a cast)."""
        return isinstance(self.pk.type, sa.String)

    def new_id(self) -> str:
        return str(id_generator(self.id_strategy)())

    def parse_id(self, crm_id: str) -> Any | None:
        """The primary-key value for ``crm_id``; ``None`` when it cannot be one."""
        if self.rejects_nul and "\x00" in crm_id:
            return None
        return parse_key(self.pk, crm_id)

    @staticmethod
    def format_id(value: Any) -> str:
        return str(value)

    @functools.cached_property
    def template_inputs(self) -> frozenset[str]:
        """Fields that ``on_update`` values read: changing one recomputes them."""
        return frozenset(value_inputs(self.update_values))

    @functools.cached_property
    def consumed(self) -> frozenset[str]:
        """Fields configured values read (they need no column of their own)."""
        return frozenset(value_inputs(self.insert_values) | value_inputs(self.update_values))

    # -- fields ↔ row -------------------------------------------------------------------------

    def to_row(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Managed: every typed column (``None`` when absent) plus ``extra``. Mapped: the
        record table's part of :meth:`split` (raises :class:`ValueRejected`)."""
        if not self.managed:
            return self.split(fields).row
        row: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        columns = self.columns
        # Per record of every create: text in a text column decided without fits_managed.
        for name, column, text in self._managed_columns:
            value = fields.get(name)
            if value is None or (text and type(value) is str) or fits_managed(column, value):
                row[column.name] = value
            else:
                row[column.name] = None
                extra[name] = value
        for k, v in fields.items():
            if k not in columns:
                extra[k] = v
        row["extra"] = extra or None
        return row

    def split(self, fields: Mapping[str, Any]) -> RowParts:
        """Mapped: where each field goes (raises :class:`ValueRejected` for a value its column
        cannot hold, or a field with nowhere to go)."""
        parts = RowParts()
        extra: dict[str, Any] = {}
        for name, value in fields.items():
            target = self.columns.get(name)
            if target is not None:
                parts.row[target.name] = coerce(target, value)
            elif name in self.children:
                child = self.children[name]
                parts.children[name] = (
                    None if value is None else str(coerce(child.value_col, value))
                )
                if not child.config.create_rows and self.extra_fields == "side_table":
                    parts.side[name] = value
            elif name in self.extension_columns:
                column = self.extension_columns[name]
                parts.extension[column.name] = coerce(column, value)
            elif self.extra_fields == "json_column":
                extra[name] = value
            elif self.extra_fields == "side_table":
                parts.side[name] = value
            elif name in self.consumed:
                parts.dropped[name] = (
                    f"no column in '{self.table.name}': it only feeds configured values "
                    "(set extra_fields: side_table to keep it)"
                )
            else:
                raise ValueRejected(
                    f"field '{name}' has no column in table '{self.table.name}' "
                    "(map it in the YAML, or set extra_fields)"
                )
        if extra and self.json_col is not None:
            parts.row[self.json_col.name] = self._encode_json(extra)
        return parts

    def from_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The record's fields from a full row."""
        fields: dict[str, Any] = {}
        if self.json_col is not None:
            extra = self._decode_json(row.get(self.json_col.name))
            fields.update(extra)
        for name, column in self.columns.items():
            value = row.get(column.name)
            if value is not None:
                fields[name] = jsonable(value)
        return fields

    # -- reading ------------------------------------------------------------------------------

    def selected(self) -> list[Any]:
        """What a record read selects: the table's columns, then the extension's."""
        return [self.table, *self.extension_columns.values()]

    def source(self) -> Any:
        """The FROM of a record read (the extension table outer-joined)."""
        if self.extension is None:
            return self.table
        assert self.extension_key is not None
        return self.table.outerjoin(self.extension, self.extension_key == self.pk)

    def only_visible(self, stmt: Any) -> Any:
        """``stmt`` restricted to the rows the adapter sees."""
        return stmt if self.visible is None else stmt.where(self.visible)

    @functools.cached_property
    def _managed_columns(self) -> tuple[tuple[str, sa.Column[Any], bool], ...]:
        """``(field, column, column holds text)`` of the typed columns."""
        return tuple(
            (name, column, not isinstance(column.type, sa.Integer))
            for name, column in self.columns.items()
        )

    @functools.cached_property
    def positions(self) -> dict[str, int]:
        """Column name → its position among the table's columns (and in a result row of
        ``SELECT <table>, ...``)."""
        return {c.name: i for i, c in enumerate(self.table.c)}

    @functools.cached_property
    def _layout(self) -> tuple[int | None, tuple[tuple[str, int], ...]]:
        at = self.positions
        json_at = at[self.json_col.name] if self.json_col is not None else None
        typed = [(name, at[column.name]) for name, column in self.columns.items()]
        width = len(self.table.c)
        typed += [(name, width + i) for i, name in enumerate(self.extension_columns)]
        return json_at, tuple(typed)

    def fields_at(self, row: Sequence[Any]) -> dict[str, Any]:
        """:meth:`from_row` for a result row laid out as :meth:`selected`, by position
        (per-name lookups in a row mapping cost more than the rest of a read)."""
        json_at, typed = self._layout
        fields = self._decode_json(row[json_at]) if json_at is not None else {}
        for name, at in typed:
            value = row[at]
            if value is not None:
                fields[name] = value if type(value) in _PLAIN else jsonable(value)
        return fields

    def extra_of(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return self._decode_json(row.get(self.json_col.name)) if self.json_col is not None else {}

    def _encode_json(self, extra: dict[str, Any]) -> Any:
        assert self.json_col is not None
        if isinstance(self.json_col.type, sa.JSON):
            return extra
        return json.dumps(extra, separators=(",", ":"), default=str)

    def _decode_json(self, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if isinstance(value, (str, bytes)):
            try:
                value = json.loads(value)
            except ValueError:
                return {}
        return dict(value) if isinstance(value, dict) else {}


def managed_store(entity: Entity, tables: ManagedTables) -> RecordStore:
    table = tables.contacts if entity is Entity.CONTACT else tables.companies
    spec = CONTACT_COLUMNS if entity is Entity.CONTACT else COMPANY_COLUMNS
    return RecordStore(
        entity=entity,
        table=table,
        pk=table.c.id,
        order=table.c.seq,
        makes_ids=True,
        managed=True,
        json_col=table.c.extra,
        columns={name: table.c[col] for name, (col, _) in spec.items()},
        stamp_cols=("created_at", "updated_at"),
        ext_col=table.c.external_id,
    )


def mapped_store(
    entity: Entity,
    config: MappedTable,
    table_of: TableLookup,
    *,
    dialect: str,
    default_collation: str | None = None,
) -> RecordStore:
    """The store of a mapped table, from its configuration and the reflected tables."""
    table = table_of(config.table, config.db_schema)
    pk = table.c[config.primary_key]
    json_col = table.c[config.json_column] if config.json_column else None
    skip = {pk.name, json_col.name if json_col is not None else None}

    def ci(column: sa.Column[Any]) -> bool:
        return is_case_insensitive(column, dialect, default_collation)

    children = {}
    for name, child in config.children.items():
        child_table = table_of(child.table, config.db_schema)
        link = None
        if child.link is not None:
            link_table = table_of(child.link.table, config.db_schema)
            link = LinkStore(
                config=child.link,
                table=link_table,
                pk=link_table.c[child.link.primary_key] if child.link.primary_key else None,
                record_col=link_table.c[child.link.record_column],
                child_col=link_table.c[child.link.child_column],
            )
        lookup_col = child_table.c[child.lookup.column or child.column]
        children[name] = ChildStore(
            field=name,
            config=child,
            table=child_table,
            pk=child_table.c[child.primary_key] if child.primary_key else None,
            value_col=child_table.c[child.column],
            record_col=child_table.c[child.record_column] if child.record_column else None,
            link=link,
            comparison=comparison(lookup_col, child.lookup, ci(lookup_col)),
        )
    extension = key = None
    ext_columns: dict[str, sa.Column[Any]] = {}
    if config.extension is not None:
        extension = table_of(config.extension.table, config.db_schema)
        key = extension.c[config.extension.key]
        ext_columns = {c.name: c for c in extension.c if c.name != key.name}
    columns = {c.name: c for c in table.c if c.name not in skip}
    return RecordStore(
        entity=entity,
        table=table,
        pk=pk,
        order=pk,
        makes_ids=config.id_strategy != "database",
        managed=False,
        json_col=json_col,
        columns=columns,
        id_strategy=config.id_strategy,
        visible=where_clause(table, config.where),
        children=children,
        extension=extension,
        extension_key=key,
        extension_columns={n: c for n, c in ext_columns.items() if n not in columns},
        extra_fields=config.extra_fields or "reject",
        insert_values=config.insert_values(),
        update_values=dict(config.on_update),
        lookups=dict(config.lookups),
        case_insensitive=frozenset(c.name for c in table.c if column_is_text(c) and ci(c)),
    )
