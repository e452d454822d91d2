"""Values ↔ reflected column types: what a column accepts, and how a stored value travels in
JSON.

Values are checked against the reflected type and length before anything is written, so a
value a column cannot hold is that record's error (the rest of the batch lands) instead of a
failed batch statement. Every column type of the CRMs we target is handled: text of any
length (``char(36)``, ``varchar(17)``, ``text``), integers (``tinyint(1)`` booleans too),
``double precision`` and decimals, booleans, ``enum`` (membership is checked here), ``uuid``,
``date``, ``datetime`` and ``timestamptz``, JSON. Columns of other types (arrays, binary,
``tsvector``, types SQLAlchemy does not know) cannot take a field: :func:`unsupported` names
them for ``check``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import NullType

__all__ = [
    "NUMBER_TYPES",
    "ValueRejected",
    "coerce",
    "column_is_text",
    "fits_managed",
    "is_case_insensitive",
    "jsonable",
    "parse_datetime",
    "parse_key",
    "unsupported",
]

_INT_RE = re.compile(r"^[+-]?\d+$")
#: Number types: SQLAlchemy 2.1's Float (``double precision``) is no Numeric any more.
NUMBER_TYPES = (sa.Numeric, sa.Float)
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


class ValueRejected(ValueError):
    """A value does not fit its column (the message names the column, never the value)."""


def jsonable(value: Any) -> Any:
    """A database value as it travels in JSON."""
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return None
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return None
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def parse_datetime(value: str) -> dt.datetime:
    """An ISO 8601 date-time (``Z`` accepted); raises ``ValueError``."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return dt.datetime.fromisoformat(text)


def unsupported(column: sa.Column[Any]) -> str | None:
    """Why ``column`` cannot take a field value (``None``: it can)."""
    type_ = column.type
    if isinstance(type_, NullType):
        return "a type the adapter does not know"
    if isinstance(type_, (sa.ARRAY, sa.LargeBinary, sa.Interval, sa.Time)):
        return f"of type {type_}, which the adapter cannot fill"
    if not isinstance(
        type_,
        (sa.String, sa.Integer, *NUMBER_TYPES, sa.Boolean, sa.DateTime, sa.Date, sa.JSON, sa.Uuid),
    ):
        return f"of type {type_}, which the adapter cannot fill"
    return None


def coerce(column: sa.Column[Any], value: Any, *, truncate: bool = False) -> Any:
    """``value`` converted for ``column`` (reflected type), or :class:`ValueRejected`
    (``truncate``: text longer than the column is cut instead)."""
    name = column.name
    if value is None:
        if not column.nullable and column.server_default is None and column.default is None:
            raise ValueRejected(f"column '{name}' cannot be empty")
        return None
    type_ = column.type
    if isinstance(type_, sa.JSON):
        return value
    if isinstance(type_, sa.Boolean):
        return _boolean(name, value)
    if isinstance(type_, sa.Integer):
        return _integer(name, value)
    if isinstance(type_, NUMBER_TYPES):  # DECIMAL, FLOAT, DOUBLE PRECISION
        return _number(name, value)
    if isinstance(type_, sa.DateTime):
        return _datetime(name, value, timezone=bool(type_.timezone))
    if isinstance(type_, sa.Date):
        try:
            if isinstance(value, dt.datetime):
                return value.date()
            return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
        except ValueError:
            raise ValueRejected(f"column '{name}' takes ISO 8601 dates") from None
    if isinstance(type_, sa.Uuid):
        try:
            parsed = value if isinstance(value, uuid.UUID) else uuid.UUID(str(value).strip())
        except ValueError:
            raise ValueRejected(f"column '{name}' takes UUIDs") from None
        return parsed if type_.as_uuid else str(parsed)
    if isinstance(type_, sa.Enum):
        text = _text(name, value)
        if type_.enums and text not in type_.enums:
            raise ValueRejected(f"column '{name}' takes one of: {', '.join(map(str, type_.enums))}")
        return text
    if isinstance(type_, sa.String):  # VARCHAR, CHAR, TEXT, ...
        text = _text(name, value)
        if type_.length is not None and len(text) > type_.length and truncate:
            return text[: type_.length]
        if type_.length is not None and len(text) > type_.length:
            raise ValueRejected(
                f"value too long for column '{name}' (at most {type_.length} characters)"
            )
        return text
    reason = unsupported(column)
    if reason is not None:
        raise ValueRejected(f"column '{name}' is {reason}")
    return value


def _text(name: str, value: Any) -> str:
    if isinstance(value, (dict, list, bool)):
        raise ValueRejected(f"column '{name}' takes text")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueRejected(f"column '{name}' takes text")
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value if isinstance(value, str) else str(value)


def _boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueRejected(f"column '{name}' takes true/false")


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT_RE.match(value.strip()):
        return int(value.strip())
    raise ValueRejected(f"column '{name}' takes whole numbers")


def _number(name: str, value: Any) -> int | float | decimal.Decimal:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueRejected(f"column '{name}' takes finite numbers")
        return value
    if isinstance(value, str):
        try:
            number = decimal.Decimal(value.strip())
        except decimal.InvalidOperation:
            number = None
        if number is not None and number.is_finite():
            return number
    raise ValueRejected(f"column '{name}' takes numbers")


def _datetime(name: str, value: Any, *, timezone: bool) -> dt.datetime:
    try:
        if isinstance(value, dt.datetime):
            parsed = value
        elif isinstance(value, dt.date):
            parsed = dt.datetime(value.year, value.month, value.day)
        else:
            parsed = parse_datetime(str(value))
    except ValueError:
        raise ValueRejected(f"column '{name}' takes ISO 8601 date-times") from None
    if parsed.tzinfo is not None and not timezone:
        return parsed.astimezone(dt.UTC).replace(tzinfo=None)
    if parsed.tzinfo is None and timezone:
        # Naive values are UTC throughout the adapter.
        return parsed.replace(tzinfo=dt.UTC)
    return parsed


def fits_managed(column: sa.Column[Any], value: Any) -> bool:
    """Whether a managed typed column holds ``value`` as sent (else it goes to ``extra``)."""
    if isinstance(column.type, sa.Integer):
        return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63
    return isinstance(value, str)


def column_is_text(column: sa.Column[Any]) -> bool:
    """Whether ``column`` holds text (where a normalised match-key value can be compared)."""
    return isinstance(column.type, sa.String) and not isinstance(column.type, sa.Enum)


def is_case_insensitive(
    column: sa.Column[Any], dialect: str, default_collation: str | None
) -> bool:
    """Whether ``=`` on ``column`` ignores case (so an index on the column serves a
    case-insensitive lookup): a ``*_ci`` collation on MySQL/MariaDB (the column's, the
    table's or the database's), ``NOCASE`` on SQLite, ``citext`` on PostgreSQL."""
    collation = getattr(column.type, "collation", None)
    if dialect == "mysql":
        table = column.table
        table_collation = table.kwargs.get("mysql_collate") if table is not None else None
        chosen = collation or table_collation or default_collation or ""
        return str(chosen).lower().endswith("_ci")
    if dialect == "sqlite":
        return str(collation or "").upper() == "NOCASE"
    return type(column.type).__name__.upper() == "CITEXT"


def parse_key(column: sa.Column[Any], text: str) -> Any | None:
    """The value of key ``column`` that the id ``text`` names; ``None`` when it cannot name
    one (not a number for an integer key, out of its range, not a UUID for a ``uuid`` key,
    longer than the column): "no such record", never a database error."""
    type_ = column.type
    if isinstance(type_, sa.Integer):
        if not _INT_RE.match(text) or len(text) > 20:
            return None
        value = int(text)
        bits = (
            16
            if isinstance(type_, sa.SmallInteger)
            else (64 if isinstance(type_, sa.BigInteger) else 32)
        )
        if getattr(type_, "unsigned", False):
            return value if 0 <= value < 2**bits else None
        return value if -(2 ** (bits - 1)) <= value < 2 ** (bits - 1) else None
    if isinstance(type_, sa.Uuid):
        try:
            parsed = uuid.UUID(text)
        except ValueError:
            return None
        return parsed if type_.as_uuid else str(parsed)
    length = getattr(type_, "length", None) or 255
    return text if len(text) <= length else None
