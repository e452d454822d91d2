"""Id strategies: who makes the primary key of a row the adapter inserts into a CRM table.

============== =================================================================================
``database``   the database (identity, sequence, autoincrement, a column default); read back
               through ``RETURNING`` (or the driver's last insert id)
``uuid``       a random UUID: text (``char(36)``: SuiteCRM) or a native ``uuid`` column (Twenty)
``uuid_hex``   a random UUID as 32 hex digits
``espo``       EspoCRM's 17-character ids: PHP ``uniqid()`` (8 hex digits of seconds, 5 of
               microseconds) then 4 random hex digits, as ``Util::generateId()`` makes them
``pkg.mod:fn`` your generator: a function without arguments returning the id (text or int)
============== =================================================================================
"""

from __future__ import annotations

import importlib
import re
import secrets
import time
import uuid
from collections.abc import Callable
from functools import cache
from typing import Any

__all__ = ["ID_LENGTHS", "check_id_strategy", "id_generator"]

_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def _espo() -> str:
    now = time.time()
    seconds, micros = int(now), int((now % 1) * 1_000_000)
    return f"{seconds:08x}{micros:05x}{secrets.token_hex(2)}"


def _uuid() -> str:
    return str(uuid.uuid4())


def _uuid_hex() -> str:
    return uuid.uuid4().hex


_BUILT_IN: dict[str, Callable[[], Any]] = {"uuid": _uuid, "uuid_hex": _uuid_hex, "espo": _espo}

#: Length of the ids each built-in strategy makes (checked against the column's length).
ID_LENGTHS: dict[str, int] = {"uuid": 36, "uuid_hex": 32, "espo": 17}


def check_id_strategy(value: str, *, generated: bool = False) -> str:
    """``value`` when it names a strategy (``generated``: one that makes a value in Python,
    so not ``database``); raises ``ValueError`` otherwise. An import path is resolved here,
    so that a typo fails when the configuration loads."""
    if value in _BUILT_IN or (value == "database" and not generated):
        return value
    if _IMPORT_PATH.match(value):
        id_generator(value)
        return value
    known = ", ".join(([] if generated else ["database"]) + sorted(_BUILT_IN))
    raise ValueError(f"unknown id strategy {value!r}: use one of {known}, or 'module:function'")


@cache
def id_generator(strategy: str) -> Callable[[], Any]:
    """The function making ids for ``strategy`` (not ``database``)."""
    built_in = _BUILT_IN.get(strategy)
    if built_in is not None:
        return built_in
    module_name, _, name = strategy.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(
            f"id strategy {strategy!r}: cannot import {module_name!r}: {exc}"
        ) from None
    function = getattr(module, name, None)
    if not callable(function):
        raise ValueError(f"id strategy {strategy!r}: {module_name} has no function {name!r}")
    generator: Callable[[], Any] = function
    return generator
