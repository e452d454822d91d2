"""A resource's records between the driver interface and the API's JSON.

Writing, a record's fields (backend names from the front's mapping) become the ``fields`` root
of the templates: the API's own fields where they are, unknown fields where their policy puts
them (:mod:`backends.rest.customfields`), the external id and the driver-kept keys at their
paths, every dotted name as a nested object (``custom_fields.enginy_id`` → ``{"custom_fields":
{"enginy_id": ...}}``). Reading, the same paths give a :class:`~backends.base.StoredRecord`
back, unknown fields under the names they were written with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backends.base import BackendError, InvalidRecord, StoredRecord, Unavailable
from backends.rest.customfields import (
    DefinedUnknown,
    FieldCatalog,
    ObjectUnknown,
    PassthroughUnknown,
    RejectUnknown,
)
from backends.rest.expr import slug
from backends.rest.paths import MISSING, get_path, set_path, split_path
from backends.rest.resources import RecordResource

__all__ = ["RecordCodec", "unflatten"]


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1, "c": 2}`` → ``{"a": {"b": 1}, "c": 2}``."""
    out: dict[str, Any] = {}
    for path, value in flat.items():
        set_path(out, path, value)
    return out


class RecordCodec:
    """Encodes and decodes one resource's records (see the module docstring)."""

    def __init__(self, spec: RecordResource, catalog: FieldCatalog | None) -> None:
        self.spec, self.catalog = spec, catalog
        self.native = None if spec.fields is None else frozenset(spec.fields)
        owned = [spec.external_id, *spec.keys.values()]
        self._owned = frozenset(owned)
        #: Top-level keys that are never fields (with ``fields: null``).
        self._hidden = frozenset(
            [split_path(p)[0] for p in [*owned, spec.record.id, *spec.record.exclude] if p]
            + [self._container_root()]
        ) - {""}

    def _container_root(self) -> str:
        policy = self.spec.unknown_fields
        if isinstance(policy, ObjectUnknown):
            return split_path(policy.path)[0]
        if isinstance(policy, DefinedUnknown) and policy.container:
            return split_path(policy.container)[0]
        return ""

    @property
    def merges_on_client(self) -> bool:
        policy = self.spec.unknown_fields
        return isinstance(policy, ObjectUnknown) and policy.merge == "client"

    def owned_custom_keys(self) -> list[str]:
        """Keys of the driver's own fields that live in the defined-fields container."""
        policy = self.spec.unknown_fields
        if not isinstance(policy, DefinedUnknown):
            return []
        prefix = split_path(policy.container)
        return [
            split_path(path)[-1]
            for path in self._owned
            if split_path(path)[:-1] == prefix and len(split_path(path)) == len(prefix) + 1
        ]

    def resolve(self, path: str) -> str:
        """``path`` with a custom field named by its label made its key, for CRMs that assign
        keys (``keys_by: label``: ``custom_fields.enginy_id`` → ``custom_fields.<hash>``)."""
        policy = self.spec.unknown_fields
        if not (isinstance(policy, DefinedUnknown) and self.catalog and self.catalog.by_label):
            return path
        prefix, parts = split_path(policy.container), split_path(path)
        if len(parts) == len(prefix) + 1 and parts[:-1] == prefix:
            key = self.catalog.key_of(policy.target, parts[-1])
            if key is not None:
                return ".".join([*prefix, key])
        return path

    async def encode(
        self,
        fields: Mapping[str, Any],
        *,
        external_id: str | None = None,
        keys: Mapping[str, str | None] | None = None,
        current: Mapping[str, Any] | None = None,
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """The ``fields`` root for a write, and the fields left out with why. Raises
        :class:`InvalidRecord` under ``unknown_fields: reject``; a ``None`` value clears."""
        flat: dict[str, Any] = {}
        dropped: dict[str, str] = {}
        policy = self.spec.unknown_fields
        for name, value in fields.items():
            known = self.native is None or name in self.native or name in self._owned
            if known or isinstance(policy, PassthroughUnknown):
                flat[name] = value
            elif isinstance(policy, RejectUnknown):
                raise InvalidRecord(f"the CRM has no field {name!r} (unknown_fields: reject)")
            elif isinstance(policy, ObjectUnknown):
                flat[f"{policy.path}.{name}"] = value
            elif isinstance(policy, DefinedUnknown):
                key = await self._defined_key(policy, name, value, dropped)
                if key is not None:
                    flat[f"{policy.container}.{key}" if policy.container else key] = value
            else:
                dropped[name] = "the CRM has no such field (unknown_fields: drop)"
        if external_id is not None:
            flat[self.resolve(self.spec.external_id)] = external_id
        for key_name, path in self.spec.keys.items():
            if keys is not None and key_name in keys:
                flat[self.resolve(path)] = keys[key_name]
        nested = unflatten(flat)
        if isinstance(policy, ObjectUnknown) and policy.merge == "client" and current is not None:
            sent = get_path(nested, policy.path)
            if sent is not MISSING:
                stored = get_path(current, policy.path)
                merged = {**(stored if isinstance(stored, Mapping) else {}), **sent}
                set_path(nested, policy.path, {k: v for k, v in merged.items() if v is not None})
        return nested, dropped

    async def _defined_key(
        self, policy: DefinedUnknown, name: str, value: Any, dropped: dict[str, str]
    ) -> str | None:
        assert self.catalog is not None  # the manifest requires custom_fields for 'defined'
        if value is None:  # clearing: only a field that exists can hold a value
            key = slug(name)
            return key if key in await self.catalog.keys(policy.target) else None
        try:
            return await self.catalog.ensure(policy.target, name, value)
        except Unavailable:
            raise
        except BackendError as exc:
            dropped[name] = exc.message
            return None

    async def decode(self, raw: Any) -> StoredRecord | None:
        """The stored record in ``raw`` (``None`` when it has no id)."""
        if not isinstance(raw, Mapping):
            return None
        crm_id = get_path(raw, self.spec.record.id)
        if crm_id in (MISSING, None, ""):
            return None
        ext = get_path(raw, self.resolve(self.spec.external_id))
        fields: dict[str, Any] = {}
        if self.native is not None:
            for path in self.native - self._owned:
                value = get_path(raw, path)
                if value is not MISSING and value is not None:
                    fields[path] = value
        else:
            for key, value in raw.items():
                if key not in self._hidden and value is not None:
                    fields[key] = value
        fields.update(await self._unknown_fields(raw))
        for name, template in self.spec.record.read.items():
            value = template.evaluate({"record": raw})
            if value is MISSING or value is None or value == []:
                fields.pop(name, None)
            else:
                fields[name] = value
        return StoredRecord(
            crm_id=str(crm_id),
            external_id=None if ext in (MISSING, None, "") else str(ext),
            fields=fields,
        )

    async def _unknown_fields(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        policy = self.spec.unknown_fields
        out: dict[str, Any] = {}
        if isinstance(policy, ObjectUnknown):
            container = get_path(raw, policy.path)
            if isinstance(container, Mapping):
                out.update({k: v for k, v in container.items() if v is not None})
        elif isinstance(policy, DefinedUnknown) and self.catalog is not None:
            container = get_path(raw, policy.container) if policy.container else raw
            if isinstance(container, Mapping):
                names = await self.catalog.names(policy.target)
                owned = {split_path(self.resolve(p))[-1] for p in self._owned}
                for key, value in container.items():
                    if key not in owned and value is not None and key in names:
                        out[names[key]] = value
        return out
