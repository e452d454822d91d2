"""Shared fixtures and helpers of the conformance suite (see :mod:`backends.testing`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from backends.base import (
    Backend,
    Capability,
    Entity,
    MatchKey,
    NewRecord,
    RecordUpdate,
    StoredRecord,
    User,
)

__all__ = [
    "DEFAULT_RECORD_FIELDS",
    "MATCH_KEY_ROLES",
    "RecordFactory",
    "RecordFields",
    "SuiteBase",
    "require",
    "same_instant",
]

#: ``record_fields`` fixture type: entity -> {Enginy field name: backend field name}.
RecordFields = Callable[[Entity], Mapping[str, str]]

#: The fields the suite writes, by Enginy name, and the backend names a schemaless driver
#: (memory, SQL with ``unmapped: keep``) accepts as they are. Contacts need ``email``,
#: ``firstName`` and ``lastName``; companies need ``name`` and ``domain``; ``linkedinUrl`` is
#: optional for both (its match-key tests skip when the driver's mapping leaves it out).
DEFAULT_RECORD_FIELDS: dict[Entity, dict[str, str]] = {
    Entity.CONTACT: {
        "email": "email",
        "firstName": "firstName",
        "lastName": "lastName",
        "linkedinUrl": "linkedinUrl",
    },
    Entity.COMPANY: {"name": "name", "domain": "domain", "linkedinUrl": "linkedinUrl"},
}

#: Which of the suite's fields are match keys (the match-key name IS the Enginy field name).
MATCH_KEY_ROLES: dict[Entity, tuple[str, ...]] = {
    Entity.CONTACT: ("email", "linkedinUrl"),
    Entity.COMPANY: ("domain", "linkedinUrl", "name"),
}


def require(backend: Backend, capability: Capability) -> None:
    """Skip the calling test unless ``backend`` declares ``capability``."""
    if capability not in backend.capabilities:
        pytest.skip(f"driver does not declare Capability.{capability.name}")


def same_instant(a: datetime | None, b: datetime | None) -> bool:
    """Whether two times are the same instant to the second (naive values are read as UTC).

    Backends differ in precision (HubSpot keeps milliseconds, MariaDB ``DATETIME`` seconds)
    and some drivers of naive columns hand back naive UTC values.
    """
    if a is None or b is None:
        return a is b
    a = a if a.tzinfo else a.replace(tzinfo=UTC)
    b = b if b.tzinfo else b.replace(tzinfo=UTC)
    return abs((a - b).total_seconds()) < 1


class RecordFactory:
    """Builds records with values unique to one test, in the driver's field names.

    Every value is already in normalised form (lower-case email, bare domain, ...) and the
    match-key value equals the stored field value, so drivers that search the field itself
    (``MatchKey.field``) and drivers that store normalised keys both find it.
    """

    def __init__(self, record_fields: RecordFields) -> None:
        self._fields = record_fields
        self.token = uuid.uuid4().hex[:10]

    def has(self, entity: Entity, role: str) -> bool:
        return role in self._fields(entity)

    def field(self, entity: Entity, role: str) -> str:
        """The backend field name of the Enginy field ``role``."""
        return self._fields(entity)[role]

    def key(self, entity: Entity, role: str) -> MatchKey:
        """The match key stored under the Enginy field ``role``."""
        return MatchKey(role, field=self.field(entity, role))

    def value(self, entity: Entity, role: str, n: int) -> str:
        t = self.token
        values = {
            "email": f"ada.{t}.{n}@example.com",
            "firstName": f"Ada{n}",
            "lastName": f"Lovelace {t}",
            "name": f"acme {t} {n}",
            "domain": f"acme-{t}-{n}.example.com",
            "linkedinUrl": (
                f"linkedin.com/in/ada-{t}-{n}"
                if entity is Entity.CONTACT
                else f"linkedin.com/company/acme-{t}-{n}"
            ),
        }
        return values[role]

    def external_id(self, entity: Entity, n: int) -> str:
        return f"ext-{entity.value}-{self.token}-{n}"

    def new(
        self, entity: Entity, n: int = 0, *, external_id: str | None = None, **overrides: str
    ) -> NewRecord:
        """Record number ``n``; ``overrides`` replace values by Enginy field name."""
        values = {role: self.value(entity, role, n) for role in self._fields(entity)}
        values.update(overrides)
        return NewRecord(
            external_id=external_id or self.external_id(entity, n),
            fields={self.field(entity, role): v for role, v in values.items()},
            match_keys={r: values[r] for r in MATCH_KEY_ROLES[entity] if r in values},
        )

    def update(
        self, entity: Entity, crm_id: str, *, clear: tuple[str, ...] = (), **values: str
    ) -> RecordUpdate:
        """A partial update by Enginy field names, with the match keys it changes."""
        keys: dict[str, str | None] = {
            r: v for r, v in values.items() if r in MATCH_KEY_ROLES[entity]
        }
        keys.update({r: None for r in clear if r in MATCH_KEY_ROLES[entity]})
        return RecordUpdate(
            crm_id=crm_id,
            fields={self.field(entity, r): v for r, v in values.items()},
            clear=frozenset(self.field(entity, r) for r in clear),
            match_keys=keys,
        )

    def get(self, record: StoredRecord, entity: Entity, role: str) -> Any:
        """The value of Enginy field ``role`` in a stored record (``None`` when absent)."""
        return record.fields.get(self.field(entity, role))

    async def create(self, backend: Backend, entity: Entity, n: int = 0, **overrides: str) -> str:
        """Create record ``n`` and return its crm id (asserting success)."""
        result = await backend.create_record(entity, self.new(entity, n, **overrides))
        assert result.error is None, f"create_record failed: {result.error}"
        assert result.crm_id
        return result.crm_id


class SuiteBase:
    """Fixtures every suite class shares; a driver's test class may override any of them.

    Required from the driver: ``backend`` (an async fixture yielding an opened driver whose
    store is empty). May be overridden: ``anyio_backend``, ``record_fields``, ``missing_id``,
    ``expected_users``, ``number_field``.
    """

    @pytest.fixture
    def anyio_backend(self) -> str:
        """The event loop the async tests run on."""
        return "asyncio"

    @pytest.fixture
    def record_fields(self) -> RecordFields:
        """Backend field name for each Enginy field the suite writes, per entity.

        Override when the backend has a fixed schema, e.g. for HubSpot
        ``lambda e: {**DEFAULT_RECORD_FIELDS[e], "firstName": "firstname"}``.
        """
        return lambda entity: DEFAULT_RECORD_FIELDS[entity]

    @pytest.fixture
    def missing_id(self) -> str:
        """An id of the backend's id format that names no record, task or activity."""
        return "999999999"

    @pytest.fixture
    def expected_users(self) -> list[User] | None:
        """The users ``list_users`` must return (any order); ``None`` checks shape only."""
        return None

    @pytest.fixture
    def number_field(self) -> tuple[Entity, str] | None:
        """A record field (entity, backend name) that keeps a number, for the test that the
        extreme finite numbers JSON can carry are stored and read back exactly. Default: a
        contact's ``score``, which a schemaless driver keeps as a custom field. ``None`` skips
        that test (say why in the override)."""
        return (Entity.CONTACT, "score")

    @pytest.fixture
    def records(self, record_fields: RecordFields) -> RecordFactory:
        """A :class:`RecordFactory` with values unique to this test."""
        return RecordFactory(record_fields)
