"""Components chosen by a ``type`` key.

Every concern of the manifest (auth, pagination, find strategy, unknown fields) is a union of
small models told apart by their ``type``: :func:`tagged` builds that union for pydantic. Pydantic
puts the chosen member's tag in an error's location; the tags are written ``[bearer]``, the
form of a union member's name that the configuration's error formatter
(``adapter/config/errors.py``) leaves out, so errors read ``backend.options.auth.token``.
"""

from __future__ import annotations

import typing
from typing import Annotated, Any, Union

from pydantic import Discriminator, Tag

__all__ = ["TAG_PREFIX", "tagged"]

#: Opens a union tag inside an error location (never a YAML key).
TAG_PREFIX = "["


def _type_of(value: Any) -> str | None:
    found = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return f"[{found}]" if isinstance(found, str) else None


def tagged(union: Any) -> Any:
    """``A | B | C`` (models with a ``type: Literal[...]``) as a union chosen by ``type``, whose
    error for a wrong or missing ``type`` lists the known ones."""
    members = typing.get_args(union)
    names = [typing.get_args(m.model_fields["type"].annotation)[0] for m in members]
    tags = [Annotated[m, Tag(f"[{n}]")] for m, n in zip(members, names, strict=True)]
    return Annotated[
        Union[tuple(tags)],  # noqa: UP007 - built at run time from a tuple
        Discriminator(
            _type_of,
            custom_error_type="unknown_type",
            custom_error_message=f"needs a type, one of: {', '.join(names)}",
        ),
    ]
