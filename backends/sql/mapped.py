"""Record tables as the driver sees them: the adapter's managed tables or the customer's.

A :class:`RecordStore` describes one entity's table: where the id lives, how it is made, which
field goes to which column, and how a row becomes fields again. The driver's batch code is the
same for both schema modes; only the store differs.

* Managed: the common contract fields have typed columns (``firstName`` → ``first_name``); a
  value of another type than the column's, and every other field, goes to the ``extra`` JSON
  column, so values round-trip exactly.
* Mapped: a field name *is* a column name of the customer's table (the YAML mapping renamed
  Enginy's names). Values are checked against the reflected column types and lengths before
  anything is written, so a value too long for a ``VARCHAR(50)`` is that record's error and the
  rest of the batch lands. A field without a column goes to the optional JSON column, else it is
  the record's error. The table is never altered.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from backends.base import Entity

from .options import AssociationsMapping, MappedTable, SQLOptions, UsersTable
from .schema import COMPANY_COLUMNS, CONTACT_COLUMNS, ManagedTables

__all__ = [
    "RecordStore",
    "ValueRejected",
    "check_mapping",
    "coerce",
    "column_is_text",
    "fits_managed",
    "jsonable",
    "managed_store",
    "mapped_store",
]

_INT_RE = re.compile(r"^[+-]?\d+$")
#: Values that travel in JSON as they come from the database (see :func:`jsonable`).
_PLAIN = frozenset({str, int, float, bool})
#: Enginy fields whose values are numbers; every other known field is a string.
NUMBER_FIELDS = frozenset({"numberOfEmployees", "employeeCount", "foundedYear"})


class ValueRejected(ValueError):
    """A value does not fit its column (the message names the column, never the value)."""


def jsonable(value: Any) -> Any:
    """A database value as it travels in JSON."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return None
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _parse_datetime(value: str) -> dt.datetime:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return dt.datetime.fromisoformat(text)


def coerce(column: sa.Column[Any], value: Any) -> Any:
    """``value`` converted for ``column`` (reflected type), or :class:`ValueRejected`."""
    name = column.name
    if value is None:
        if not column.nullable and column.server_default is None and column.default is None:
            raise ValueRejected(f"column '{name}' cannot be empty")
        return None
    type_ = column.type
    if isinstance(type_, sa.JSON):
        return value
    if isinstance(type_, sa.Boolean):
        if isinstance(value, bool):
            return value
        raise ValueRejected(f"column '{name}' takes true/false")
    if isinstance(type_, sa.Integer):
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INT_RE.match(value.strip()):
            return int(value.strip())
        raise ValueRejected(f"column '{name}' takes whole numbers")
    if isinstance(type_, sa.Numeric):  # includes Float
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return decimal.Decimal(value.strip())
            except decimal.InvalidOperation:
                pass
        raise ValueRejected(f"column '{name}' takes numbers")
    if isinstance(type_, sa.DateTime):
        try:
            parsed = value if isinstance(value, dt.datetime) else _parse_datetime(str(value))
        except ValueError:
            raise ValueRejected(f"column '{name}' takes ISO 8601 date-times") from None
        if parsed.tzinfo is not None and not type_.timezone:
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
        return parsed
    if isinstance(type_, sa.Date):
        try:
            return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
        except ValueError:
            raise ValueRejected(f"column '{name}' takes ISO 8601 dates") from None
    if isinstance(type_, sa.String):  # VARCHAR, CHAR, TEXT, ...
        if isinstance(value, (dict, list, bool)):
            raise ValueRejected(f"column '{name}' takes text")
        text = value if isinstance(value, str) else str(value)
        if type_.length is not None and len(text) > type_.length:
            raise ValueRejected(
                f"value too long for column '{name}' (at most {type_.length} characters)"
            )
        return text
    return value


@dataclass
class RecordStore:
    """One entity's record table."""

    entity: Entity
    table: sa.Table
    pk: sa.Column[Any]
    #: Oldest-first order of records (``seq`` for managed tables, the primary key otherwise).
    order: sa.Column[Any]
    #: The adapter makes ids (UUID strings) instead of the database.
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

    @property
    def int_ids(self) -> bool:
        return isinstance(self.pk.type, sa.Integer)

    def new_id(self) -> str:
        return str(uuid.uuid4())

    def parse_id(self, crm_id: str) -> Any | None:
        """The primary-key value for ``crm_id``; ``None`` when it cannot be one."""
        if self.rejects_nul and "\x00" in crm_id:
            return None
        if self.int_ids:
            if not _INT_RE.match(crm_id) or len(crm_id) > 20:
                return None
            value = int(crm_id)
            # Out of the column's range is "no such record", not a database error.
            bits = (
                16
                if isinstance(self.pk.type, sa.SmallInteger)
                else (64 if isinstance(self.pk.type, sa.BigInteger) else 32)
            )
            return value if -(2 ** (bits - 1)) <= value < 2 ** (bits - 1) else None
        length = getattr(self.pk.type, "length", None) or 255
        return crm_id if len(crm_id) <= length else None

    @staticmethod
    def format_id(value: Any) -> str:
        return str(value)

    # -- fields ↔ row -------------------------------------------------------------------------

    def to_row(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Column values for ``fields`` (raises :class:`ValueRejected`).

        Managed: every typed column (``None`` when absent) plus ``extra``. Mapped: the columns
        named by ``fields``, plus the JSON column when some field has no column.
        """
        row: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        if self.managed:
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
        for name, value in fields.items():
            target = self.columns.get(name)
            if target is not None:
                row[target.name] = coerce(target, value)
            elif self.json_col is not None:
                extra[name] = value
            else:
                raise ValueRejected(
                    f"field '{name}' has no column in table '{self.table.name}' "
                    "(map it in the YAML, or configure json_column)"
                )
        if extra and self.json_col is not None:
            row[self.json_col.name] = self._encode_json(extra)
        return row

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
        return json_at, tuple((name, at[column.name]) for name, column in self.columns.items())

    def fields_at(self, row: Sequence[Any]) -> dict[str, Any]:
        """:meth:`from_row` for a result row that starts with the table's columns in order,
        by position (per-name lookups in a row mapping cost more than the rest of a read)."""
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


def fits_managed(column: sa.Column[Any], value: Any) -> bool:
    if isinstance(column.type, sa.Integer):
        return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63
    return isinstance(value, str)


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


def mapped_store(entity: Entity, table: sa.Table, config: MappedTable) -> RecordStore:
    pk = table.c[config.primary_key]
    json_col = table.c[config.json_column] if config.json_column else None
    skip = {pk.name, json_col.name if json_col is not None else None}
    return RecordStore(
        entity=entity,
        table=table,
        pk=pk,
        order=pk,
        makes_ids=config.id_strategy == "uuid",
        managed=False,
        json_col=json_col,
        columns={c.name: c for c in table.c if c.name not in skip},
    )


# -- check ------------------------------------------------------------------------------------


def column_is_text(column: sa.Column[Any]) -> bool:
    """Whether ``column`` holds text (where a normalised match-key value can be compared)."""
    return isinstance(column.type, sa.String)


def _is_text(column: sa.Column[Any]) -> bool:
    return isinstance(column.type, (sa.String, sa.JSON))


def _check_table(
    what: str, table: sa.Table | None, config: MappedTable, field_map: Mapping[str, str] | None
) -> list[str]:
    if table is None:
        return [f"{what}: table '{config.table}' does not exist"]
    problems: list[str] = []
    cols = table.c
    if config.primary_key not in cols:
        problems.append(f"{what}: table '{table.name}' has no column '{config.primary_key}'")
    else:
        pk = cols[config.primary_key]
        if config.id_strategy == "uuid" and not isinstance(pk.type, sa.String):
            problems.append(
                f"{what}: id_strategy 'uuid' needs a text primary key; "
                f"'{table.name}.{pk.name}' is {pk.type}"
            )
        if (
            config.id_strategy == "database"
            and not isinstance(pk.type, sa.Integer)
            and pk.server_default is None
        ):
            problems.append(
                f"{what}: id_strategy 'database' but '{table.name}.{pk.name}' has no identity, "
                "sequence or default; use id_strategy 'uuid'"
            )
    if config.json_column is not None:
        if config.json_column not in cols:
            problems.append(f"{what}: table '{table.name}' has no column '{config.json_column}'")
        elif not _is_text(cols[config.json_column]):
            problems.append(
                f"{what}: json_column '{config.json_column}' is {cols[config.json_column].type}; "
                "it needs a JSON or text type"
            )
    mapped_cols = set()
    for enginy, backend in (field_map or {}).items():
        if backend in (config.primary_key, config.json_column):
            problems.append(f"{what}: field '{enginy}' is mapped onto reserved column '{backend}'")
            continue
        if backend not in cols:
            where = "goes to the JSON column" if config.json_column else "has nowhere to go"
            problems.append(
                f"{what}: field '{enginy}' is mapped to column '{backend}', which table "
                f"'{table.name}' lacks (the value {where})"
            )
            continue
        mapped_cols.add(backend)
        column = cols[backend]
        numeric = isinstance(column.type, (sa.Integer, sa.Numeric))
        if enginy not in NUMBER_FIELDS and not _is_text(column):
            problems.append(
                f"{what}: field '{enginy}' is text but column '{table.name}.{backend}' is "
                f"{column.type}"
            )
        elif enginy in NUMBER_FIELDS and not (numeric or _is_text(column)):
            problems.append(
                f"{what}: field '{enginy}' is a number but column '{table.name}.{backend}' is "
                f"{column.type}"
            )
    if field_map is not None:
        for column in cols:
            if (
                column.name not in mapped_cols
                and column.name != config.primary_key
                and not column.nullable
                and column.server_default is None
                and column.default is None
            ):
                problems.append(
                    f"{what}: column '{table.name}.{column.name}' is NOT NULL without a default "
                    "and no field is mapped to it: records lacking it will be rejected"
                )
    return problems


def check_mapping(
    options: SQLOptions,
    reflected: Mapping[str, sa.Table],
    field_maps: Mapping[Entity, Mapping[str, str]] | None = None,
) -> list[str]:
    """Problems of the mapped configuration against the reflected tables (empty: all good)."""
    problems: list[str] = []
    maps = field_maps or {}
    for entity, config in ((Entity.CONTACT, options.contacts), (Entity.COMPANY, options.companies)):
        if config is not None:
            fm = maps.get(entity) if field_maps is not None else None
            problems += _check_table(entity.plural, reflected.get(config.table), config, fm)
    assoc: AssociationsMapping | None = options.associations
    if assoc is not None:
        if assoc.table is not None:
            table = reflected.get(assoc.table)
            if table is None:
                problems.append(f"associations: table '{assoc.table}' does not exist")
            else:
                for col in (assoc.contact_column, assoc.company_column):
                    if col not in table.c:
                        problems.append(
                            f"associations: table '{assoc.table}' has no column '{col}'"
                        )
        elif options.contacts is not None and assoc.fk_column is not None:
            table = reflected.get(options.contacts.table)
            if table is not None and assoc.fk_column not in table.c:
                problems.append(
                    f"associations: contacts table '{table.name}' has no column '{assoc.fk_column}'"
                )
    users: UsersTable | None = options.users
    if users is not None:
        table = reflected.get(users.table)
        if table is None:
            problems.append(f"users: table '{users.table}' does not exist")
        else:
            for wanted in (users.id_column, users.name_column, users.email_column):
                if wanted is not None and wanted not in table.c:
                    problems.append(f"users: table '{users.table}' has no column '{wanted}'")
    return problems
