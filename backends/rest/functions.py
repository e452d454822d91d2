"""The functions of the manifest's expressions (``=value | lower | default("x")``): each takes
the piped value first, then its arguments; an absent value (:data:`~backends.rest.paths.MISSING`)
passes through most of them unchanged. The list, with what each does, is in
:mod:`backends.rest.expr`."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from backends.keys import normalise_for_key
from backends.rest.paths import MISSING

__all__ = ["FUNCTIONS", "slug", "string"]


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def slug(value: str) -> str:
    """A lower-case ``a-z0-9_`` key starting with a letter: ``campaignOpens`` →
    ``campaign_opens``, ``sim-1 field`` → ``sim_1_field``."""
    text = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", value)
    text = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return text if text[:1].isalpha() else f"f_{text}"


def _text(value: Any, fn: Callable[[str], Any]) -> Any:
    return fn(value) if isinstance(value, str) else value


def _join(value: Any, sep: Any) -> Any:
    if isinstance(value, list):
        parts = [str(v) for v in value if v is not None and v is not MISSING and v != ""]
        return str(sep).join(parts) if parts else MISSING
    return value if value is MISSING or value is None else str(value)


def _int(value: Any) -> Any:
    if isinstance(value, bool) or value is MISSING or value is None:
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        return value


def _array(value: Any) -> Any:
    if value is MISSING or isinstance(value, list):
        return value
    return [] if value is None else [value]


def _url(value: Any) -> Any:
    if isinstance(value, str) and value.strip() and "://" not in value:
        return "https://" + value.strip().lstrip("/")
    return value


def _date(value: Any) -> Any:
    when = _as_datetime(value)
    return value if when is None else when.date().isoformat()


def _datetime(value: Any) -> Any:
    when = _as_datetime(value)
    if when is None:
        return value
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _time(value: Any) -> Any:
    when = _as_datetime(value)
    return value if when is None else when.astimezone(UTC).strftime("%H:%M")


def _with(value: Any, key: Any, extra: Any) -> Any:
    return {**value, str(key): extra} if isinstance(value, Mapping) else value


def string(value: Any) -> Any:
    if value is MISSING or value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _datetime(value)
    return str(value)


def _truncate(value: Any, size: Any) -> Any:
    return value[: int(size)] if isinstance(value, str) else value


def _affix(value: Any, before: str, after: str) -> Any:
    return value if value is MISSING or value is None else f"{before}{value}{after}"


#: Function name → (arguments it takes, the function). ``map`` is bound to the tables.
FUNCTIONS: dict[str, tuple[tuple[int, int], Callable[..., Any]]] = {
    "default": ((1, 1), lambda v, d: d if v is MISSING or v is None else v),
    "otherwise": ((1, 1), lambda v, d: d if v is MISSING else v),
    "lower": ((0, 0), lambda v: _text(v, str.lower)),
    "upper": ((0, 0), lambda v: _text(v, str.upper)),
    "string": ((0, 0), string),
    "join": ((1, 1), _join),
    "array": ((0, 0), _array),
    "compact": (
        (0, 0),
        lambda v: [x for x in v if x not in (None, "", MISSING)] if isinstance(v, list) else v,
    ),
    "first": ((0, 0), lambda v: (v[0] if v else MISSING) if isinstance(v, list) else v),
    "url": ((0, 0), _url),
    "date": ((0, 0), _date),
    "datetime": ((0, 0), _datetime),
    "time": ((0, 0), _time),
    "with": ((2, 2), _with),
    "map": ((1, 2), lambda v, *a: v),  # resolved against the tables at evaluation
    "truncate": ((1, 1), _truncate),
    "prefix": ((1, 1), lambda v, p: _affix(v, str(p), "")),
    "suffix": ((1, 1), lambda v, s: _affix(v, "", str(s))),
    "slug": ((0, 0), lambda v: _text(v, slug)),
    "domain": ((0, 0), lambda v: _text(v, lambda t: normalise_for_key("domain", t) or t)),
    "int": ((0, 0), _int),
    "object": ((1, 1), lambda v, k: v if v is MISSING or v is None else {str(k): v}),
    "objects": ((1, 1), lambda v, k: [{str(k): x} for x in v] if isinstance(v, list) else v),
    "json": ((0, 0), lambda v: v if v is MISSING else json.dumps(v, separators=(",", ":"))),
    "when": ((1, 1), lambda v, c: v if c not in (MISSING, None, "", False, [], {}) else MISSING),
    "unless": ((1, 1), lambda v, c: MISSING if c not in (MISSING, None, "", False, [], {}) else v),
}
