"""Field mapping between Enginy's field names and the backend's (contract Part A.8).

Mapping happens once, in the front: drivers only ever see backend names. Each entity has one
:class:`FieldMapper` built from the driver's ``default_field_map`` overridden by the YAML
``mapping.<entity>.fields``. Enginy sends any field name it likes (user-named engagement fields
included); a name without a mapping follows the entity's :class:`UnmappedPolicy`.

``externalId`` and ``crmId`` are the envelope of a record, not fields: they never go through
the mapper (:meth:`FieldMapper.to_backend` leaves them out if they are passed by mistake).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from cachetools import LRUCache

from adapter.config import ConfigError, MappingConfig, UnmappedPolicy
from backends.base import Entity

__all__ = [
    "ENVELOPE_FIELDS",
    "FIELD_ALIASES",
    "FieldMapper",
    "UnmappedField",
    "build_mappers",
    "canonical_name",
]

logger = logging.getLogger("adapter.mapping")

#: Enginy synonyms, canonicalised before anything else: the create docs say
#: ``numberOfEmployees`` and the sync example says ``employeeCount`` for the same value.
FIELD_ALIASES: dict[str, str] = {"employeeCount": "numberOfEmployees"}

#: Keys of a record that identify it rather than describe it.
ENVELOPE_FIELDS: frozenset[str] = frozenset({"externalId", "crmId"})


def canonical_name(name: str) -> str:
    """The canonical Enginy name of ``name`` (resolves :data:`FIELD_ALIASES`)."""
    return FIELD_ALIASES.get(name, name)


class UnmappedField(Exception):
    """A record carries fields that have no mapping while the policy is ``reject``."""

    def __init__(self, fields: Sequence[str]) -> None:
        self.fields: tuple[str, ...] = tuple(fields)
        super().__init__(f"no field mapping for: {', '.join(self.fields)}")


#: How many dropped field names are remembered as already warned about.
WARNED_NAMES = 1024

# Field names already warned about under the ``drop`` policy, process-wide, so that a batch
# of 100 records with the same unknown field logs one line, not a hundred. Names are input:
# the most recent WARNED_NAMES are remembered, as fixed-size digests, so that a client sending
# ever new (or huge) names cannot grow the set.
_warned_dropped: LRUCache[bytes, None] = LRUCache(maxsize=WARNED_NAMES)
_warned_lock = threading.Lock()


def _warn_dropped(name: str) -> None:
    digest = hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    with _warned_lock:
        if digest in _warned_dropped:
            return
        _warned_dropped[digest] = None
    logger.warning(
        "dropping field %r: it has no mapping and the unmapped policy is 'drop' "
        "(logged once per field name)",
        name[:64],
    )


class FieldMapper:
    """Renames one entity's fields between Enginy's vocabulary and the backend's.

    ``fields`` maps Enginy names to backend names (aliases such as ``employeeCount`` are
    accepted and canonicalised). ``sync_back``, when set, is the list of Enginy names that
    :meth:`from_backend` returns; otherwise it returns every field it can name.
    """

    def __init__(
        self,
        fields: Mapping[str, str],
        unmapped: UnmappedPolicy = UnmappedPolicy.KEEP,
        sync_back: Sequence[str] | None = None,
    ) -> None:
        self.unmapped = UnmappedPolicy(unmapped)
        self._to_backend: dict[str, str] = {}
        for enginy_name, backend_name in fields.items():
            self._to_backend[canonical_name(enginy_name)] = backend_name
        self._to_enginy: dict[str, str] = {}
        for enginy_name, backend_name in self._to_backend.items():
            other = self._to_enginy.setdefault(backend_name, enginy_name)
            if other != enginy_name:
                raise ValueError(
                    f"fields {other!r} and {enginy_name!r} both map to {backend_name!r}"
                )
        self.sync_back: tuple[str, ...] | None = (
            None
            if sync_back is None
            else tuple(dict.fromkeys(canonical_name(name) for name in sync_back))
        )
        # Precomputed so that both directions are one pass over a record (they run for every
        # record of every batch). A kept unmapped name must not overwrite a mapped field:
        # towards the backend, the names that are some mapped field's backend name ...
        self._taken_in_backend = frozenset(self._to_enginy) - frozenset(self._to_backend)
        # ... and back towards Enginy, the Enginy names that are mapped to another backend name.
        self._shadowed_in_enginy = frozenset(self._to_backend) - frozenset(self._to_enginy)
        self._keep = self.unmapped is UnmappedPolicy.KEEP
        # The Enginy names that to_backend does not copy verbatim under ``keep``: aliases,
        # renamed fields and kept names that would overwrite a mapped field.
        self._not_verbatim = (
            frozenset(FIELD_ALIASES)
            | self._taken_in_backend
            | {name for name, backend in self._to_backend.items() if name != backend}
        )

    @property
    def fields(self) -> Mapping[str, str]:
        """The effective Enginy → backend map (canonical names)."""
        return dict(self._to_backend)

    def backend_name(self, enginy_name: str) -> str:
        """The backend field holding Enginy field ``enginy_name`` (itself when unmapped)."""
        name = canonical_name(enginy_name)
        return self._to_backend.get(name, name)

    def enginy_name(self, backend_name: str) -> str:
        """The Enginy name of backend field ``backend_name`` (itself when unmapped)."""
        return self._to_enginy.get(backend_name, backend_name)

    def to_backend(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Translate Enginy-named fields into backend-named ones.

        Aliases are canonicalised first (the canonical name wins when both are sent); mapped
        fields are renamed; unmapped ones are kept as-is, dropped (one warning per name per
        process) or, under ``reject``, make this raise :class:`UnmappedField` naming all of
        them. A kept unmapped name that is a mapped field's backend name is left out: it would
        overwrite that field, and read back as it. Returns a new dict; ``fields`` is not
        modified.
        """
        keep = self._keep
        if keep and self._not_verbatim.isdisjoint(fields):
            # The usual record (no mapping, or none that touches its fields) comes out as it
            # went in, envelope aside: one copy at C speed instead of a pass over its fields.
            out = dict(fields)
            for name in ENVELOPE_FIELDS:
                out.pop(name, None)
            return out
        to_backend = self._to_backend
        out = {}
        unmapped: list[str] = []
        for name, value in fields.items():
            if name in ENVELOPE_FIELDS:
                continue
            canonical = FIELD_ALIASES.get(name, name)
            if canonical != name and canonical in fields:
                continue  # the canonical spelling was sent too; it wins
            backend = to_backend.get(canonical)
            if backend is not None:
                out[backend] = value
            elif not keep:
                unmapped.append(canonical)
            elif canonical not in self._taken_in_backend:
                out[canonical] = value
        if unmapped:
            if self.unmapped is UnmappedPolicy.REJECT:
                raise UnmappedField(unmapped)
            for name in unmapped:
                _warn_dropped(name)
        return out

    def from_backend(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Translate backend-named fields into Enginy names (``properties`` of a sync result).

        With ``sync_back`` set, exactly those Enginy fields that the record holds are returned.
        Otherwise mapped fields are renamed back, and unmapped backend fields are returned
        under their own name only under the ``keep`` policy (that is where Enginy-named custom
        fields live); under ``drop``/``reject`` the map is the whole shared vocabulary, so
        backend-only fields (internal ids, timestamps) stay private. A backend field named
        like an Enginy field that is mapped elsewhere is not returned (the mapped one is).
        """
        if self.sync_back is not None:
            picked: dict[str, Any] = {}
            for name in self.sync_back:
                backend = self.backend_name(name)
                if backend in fields:
                    picked[name] = fields[backend]
            return picked

        to_enginy = self._to_enginy
        if not to_enginy:
            return dict(fields) if self._keep else {}
        keep = self._keep
        shadowed = self._shadowed_in_enginy
        result: dict[str, Any] = {}
        for backend, value in fields.items():
            enginy = to_enginy.get(backend)
            if enginy is not None:
                result[enginy] = value
            elif keep and backend not in shadowed:
                result[backend] = value
        return result


def build_mappers(
    config: MappingConfig, defaults: Mapping[Entity, Mapping[str, str]]
) -> dict[Entity, FieldMapper]:
    """One :class:`FieldMapper` per entity: the driver's ``default_field_map`` for that entity,
    overridden field by field by the YAML ``mapping.<entity>.fields``.

    Raises :class:`adapter.config.ConfigError` (path ``mapping.<entity>.fields``) when two
    Enginy fields end up on the same backend field.
    """
    mappers: dict[Entity, FieldMapper] = {}
    for entity in Entity:
        entity_config = config.for_entity(entity)
        merged = {canonical_name(k): v for k, v in defaults.get(entity, {}).items()}
        merged.update({canonical_name(k): v for k, v in entity_config.fields.items()})
        try:
            mappers[entity] = FieldMapper(merged, entity_config.unmapped, entity_config.sync_back)
        except ValueError as exc:
            raise ConfigError(str(exc), path=f"mapping.{entity.plural}.fields") from exc
    return mappers
