"""Bounded statements: how many rows or values one statement may carry.

Enginy's batches are as large as the request body allows (tens of thousands of ids). One
statement per batch then breaks database limits that are *permanent* failures, not outages:
PostgreSQL refuses more than 32,767 bound parameters and overflows its parser's stack on a long
row-value ``IN`` list, SQLite allows 32,766 variables, MySQL/MariaDB 65,535 placeholders and
``max_allowed_packet`` bytes. Every ``IN`` list, ``CASE`` update and JSON batch is therefore
cut into chunks of :data:`CHUNK`; a batch of up to :data:`CHUNK` items stays one statement, so
the usual 100-record batch runs exactly the statements it always did.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

__all__ = ["CHUNK", "chunked"]

T = TypeVar("T")

#: Rows or values per statement. With at most a handful of bound values per row (a row-value
#: pair, a CASE arm) this stays far below every database's parameter limit.
CHUNK = 1000


def chunked(items: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    """``items`` in consecutive lists of at most ``size`` (nothing for no items)."""
    seq: Sequence[T] = items if isinstance(items, Sequence) else list(items)
    for start in range(0, len(seq), size):
        yield list(seq[start : start + size])
