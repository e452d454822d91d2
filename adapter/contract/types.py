"""The contract's shared field types and the base classes of its wire objects.

Identifiers are strings on the wire; a JSON integer is accepted and kept as its decimal text
(Enginy's company ids look numeric), everywhere an id is read; a float or a boolean is a 400.
Datetimes must be ISO 8601 strings (an offset-less value is taken as UTC) and are always written
as UTC with a ``Z`` suffix; booleans must be JSON booleans (strict: no epoch numbers, no
``"yes"``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
    StringConstraints,
)
from pydantic.alias_generators import to_camel

__all__ = ["Bool", "Ident", "NonBlank", "OptIdent", "UtcDateTime", "format_datetime"]


def _as_utc(value: datetime) -> datetime:
    # Enginy's examples are all UTC; a value without an offset is read as UTC rather than as
    # the server's local time, which would shift it by the host's timezone.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00+10:00 has no UTC equivalent; a ValueError makes it a 400.
        raise ValueError("datetime out of range") from None


def format_datetime(value: datetime) -> str:
    """Render ``value`` as ISO 8601 in UTC with a ``Z`` suffix (milliseconds when present)."""
    value = _as_utc(value)
    spec = "milliseconds" if value.microsecond else "seconds"
    return value.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


#: A datetime read from an ISO 8601 string only (naive = UTC) and written as ``...Z``. Strict:
#: pydantic would otherwise read a JSON number as seconds since the epoch (``5`` → 1970).
UtcDateTime = Annotated[
    datetime, Strict(), AfterValidator(_as_utc), PlainSerializer(format_datetime, return_type=str)
]
#: A JSON boolean only (lax mode would take ``"yes"``, ``"on"`` or ``1`` as true).
Bool = Annotated[bool, Strict()]

if TYPE_CHECKING:
    Ident = str
    OptIdent = str
else:
    #: An identifier: a non-empty string, or a JSON integer kept as its decimal text (Enginy's
    #: company ids look numeric). Not a float, not a boolean: ``1.0`` or ``true`` is a 400. The
    #: schema says ``anyOf: [string, integer]``, as the server reads it.
    #: ``left_to_right``: a string (the usual case) is settled by the first branch, which costs
    #: less than pydantic's "smart" union on a batch of a hundred records.
    Ident = Annotated[
        Annotated[str, StringConstraints(min_length=1), Strict()]
        | Annotated[int, Strict(), AfterValidator(str)],
        Field(union_mode="left_to_right"),
    ]
    #: An optional reference to a record or owner (``contactId``, ``ownerId``...): any string, or
    #: a JSON integer kept as its decimal text.
    OptIdent = Annotated[
        Annotated[str, Strict()] | Annotated[int, Strict(), AfterValidator(str)],
        Field(union_mode="left_to_right"),
    ]

#: The characters Unicode calls White_Space, listed one by one: ``\S`` differs between regex
#: dialects (U+0085 and U+001C..U+001F are spaces to Python, not to ECMAScript; U+FEFF the
#: reverse), and the same pattern is both the server's check and the published schema.
_NON_SPACE = r"[^\x09-\x0d\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
#: A required non-blank string (``type`` of an activity, ``subject`` of a task).
NonBlank = Annotated[
    str, StringConstraints(strip_whitespace=False, min_length=1, pattern=_NON_SPACE)
]


class _Wire(BaseModel):
    """Base of every wire model: camelCase aliases, names accepted either way."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


class _Open(_Wire):
    """A wire object that keeps unknown keys (in ``model_extra``).

    Only the wire names are recognised here: a custom field that happens to be spelt like a
    Python attribute (``external_id``) stays a field instead of being taken as the envelope.
    """

    model_config = ConfigDict(extra="allow", validate_by_name=False)


class _Closed(_Wire):
    """A wire object that ignores unknown keys."""

    model_config = ConfigDict(extra="ignore")


class _Reported(_Wire):
    """A wire object whose unknown keys are collected (in ``model_extra``) to be reported back,
    or refused when they are a near miss of a field (``adapter/service/checks.py``); the driver
    never sees them."""

    model_config = ConfigDict(extra="allow")


class _Ids(_Reported):
    """A wire object holding identifiers (which may arrive as JSON integers)."""
