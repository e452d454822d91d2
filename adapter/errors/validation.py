"""A validation failure in words: ``contacts[3].externalId: field required; ...``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["format_loc", "format_validation_error"]

_PLAIN_MESSAGES = {
    "missing": "field required",
    "string_too_short": "must not be empty",
    "string_pattern_mismatch": "must not be blank",
    "model_type": "expected a JSON object",
    "model_attributes_type": "expected a JSON object",
    "dict_type": "expected a JSON object",
    "list_type": "expected a JSON array",
    "string_type": "expected a string",
    "bool_type": "expected a boolean",
    "bool_parsing": "expected a boolean",
}


def format_loc(loc: Sequence[int | str]) -> str:
    """A pydantic location as a path: ``("contacts", 3, "externalId")`` →
    ``contacts[3].externalId`` (``""`` for the top level)."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


#: The branch names pydantic appends to the location of an error in a union: the identifiers
#: of ``adapter/contract/`` are "a string or an integer", which is one field to Enginy.
_UNION_BRANCHES = frozenset({"str", "int", "constrained-str", "function-after[str(), int]"})


def _merge_union_branches(errors: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    merged: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for error in errors:
        loc = tuple(error["loc"])
        if len(loc) > 1 and loc[-1] in _UNION_BRANCHES:
            loc = loc[:-1]
        merged.setdefault(loc, []).append({**error, "loc": loc})
    out: list[Mapping[str, Any]] = []
    for loc, group in merged.items():
        if len(group) == 1:
            out.append(group[0])
            continue
        # A constraint of one branch ("must not be empty") says more than "wrong type" twice.
        specific = [e for e in group if not str(e["type"]).endswith("_type")]
        out.append(
            specific[0]
            if specific
            else {"type": "id_type", "loc": loc, "msg": "expected a string or an integer"}
        )
    return out


def format_validation_error(errors: Sequence[Mapping[str, Any]], limit: int = 5) -> str:
    """``contacts[3].externalId: field required; ...`` (at most ``limit`` problems named)."""
    errors = _merge_union_branches(errors)
    parts = []
    for error in errors[:limit]:
        msg = _PLAIN_MESSAGES.get(error["type"], error["msg"])
        parts.append(f"{format_loc(error['loc']) or 'body'}: {msg}")
    if len(errors) > limit:
        parts.append(f"and {len(errors) - limit} more")
    return "; ".join(parts)
