"""The ``mapping:`` and ``matching:`` sections: field names and match keys, as data.

The vocabulary both sections are written in lives here too (the unmapped and null policies, the
normaliser names, the default match keys), so that the schema needs nothing from the modules
that act on it: :mod:`adapter.mapping` builds the field mappers from these sections and
:mod:`adapter.matching` implements the normalisers named here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from backends.base import EXTERNAL_ID, Entity

__all__ = [
    "DEFAULT_MATCH_KEYS",
    "DEFAULT_NORMALISER_BY_FIELD",
    "NORMALISER_NAMES",
    "EntityMappingConfig",
    "KeySpec",
    "MappingConfig",
    "MatchKeyConfig",
    "MatchKeyPart",
    "MatchingConfig",
    "NullPolicy",
    "UnmappedPolicy",
]


class Section(BaseModel):
    # Unknown keys are errors everywhere; new sections are added as new fields of Settings.
    model_config = ConfigDict(extra="forbid")


class UnmappedPolicy(enum.StrEnum):
    """What happens to an Enginy field that has no mapping."""

    #: Store it under its Enginy name (a custom field): nothing Enginy sends is lost.
    KEEP = "keep"
    #: Leave it out, logging one warning per field name.
    DROP = "drop"
    #: Fail that record with a per-record error naming the fields.
    REJECT = "reject"


class NullPolicy(enum.StrEnum):
    """What a ``null`` value in a partial update (``PUT``) means (contract Part A.6)."""

    #: A null is "no value sent": the stored value is kept.
    IGNORE = "ignore"
    #: A null clears the stored value.
    CLEAR = "clear"


#: The normalisers a match key may name in the YAML (implemented by :mod:`adapter.matching`).
#: ``domain_any_extension``: the domain without its extension, so that ``acme.com`` and
#: ``acme.es`` are one company.
NORMALISER_NAMES: tuple[str, ...] = (
    "email",
    "linkedin",
    "domain",
    "domain_any_extension",
    "name",
    "phone",
)
#: The normaliser of a part of a compound key whose field has no default one.
COMPOUND_PART_NORMALISER = "name"

#: The normaliser a match key gets when the YAML names only its field.
DEFAULT_NORMALISER_BY_FIELD: dict[str, str] = {
    "email": "email",
    "linkedinUrl": "linkedin",
    "domain": "domain",
    "name": "name",
    "phone": "phone",
    "mobilePhone": "phone",
}


@dataclass(frozen=True)
class KeySpec:
    """One configured match key: the Enginy field it reads and the normaliser it applies, or,
    for a compound key (first name + last name + company), its ``parts``.

    The match-key name handed to drivers (:attr:`backends.base.MatchKey.name`) is the field
    name itself (a compound key's: its fields joined by ``+``), so a key is stable across
    mapping changes.
    """

    field: str
    normaliser: str
    parts: tuple[KeySpec, ...] = ()

    @classmethod
    def compound(cls, parts: tuple[KeySpec, ...]) -> KeySpec:
        return cls("+".join(p.field for p in parts), "compound", parts)

    @property
    def fields(self) -> tuple[str, ...]:
        """The Enginy fields this key reads."""
        return tuple(p.field for p in self.parts) if self.parts else (self.field,)


#: The contract's default keys (Part A.7), in priority order.
DEFAULT_MATCH_KEYS: dict[Entity, tuple[KeySpec, ...]] = {
    Entity.CONTACT: (KeySpec("email", "email"), KeySpec("linkedinUrl", "linkedin")),
    Entity.COMPANY: (
        KeySpec("domain", "domain"),
        KeySpec("linkedinUrl", "linkedin"),
        KeySpec("name", "name"),
    ),
}


class EntityMappingConfig(Section):
    """``mapping.contacts`` / ``mapping.companies``."""

    #: Enginy field name → backend field name; overrides the driver's defaults field by field.
    fields: dict[str, str] = Field(default_factory=dict)
    unmapped: UnmappedPolicy = UnmappedPolicy.KEEP
    #: Enginy field names returned in ``properties`` by sync; ``null``: every mapped field.
    sync_back: list[str] | None = None
    nulls: NullPolicy = NullPolicy.IGNORE

    @field_validator("fields", mode="before")
    @classmethod
    def _null_fields(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("fields")
    @classmethod
    def _check_fields(cls, value: dict[str, str]) -> dict[str, str]:
        for enginy_name, backend_name in value.items():
            if enginy_name in (EXTERNAL_ID, "crmId"):
                raise ValueError(f"{enginy_name} identifies the record and cannot be mapped")
            if not enginy_name.strip() or not backend_name.strip():
                raise ValueError("field names must not be empty")
        return value


class MappingConfig(Section):
    """``mapping:`` — field names between Enginy and the backend, per entity."""

    contacts: EntityMappingConfig = Field(default_factory=EntityMappingConfig)
    companies: EntityMappingConfig = Field(default_factory=EntityMappingConfig)

    def for_entity(self, entity: Entity) -> EntityMappingConfig:
        return self.contacts if entity is Entity.CONTACT else self.companies


class MatchKeyPart(Section):
    """A part of a compound key: a field, with its default normaliser (``name`` when it has
    none) or the one given."""

    field: str = Field(min_length=1)
    normaliser: str | None = None

    @model_validator(mode="after")
    def _check(self) -> MatchKeyPart:
        if self.field == EXTERNAL_ID:
            raise ValueError(f"{EXTERNAL_ID} is always matched first; do not list it")
        if self.normaliser is not None and self.normaliser not in NORMALISER_NAMES:
            raise ValueError(
                f"unknown normaliser {self.normaliser!r} (one of: {', '.join(NORMALISER_NAMES)})"
            )
        return self

    def spec(self) -> KeySpec:
        normaliser = self.normaliser or DEFAULT_NORMALISER_BY_FIELD.get(
            self.field, COMPOUND_PART_NORMALISER
        )
        return KeySpec(self.field, normaliser)


class MatchKeyConfig(Section):
    """One match key: ``{field, normaliser}`` (a bare string is a field with its default
    normaliser), or a compound key ``{fields: [firstName, lastName, company]}`` that matches
    when every part matches (each part a field name, with its default normaliser or
    ``name``, or ``{field, normaliser}``)."""

    field: str | None = Field(default=None, min_length=1)
    normaliser: str | None = None
    fields: list[MatchKeyPart] | None = None

    @field_validator("fields", mode="before")
    @classmethod
    def _bare_parts(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"field": item} if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _resolve_normaliser(self) -> MatchKeyConfig:
        if (self.field is None) == (self.fields is None):
            raise ValueError("give 'field' (one field) or 'fields' (a compound key)")
        if self.fields is not None:
            if len(self.fields) < 2:
                raise ValueError("a compound key lists at least two fields")
            if self.normaliser is not None:
                raise ValueError("give each part of a compound key its own normaliser")
            names = [part.field for part in self.fields]
            if len(set(names)) != len(names):
                raise ValueError("a field is listed twice in the compound key")
            if len("+".join(names)) > 64:
                # Drivers index keys by name (the SQL driver in a 64-character column).
                raise ValueError("a compound key's name (its fields joined by +) is too long")
            return self
        if self.field == EXTERNAL_ID:
            raise ValueError(f"{EXTERNAL_ID} is always matched first; do not list it")
        if self.normaliser is None:
            default = DEFAULT_NORMALISER_BY_FIELD.get(self.field or "")
            if default is None:
                raise ValueError(
                    f"field {self.field!r} has no default normaliser; write "
                    f"{{field: {self.field}, normaliser: <{'|'.join(NORMALISER_NAMES)}>}}"
                )
            self.normaliser = default
        elif self.normaliser not in NORMALISER_NAMES:
            raise ValueError(
                f"unknown normaliser {self.normaliser!r} (one of: {', '.join(NORMALISER_NAMES)})"
            )
        return self

    @property
    def name(self) -> str:
        return self.spec().field

    def spec(self) -> KeySpec:
        if self.fields is not None:
            return KeySpec.compound(tuple(part.spec() for part in self.fields))
        assert self.field is not None and self.normaliser is not None  # resolved above
        return KeySpec(self.field, self.normaliser)


def _default_keys(entity: Entity) -> list[MatchKeyConfig]:
    return [
        MatchKeyConfig(field=k.field, normaliser=k.normaliser) for k in DEFAULT_MATCH_KEYS[entity]
    ]


class MatchingConfig(Section):
    """``matching:`` — the keys sync uses after ``externalId``, in priority order."""

    contacts: list[MatchKeyConfig] = Field(default_factory=lambda: _default_keys(Entity.CONTACT))
    companies: list[MatchKeyConfig] = Field(default_factory=lambda: _default_keys(Entity.COMPANY))

    @field_validator("contacts", "companies", mode="before")
    @classmethod
    def _bare_field_names(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, list):
            return [{"field": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("contacts", "companies")
    @classmethod
    def _no_duplicates(cls, value: list[MatchKeyConfig]) -> list[MatchKeyConfig]:
        names = [key.name for key in value]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"match key {name!r} is listed twice")
        return value

    def keys(self) -> dict[Entity, tuple[KeySpec, ...]]:
        """The keys in the form :class:`adapter.matching.Matcher` takes."""
        return {
            Entity.CONTACT: tuple(key.spec() for key in self.contacts),
            Entity.COMPANY: tuple(key.spec() for key in self.companies),
        }
