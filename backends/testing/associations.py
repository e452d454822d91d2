"""Conformance tests of :attr:`Capability.ASSOCIATIONS`."""

from __future__ import annotations

import pytest

from backends.base import AssociationPair, Backend, Capability, Entity, NotFound
from backends.testing._base import RecordFactory, SuiteBase, require

__all__ = ["AssociationsSuite"]

C, K = Entity.CONTACT, Entity.COMPANY


class AssociationsSuite(SuiteBase):
    """``create_associations``: idempotent links, ``NotFound`` per pair."""

    @pytest.mark.anyio
    async def test_link_returns_contact_id_and_is_idempotent(
        self, backend: Backend, records: RecordFactory
    ) -> None:
        require(backend, Capability.ASSOCIATIONS)
        contact = await records.create(backend, C, 1)
        company = await records.create(backend, K, 1)
        pair = AssociationPair(contact, company)
        first = await backend.create_associations([pair])
        assert len(first) == 1
        assert first[0].error is None
        assert first[0].crm_id == contact
        again = await backend.create_associations([pair, pair])
        assert [r.error for r in again] == [None, None]
        assert [r.crm_id for r in again] == [contact, contact]

    @pytest.mark.anyio
    async def test_unknown_contact_or_company_is_not_found_per_pair(
        self, backend: Backend, records: RecordFactory, missing_id: str
    ) -> None:
        require(backend, Capability.ASSOCIATIONS)
        contacts = [await records.create(backend, C, n) for n in range(2)]
        company = await records.create(backend, K, 1)
        pairs = [
            AssociationPair(contacts[0], company),
            AssociationPair(missing_id, company),
            AssociationPair(contacts[1], missing_id),
            AssociationPair(contacts[1], company),
        ]
        results = await backend.create_associations(pairs)
        assert len(results) == 4
        assert results[0].error is None and results[0].crm_id == contacts[0]
        assert isinstance(results[1].error, NotFound)
        assert isinstance(results[2].error, NotFound)
        assert results[3].error is None and results[3].crm_id == contacts[1]

    @pytest.mark.anyio
    async def test_empty_batch(self, backend: Backend) -> None:
        require(backend, Capability.ASSOCIATIONS)
        assert await backend.create_associations([]) == []
