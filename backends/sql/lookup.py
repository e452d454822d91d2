"""Finding rows the adapter did not write by a match key, through an index.

The adapter's key table (``<prefix>match_keys``) holds the normalised keys of the records it
wrote. Rows written by the CRM itself (or by people) hold values as typed: ``Ada@Acme.com``,
``https://www.acme.com/``. Comparing ``normalise(column)`` with the key would scan the table,
so the lookup instead turns each key into the few forms a stored value can take and compares
the column (or the indexed copy the CRM keeps: SuiteCRM ``email_address_caps``, Odoo
``email_normalized``) with all of them at once, in one ``IN`` that an index answers:

* case: a column stored in upper or lower case is compared with the forms in that case; a
  column with a case-insensitive collation (MariaDB/MySQL ``*_ci``, SQLite ``NOCASE``,
  PostgreSQL ``citext``) directly; any other column through ``lower(column)``, which an
  expression index serves (``lookups.<field>.create_index: true`` makes one);
* shape: a domain key ``acme.com`` also looks for ``www.acme.com``, ``http://acme.com``,
  ``https://www.acme.com/``, ...; a LinkedIn key the same around ``linkedin.com/in/<slug>``.

Values stored with other decorations (surrounding spaces, a path after a domain, a formatted
phone number) are only found through the key table, i.e. once the adapter wrote them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa

from .mapped_options import Lookup

__all__ = [
    "DEFAULT_NORMALISERS",
    "Comparison",
    "comparison",
    "stem_patterns",
    "variants",
]

#: The normaliser of a match key when the front does not say (by key name).
DEFAULT_NORMALISERS = {
    "email": "email",
    "linkedinUrl": "linkedin",
    "domain": "domain",
    "website": "domain",
    "name": "name",
    "phone": "phone",
    "mobilePhone": "phone",
}

_SCHEMES = ("", "http://", "https://")


def variants(normaliser: str | None, value: str) -> list[str]:
    """The stored forms (lower case) that normalise to ``value``, for an indexed ``IN``."""
    if normaliser == "domain":
        hosts = [value] if value.startswith("www.") else [value, "www." + value]
        return [f"{s}{h}{t}" for s in _SCHEMES for h in hosts for t in ("", "/")]
    if normaliser == "linkedin":
        hosts = [value, "www." + value] if value.startswith("linkedin.com/") else [value]
        return [f"{s}{h}{t}" for s in _SCHEMES for h in hosts for t in ("", "/")]
    return [value]


class Comparison:
    """How one column is compared with lower-case forms: ``expression IN (transform(form))``.

    ``expression`` is the column itself (stored in one case, or a case-insensitive
    collation) or ``lower(column)``; :meth:`form_of` turns a matched stored value back into
    the lower-case form it was found by.
    """

    def __init__(self, column: sa.Column[Any], lookup: Lookup, case_insensitive: bool) -> None:
        self.column = column
        self.direct = lookup.stored != "as_is" or case_insensitive
        self.expression: Any = column if self.direct else sa.func.lower(column)
        # Forms are lower case already; a column stored in upper case is compared in upper case.
        self.transform: Callable[[str], str] = str.upper if lookup.stored == "upper" else str

    def forms(self, values: Iterable[str]) -> list[str]:
        return [self.transform(v) for v in values]

    @staticmethod
    def form_of(stored: Any) -> str | None:
        return None if stored is None else str(stored).lower()


def comparison(column: sa.Column[Any], lookup: Lookup, case_insensitive: bool) -> Comparison:
    """The :class:`Comparison` for ``column`` configured by ``lookup``."""
    return Comparison(column, lookup, case_insensitive)


# -- keys the front computes from several fields, or from part of a value -------------------


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def stem_patterns(stem: str) -> list[str]:
    """``LIKE`` prefixes (escape ``\\``) of the stored websites whose name is ``stem``:
    ``acme.%``, ``www.acme.%``, ``http://acme.%``, ... (a prefix an index can serve)."""
    body = _like_escape(stem)
    return [f"{s}{w}{body}.%" for s in _SCHEMES for w in ("", "www.")]
