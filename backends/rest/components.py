"""Components chosen by a ``type`` key, and YAML paths that read as the YAML was written.

Every concern of the manifest (auth, pagination, find strategy, unknown fields) is a union of
small models told apart by their ``type``: :func:`tagged` builds that union for pydantic. The
tag that pydantic puts in an error's location (``auth.bearer.token``) is not in the YAML, so
:func:`without_tags` removes it: errors read ``backend.options.auth.token``.
"""

from __future__ import annotations

import typing
from typing import Annotated, Any, Union

from pydantic import Discriminator, Tag, ValidationError
from pydantic_core import PydanticCustomError

__all__ = ["TAG_PREFIX", "tagged", "without_tags"]

#: Marks a union tag inside an error location (never a YAML key: keys have no ``=``).
TAG_PREFIX = "type="


def _type_of(value: Any) -> str | None:
    found = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return f"{TAG_PREFIX}{found}" if isinstance(found, str) else None


def tagged(union: Any) -> Any:
    """``A | B | C`` (models with a ``type: Literal[...]``) as a union chosen by ``type``, whose
    error for a wrong or missing ``type`` lists the known ones."""
    members = typing.get_args(union)
    names = [typing.get_args(m.model_fields["type"].annotation)[0] for m in members]
    tags = [Annotated[m, Tag(f"{TAG_PREFIX}{n}")] for m, n in zip(members, names, strict=True)]
    return Annotated[
        Union[tuple(tags)],  # noqa: UP007 - built at run time from a tuple
        Discriminator(
            _type_of,
            custom_error_type="unknown_type",
            custom_error_message=f"needs a type, one of: {', '.join(names)}",
        ),
    ]


def without_tags(exc: ValidationError) -> ValidationError:
    """The same errors with the union tags taken out of their locations."""
    errors: list[Any] = []
    for error in exc.errors(include_url=False):
        loc = tuple(
            p for p in error["loc"] if not (isinstance(p, str) and p.startswith(TAG_PREFIX))
        )
        message = str(error["msg"]).replace("{", "{{").replace("}", "}}")
        errors.append(
            {
                "type": PydanticCustomError(error["type"], message),
                "loc": loc,
                "input": error.get("input"),
            }
        )
    return ValidationError.from_exception_data(exc.title, errors)
