"""Match keys: the normalisers and the per-entity keys that ``/contacts/sync`` and
``/companies/sync`` use to find records that already exist (contract Part A.7).

The front normalises once, here, and hands drivers ready-made key values: on create every
configured key is stored with the record (:meth:`Matcher.match_keys`), on update the keys whose
field changed are refreshed (:meth:`Matcher.changed_match_keys`), and on sync the same function
turns Enginy's values into the values a driver looks up. Because both sides go through the same
normaliser, ``https://www.Acme.com/about`` finds a record created with ``acme.com``.

Every normaliser takes any object and returns a non-empty string or ``None``: a value that is not
a string, or that is empty once normalised, is not a key (it must never match another empty key).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from adapter.config import DEFAULT_MATCH_KEYS, KeySpec
from backends.base import EXTERNAL_ID, Entity
from backends.keys import (
    NORMALISERS,
    Normaliser,
    compound_value,
    normalise_domain,
    normalise_domain_any_extension,
    normalise_email,
    normalise_linkedin_url,
    normalise_name,
    normalise_phone,
)

__all__ = [
    "NORMALISERS",
    "Matcher",
    "normalise_domain",
    "normalise_domain_any_extension",
    "normalise_email",
    "normalise_linkedin_url",
    "normalise_name",
    "normalise_phone",
]


class _Plan:
    """One key, resolved: its name, the fields it reads and how it turns them into a value."""

    __slots__ = ("compound", "fields", "name", "parts")

    def __init__(self, spec: KeySpec) -> None:
        self.name = spec.field
        self.fields = frozenset(spec.fields)
        self.compound = bool(spec.parts)
        specs = spec.parts or (spec,)
        self.parts = tuple((p.field, NORMALISERS[p.normaliser]) for p in specs)

    def value(self, fields: Mapping[str, object]) -> str | None:
        if not self.compound:
            name, normalise = self.parts[0]
            raw = fields.get(name)
            return None if raw is None else normalise(raw)
        values = []
        for name, normalise in self.parts:
            raw = fields.get(name)
            part = None if raw is None else normalise(raw)
            if part is None:
                return None  # a compound key needs every part
            values.append(part)
        return compound_value(values)


class Matcher:
    """Computes normalised match keys for records, per entity, in priority order.

    A key is one field through a normaliser, or a compound key (first name + last name +
    company) whose value is its normalised parts, present only when every part is. The keys of
    an entity are alternatives (LinkedIn URL, *or* first + last + company): sync tries them in
    priority order for the records still unmatched.
    """

    def __init__(self, keys: Mapping[Entity, Sequence[KeySpec]] = DEFAULT_MATCH_KEYS) -> None:
        self._keys: dict[Entity, tuple[KeySpec, ...]] = {}
        for entity in Entity:
            specs = tuple(keys.get(entity, ()))
            for spec in specs:
                for part in spec.parts or (spec,):
                    if part.normaliser not in NORMALISERS:
                        raise ValueError(
                            f"unknown normaliser {part.normaliser!r} for match key "
                            f"{spec.field!r}; known: {', '.join(sorted(NORMALISERS))}"
                        )
                    if part.field == EXTERNAL_ID:
                        raise ValueError(f"{EXTERNAL_ID} is always matched first; do not list it")
            names = [spec.field for spec in specs]
            if len(set(names)) != len(names):
                raise ValueError(f"a match key is listed twice for {entity.plural}")
            self._keys[entity] = specs
        # Resolved once, used for every record.
        self._plans: dict[Entity, tuple[_Plan, ...]] = {
            entity: tuple(_Plan(spec) for spec in specs) for entity, specs in self._keys.items()
        }
        self._by_name = {
            (entity, plan.name): plan for entity, plans in self._plans.items() for plan in plans
        }
        # For match_keys, run for every created record: a key of one field as (name, field,
        # normaliser), read inline; a compound key through its plan.
        self._steps: dict[Entity, tuple[tuple[str, str, Normaliser | None, _Plan], ...]] = {
            entity: tuple(
                (p.name, p.parts[0][0], None if p.compound else p.parts[0][1], p) for p in plans
            )
            for entity, plans in self._plans.items()
        }

    def keys_for(self, entity: Entity) -> tuple[KeySpec, ...]:
        """The configured keys of ``entity``, highest priority first."""
        return self._keys[entity]

    def normalise(self, spec: KeySpec, value: object) -> str | None:
        """Normalise one value the way single-field key ``spec`` does."""
        return NORMALISERS[spec.normaliser](value)

    def value_of(self, entity: Entity, spec: KeySpec, fields: Mapping[str, object]) -> str | None:
        """The value key ``spec`` takes for a record (Enginy-named ``fields``), ``None`` when
        a field it reads is missing or does not normalise (used on the sync lookup side)."""
        return self._by_name[(entity, spec.field)].value(fields)

    def match_keys(self, entity: Entity, fields: Mapping[str, object]) -> dict[str, str]:
        """Keys to store with a new record: every configured key whose fields are present in
        ``fields`` and normalise to a value. ``fields`` are in Enginy's vocabulary."""
        found: dict[str, str] = {}
        for name, field, normalise, plan in self._steps[entity]:
            if normalise is None:
                key = plan.value(fields)
            else:
                raw = fields.get(field)
                key = None if raw is None else normalise(raw)
            if key is not None:
                found[name] = key
        return found

    def needs_stored(
        self, entity: Entity, fields: Mapping[str, object], cleared: Iterable[str] = ()
    ) -> frozenset[str]:
        """The Enginy fields :meth:`changed_match_keys` needs from the stored record: those of a
        compound key that the update touches only in part (empty: none)."""
        touched = set(fields) | set(cleared)
        wanted: set[str] = set()
        for plan in self._plans[entity]:
            if plan.compound and plan.fields & touched and not plan.fields <= touched:
                wanted |= plan.fields - touched
        return frozenset(wanted)

    def changed_match_keys(
        self,
        entity: Entity,
        fields: Mapping[str, object],
        cleared: Iterable[str] = (),
        stored: Mapping[str, object] | None = None,
    ) -> dict[str, str | None]:
        """Keys to refresh on a partial update.

        ``fields`` are the Enginy-named values being set and ``cleared`` the Enginy names being
        removed. A key whose field is set gets its new value (``None`` when that value does not
        normalise, so the stale key is removed); a key whose field is cleared gets ``None``;
        keys of untouched fields are absent, so the driver keeps them. A compound key touched
        in part takes its other parts from ``stored`` (see :meth:`needs_stored`).
        """
        cleared_names = set(cleared)
        touched = set(fields) | cleared_names
        merged: dict[str, object] = {**(stored or {}), **fields}
        for name in cleared_names:
            merged.pop(name, None)
        changed: dict[str, str | None] = {}
        for plan in self._plans[entity]:
            if plan.fields & touched:
                changed[plan.name] = plan.value(merged)
        return changed
