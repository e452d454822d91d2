"""Configuration errors: :class:`ConfigError`, and pydantic's errors turned into one.

Every problem of the configuration is a :class:`ConfigError` whose message starts with the YAML
path of the offending key (``backend.options.pool_size: ...``) and never contains a value, so
that it is safe to print and to log.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from adapter.errors.validation import format_loc

__all__ = ["ConfigError", "format_loc", "format_validation_error"]


class ConfigError(Exception):
    """The configuration is invalid. The message starts with the YAML path of the offending key
    (or the file / environment variable concerned) and never contains a configured value."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        self.detail = message
        super().__init__(f"{path}: {message}" if path else message)


def _find_model(annotation: Any) -> type[BaseModel] | None:
    """The model class inside an annotation (``Model``, ``list[Model] | None``, ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _find_model(arg)
        if found is not None:
            return found
    return None


def _model_at(model: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The model class that holds the key at ``loc[-1]`` (to suggest a spelling)."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        info = current.model_fields.get(part) if current is not None else None
        if info is None:
            return None
        current = _find_model(info.annotation)
    return current


def format_validation_error(
    exc: ValidationError,
    *,
    prefix: str = "",
    model: type[BaseModel] | None = None,
    sources: Mapping[str, str] | None = None,
) -> ConfigError:
    """Turn a pydantic error into a one-line :class:`ConfigError`.

    Each problem reads ``<yaml.path>: <reason>``; the input value is never included (pydantic's
    ``msg`` does not contain it, its ``input`` field does and is not used). ``prefix`` is
    prepended to each path (``backend.options``); ``model`` enables "did you mean" for unknown
    keys; ``sources`` names the environment variable a path came from.
    """
    problems: list[str] = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = [part for part in error["loc"] if part != "__root__"]
        # A failed union member adds the member's type name to the location; drop it.
        loc = [p for p in loc if not (isinstance(p, str) and ("[" in p or p in _TYPE_TAGS))]
        path = format_loc([*prefix.split("."), *loc] if prefix else loc) or "(top level)"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown option"
            owner = _model_at(model, loc) if model is not None and loc else None
            if owner is not None and isinstance(loc[-1], str):
                close = difflib.get_close_matches(loc[-1], list(owner.model_fields), n=1)
                if close:
                    message += f" (did you mean {close[0]!r}?)"
                else:
                    message += f" (known: {', '.join(owner.model_fields)})"
        elif error["type"] == "missing":
            message = "required option is missing"
        if sources and path in sources:
            path = f"{path} (from {sources[path]})"
        problems.append(f"{path}: {message}")
    # Deduplicate (a union reports the same location per member) while keeping order.
    unique = list(dict.fromkeys(problems))
    return ConfigError("; ".join(unique))


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "dict", "list", "MatchKeyConfig"})
