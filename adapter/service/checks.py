"""What the front refuses before a write reaches a driver: values no store can hold, and keys
that are almost the contract's.

* **Numbers that are not finite.** JSON has no infinity, but ``1e400`` parses as one (too large
  for a double). Stored, it becomes a token that is not JSON (``Infinity``: SQLite then refuses
  the whole batch as "malformed JSON") or a silent null. :func:`non_finite_path` finds the first
  such value in a record, an activity or a task, so that it is that record's error (A.5) or the
  request's 400, naming the field, on every driver alike.
* **Keys that are almost a field.** Activities and tasks keep unknown keys (handed to the
  driver as ``extra``), and the other objects ignore them: a misspelt ``contactID`` or
  ``contact_id`` on an activity would be saved unlinked with a 200. :func:`check_keys` answers 400
  for a key that is a near miss of one of the object's fields (same letters but for case,
  ``_``/``-``, or a typo), naming the field meant; any other unknown key is reported back in the
  answer's ``warnings`` (and logged once per name) instead of passing in silence.
* **A group the driver lacks.** :func:`require_capability` answers 501 for an optional group
  (associations, activities, tasks, users) the driver does not declare.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import math
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from cachetools import LRUCache
from pydantic import BaseModel

from adapter.contract import KeyWarning
from adapter.errors import ValidationFailed
from backends.base import Backend, Capability, Unsupported

__all__ = ["check_keys", "non_finite_path", "reject_non_finite", "require_capability"]

logger = logging.getLogger("adapter.service")

#: Similarity (difflib ratio) from which an unknown key is taken for a typo of a field.
_NEAR = 0.85
_FOLD = re.compile(r"[^a-z0-9]")

_reported: LRUCache[bytes, None] = LRUCache(maxsize=1024)
_reported_lock = threading.Lock()


def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def non_finite_path(value: Any, path: str = "") -> str | None:
    """The location (``metadata.score``, ``tags[2]``) of the first number in ``value`` that is
    not finite, or ``None``. ``value`` is parsed JSON: dicts, lists, strings, numbers."""
    kind = type(value)
    if kind is float:
        return None if math.isfinite(value) else (path or "body")
    if kind is dict:
        for key, item in value.items():
            found = non_finite_path(item, _path(path, key))
            if found is not None:
                return found
    elif kind is list:
        for index, item in enumerate(value):
            found = non_finite_path(item, _path(path, index))
            if found is not None:
                return found
    return None


NON_FINITE = "number out of range (too large for a double-precision number, so not storable)"


def reject_non_finite(values: Mapping[str, Any]) -> None:
    """Raise a 400 naming the first value of ``values`` that is not a finite number."""
    found = non_finite_path(dict(values))
    if found is not None:
        raise ValidationFailed(f"{found}: {NON_FINITE}")


def _fold(name: str) -> str:
    return _FOLD.sub("", name.lower())


def _meant(key: str, fields: Iterable[str]) -> str | None:
    """The field ``key`` is a near miss of, if any."""
    fields = list(fields)
    folded = _fold(key)
    for name in fields:
        if _fold(name) == folded:
            return name
    by_fold = {_fold(name): name for name in fields}
    close = difflib.get_close_matches(folded, list(by_fold), n=1, cutoff=_NEAR)
    return by_fold[close[0]] if close else None


def _wire_names(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def check_keys(item: BaseModel, what: str, *, where: str = "", kept: bool) -> list[KeyWarning]:
    """Check the unknown keys of ``item`` (a wire model that collects them in
    ``model_extra``): a near miss of one of its fields is a 400 naming the field meant; the
    others come back as warnings for the answer (``kept``: the driver gets them as extra data;
    otherwise they are ignored).

    ``what`` names the object in messages ("an activity"); ``where`` prefixes the key's
    location (``associations[3]``)."""
    extra = item.model_extra or {}
    if not extra:
        return []
    fields = _wire_names(type(item))
    problems = []
    for key in extra:
        meant = _meant(key, fields)
        if meant is not None:
            problems.append(f"{_path(where, key)}: not a field of {what}; did you mean {meant}?")
    if problems:
        raise ValidationFailed("; ".join(problems[:5]))
    fate = "passed to the backend as extra data" if kept else "ignored"
    warnings: list[KeyWarning] = []
    for key in extra:
        warnings.append(
            {
                "field": _path(where, key),
                "message": f"not a field of {what} in the contract; {fate}",
            }
        )
        _log_once(what, key, fate)
    return warnings


def _log_once(what: str, key: str, fate: str) -> None:
    digest = hashlib.blake2b(f"{what}\0{key}".encode("utf-8", "surrogatepass"), digest_size=16)
    with _reported_lock:
        if digest.digest() in _reported:
            return
        _reported[digest.digest()] = None
    logger.warning("unknown key %r on %s: %s (logged once per key)", key[:64], what, fate)


def require_capability(backend: Backend, capability: Capability, what: str) -> None:
    """One contract-level answer (501) for an optional group the driver lacks, before any work
    is done."""
    if capability not in backend.capabilities:
        raise Unsupported(f"the {backend.name} backend does not support {what}")
