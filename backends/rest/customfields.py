"""Fields the CRM has no column for: ``unknown_fields:`` per resource, one component per policy.

Enginy sends any field name it likes (user-named engagement fields, ``campaignOpens``...); the
front renames the mapped ones, and the rest reach the driver under their own names. A resource's
``fields`` lists the API's own fields; every other field follows ``unknown_fields``:

* ``drop``: left out, and named in the answer's ``warnings``;
* ``reject``: refused, the record fails with ``invalid_record``;
* ``passthrough``: sent under its own name (schemaless APIs that keep any key);
* ``object``: kept under a JSON object field (``path: extra``); ``merge: client`` when the API
  replaces that object whole on update (Directus), so the driver sends the merged object;
* ``defined``: a custom field of the CRM, defined by the driver the first time it is written
  (through the manifest's ``custom_fields`` operations), as the HubSpot driver creates
  properties; the value goes under ``container`` by the definition's key.

For ``defined``, a field's key is its name in ``slug`` form (``campaignOpens`` →
``campaign_opens``: custom-field keys are slugs in most CRMs) and its label is the name itself,
which is how the field is read back. The definition's type follows the first value written
(``types``: JSON type → the CRM's field type), so a number stays a number.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from cachetools import TTLCache
from pydantic import BaseModel, ConfigDict, Field, field_validator

from backends.base import BackendError, Conflict, Unavailable
from backends.rest.expr import slug
from backends.rest.paths import MISSING, check_path, get_path
from backends.rest.requests import ListSpec, Operation

__all__ = [
    "CustomFieldsApi",
    "DefinedUnknown",
    "DropUnknown",
    "FieldCatalog",
    "ObjectUnknown",
    "PassthroughUnknown",
    "RejectUnknown",
    "UnknownFields",
]

log = logging.getLogger("backends.rest")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DropUnknown(_Spec):
    type: Literal["drop"]


class RejectUnknown(_Spec):
    type: Literal["reject"]


class PassthroughUnknown(_Spec):
    type: Literal["passthrough"]


class ObjectUnknown(_Spec):
    type: Literal["object"]
    path: str
    #: ``server``: the API merges the object on update; ``client``: it replaces it, so the
    #: driver reads the record and sends the merged object.
    merge: Literal["server", "client"] = "server"

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return check_path(value)


class DefinedUnknown(_Spec):
    type: Literal["defined"]
    #: Where custom values live in a record (``custom_fields``; empty for top level).
    container: str = "custom_fields"
    #: The value of ``target`` in the custom-field operations (``Contact``, ``Account``...).
    target: str

    @field_validator("container")
    @classmethod
    def _path(cls, value: str) -> str:
        return check_path(value)


UnknownFields = DropUnknown | RejectUnknown | PassthroughUnknown | ObjectUnknown | DefinedUnknown

#: Roots the custom-field operations read.
LIST_ROOTS = {"target", "vars"}
DEFINE_ROOTS = {"target", "key", "label", "type", "filterable", "vars"}


class CustomFieldsApi(_Spec):
    """``custom_fields:``: how the CRM lists and defines its custom fields."""

    #: Lists the definitions (``response.items``); reads ``target``.
    list: ListSpec
    #: Defines one; reads ``target``, ``key``, ``label``, ``type``, ``filterable``.
    define: Operation
    key_path: str = "key"
    label_path: str = "label"
    #: Item path of a definition's target, when ``list`` answers for every target at once.
    target_path: str | None = None
    #: ``key``: the driver names a field's key (a slug of its name); ``label``: the CRM
    #: assigns keys, and fields are found by label (Pipedrive).
    keys_by: Literal["key", "label"] = "key"
    #: With ``keys_by: label``, where the definition's answer holds the new key.
    define_key: str = "data.key"
    #: JSON type of the first value → the CRM's field type.
    types: dict[str, str] = Field(
        default_factory=lambda: {"string": "text", "number": "number", "boolean": "checkbox"}
    )
    #: How long a list of definitions is trusted.
    ttl_seconds: float = Field(600.0, ge=0)

    @field_validator("types")
    @classmethod
    def _types(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - {"string", "number", "boolean"})
        if unknown:
            raise ValueError(f"keys are JSON types (string, number, boolean), not {unknown}")
        return value

    @field_validator("key_path", "label_path", "target_path", "define_key")
    @classmethod
    def _paths(cls, value: str | None) -> str | None:
        return None if value is None else check_path(value)


Send = Callable[[Operation, Mapping[str, Any]], Awaitable[Any]]
Items = Callable[[Operation, Mapping[str, Any]], Awaitable[list[Any]]]


def _json_type(value: Any) -> Literal["string", "number", "boolean"]:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string"


class FieldCatalog:
    """The CRM's custom-field definitions per target: read once, defined when missing.

    With ``keys_by: key`` the driver chooses a field's key (its name as a slug); with
    ``keys_by: label`` the CRM assigns keys (Pipedrive's 40-character hashes) and a field is
    found by its label, the name the driver defined it with.
    """

    def __init__(
        self,
        api: CustomFieldsApi,
        send: Send,
        items: Items,
        *,
        timer: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        attempts: int = 4,
    ) -> None:
        self.api, self._send, self._items = api, send, items
        self._sleep, self.attempts = sleep, attempts
        self._cache: TTLCache[str, dict[str, str]] = TTLCache(
            maxsize=64, ttl=api.ttl_seconds or 1e-9, timer=timer
        )
        #: label → key per target, kept past the cache's life (keys never change).
        self._labels: dict[str, dict[str, str]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        #: Definitions made by this process (for logs and tests).
        self.defined: list[tuple[str, str]] = []

    @property
    def by_label(self) -> bool:
        return self.api.keys_by == "label"

    def _lock(self, target: str) -> asyncio.Lock:
        return self._locks.setdefault(target, asyncio.Lock())

    async def keys(self, target: str, *, fresh: bool = False) -> dict[str, str]:
        """``{key: label}`` of ``target``'s definitions."""
        if not fresh and target in self._cache:
            return self._cache[target]
        found: dict[str, str] = {}
        for item in await self._items(self.api.list, {"target": target}):
            if self.api.target_path is not None:
                owner = get_path(item, self.api.target_path)
                if owner is not MISSING and str(owner) != target:
                    continue
            key = get_path(item, self.api.key_path)
            label = get_path(item, self.api.label_path)
            if key not in (MISSING, None):
                found[str(key)] = str(label) if label not in (MISSING, None) else str(key)
        self._cache[target] = found
        self._labels.setdefault(target, {}).update({v: k for k, v in found.items()})
        return found

    def key_of(self, target: str, label: str) -> str | None:
        """The key a label was last seen with (``keys_by: label``), without a call."""
        return self._labels.get(target, {}).get(label)

    def name_of(self, key: str, label: str) -> str:
        """The field name a stored key reads back as: the label of a field the driver defined
        (``campaignOpens``), the key of one an administrator made (``lead_source``)."""
        return label if self.by_label or slug(label) == key else key

    async def names(self, target: str) -> dict[str, str]:
        """``{key: field name}`` for reading records."""
        return {key: self.name_of(key, label) for key, label in (await self.keys(target)).items()}

    def _lookup(self, definitions: Mapping[str, str], name: str, key: str) -> str | None:
        if self.by_label:
            return next((k for k, label in definitions.items() if label == name), None)
        return key if key in definitions else None

    async def find(self, target: str, name: str, key: str | None = None) -> str | None:
        """The key of field ``name`` on ``target`` when it is defined (nothing is defined)."""
        return self._lookup(await self.keys(target, fresh=True), name, key or slug(name))

    async def ensure(
        self,
        target: str,
        name: str,
        sample: Any,
        *,
        key: str | None = None,
        filterable: bool = False,
    ) -> str:
        """The key holding field ``name`` on ``target``, defined first when missing. Raises
        :class:`BackendError` when the CRM refuses the definition."""
        wanted = key or slug(name)
        found = self._lookup(await self.keys(target), name, wanted)
        if found is not None:
            return found
        async with self._lock(target):
            found = self._lookup(await self.keys(target, fresh=True), name, wanted)
            if found is not None:
                return found
            ctx = {
                "target": target,
                "key": wanted,
                "label": name,
                "type": self.api.types.get(_json_type(sample), "text"),
                "filterable": filterable,
            }
            try:
                answer = await self._define(target, name, wanted, ctx)
            except Conflict:
                answer = None  # defined meanwhile by another process: read it back
            except BackendError as exc:
                if exc.retryable:
                    raise
                raise BackendError(
                    f"cannot define custom field {name!r} on {target}: {exc.message}",
                    code=exc.code,
                ) from exc
            made = get_path(answer, self.api.define_key) if self.by_label else wanted
            if made in (MISSING, None):
                made = self._lookup(await self.keys(target, fresh=True), name, wanted)
            if made is None:
                raise BackendError(f"custom field {name!r} on {target} was defined but not listed")
            made = str(made)
            # Some APIs answer the definition before their list shows it.
            self._cache[target] = {**self._cache.get(target, {}), made: name}
            self._labels.setdefault(target, {})[name] = made
            self.defined.append((target, made))
            log.info("rest: defined custom field %s.%s (%s)", target, name, ctx["type"])
            return made

    async def _define(self, target: str, name: str, key: str, ctx: Mapping[str, Any]) -> Any:
        """Send the definition; when its answer is lost, look before sending it again."""
        for attempt in range(1, self.attempts + 1):
            try:
                return await self._send(self.api.define, ctx)
            except Unavailable:
                if attempt == self.attempts:
                    raise
                await self._sleep(min(30.0, 2.0 ** (attempt - 1)))
                made = self._lookup(await self.keys(target, fresh=True), name, key)
                if made is not None:
                    return {} if not self.by_label else None
        return None
