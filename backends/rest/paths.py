"""Dotted paths into JSON documents: how a manifest names a place in a request or an answer.

``data.id`` is key ``id`` of key ``data``; ``contacts.0.id`` is the ``id`` of the first item of
``contacts``; ``data.items.*.item`` maps over a list (each item's ``item``). An empty path is
the document itself. Paths are checked for syntax when the manifest loads
(:func:`check_path`); reading a path that is absent gives :data:`MISSING`, never an exception,
because real APIs leave out keys they have no value for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "MISSING",
    "check_path",
    "flatten",
    "get_path",
    "present",
    "set_path",
    "split_path",
]


class _Missing:
    """The value of a path that leads nowhere (distinct from a JSON ``null``)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()

_SEGMENT = re.compile(r"^(?:\*|\d+|[A-Za-z_$@][\w$@\-]*)$")


def split_path(path: str) -> tuple[str, ...]:
    """``"data.items.*.item"`` → ``("data", "items", "*", "item")``; ``""`` → ``()``."""
    return tuple(path.split(".")) if path else ()


def check_path(path: str) -> str:
    """Return ``path`` when every segment is a name, an index or ``*``; raise ``ValueError``."""
    for segment in split_path(path):
        if not _SEGMENT.match(segment):
            raise ValueError(
                f"bad path {path!r}: segment {segment!r} is not a name, an index or '*'"
            )
    return path


def present(value: Any) -> bool:
    """Whether a looked-up value exists (``None`` exists: it is JSON ``null``)."""
    return value is not MISSING


def get_path(document: Any, path: str | tuple[str, ...]) -> Any:
    """The value at ``path`` in ``document``, or :data:`MISSING`. A ``*`` segment maps the rest
    of the path over a list and returns the list of the values found (absent ones left out)."""
    parts = split_path(path) if isinstance(path, str) else path
    current = document
    for index, part in enumerate(parts):
        if part == "*":
            if not isinstance(current, list):
                return MISSING
            rest = parts[index + 1 :]
            found = [get_path(item, rest) for item in current]
            return [value for value in found if value is not MISSING]
        if isinstance(current, Mapping):
            if part not in current:
                return MISSING
            current = current[part]
        elif isinstance(current, list) and part.isdigit():
            position = int(part)
            if position >= len(current):
                return MISSING
            current = current[position]
        else:
            return MISSING
    return current


def set_path(document: dict[str, Any], path: str, value: Any) -> None:
    """Set ``path`` in ``document``, making the intermediate objects it needs (a dotted field
    name ``custom_fields.enginy_id`` writes into the ``custom_fields`` object)."""
    parts = split_path(path)
    if not parts:
        raise ValueError("cannot set the empty path")
    current = document
    for part in parts[:-1]:
        child = current.get(part)
        if not isinstance(child, dict):
            child = {}
            current[part] = child
        current = child
    current[parts[-1]] = value


def flatten(document: Mapping[str, Any], paths: list[str]) -> dict[str, Any]:
    """``{path: value}`` for each of ``paths`` present in ``document``."""
    out: dict[str, Any] = {}
    for path in paths:
        value = get_path(document, path)
        if value is not MISSING:
            out[path] = value
    return out
