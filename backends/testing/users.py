"""Conformance tests of :attr:`Capability.USERS`."""

from __future__ import annotations

import pytest

from backends.base import Backend, Capability, User
from backends.testing._base import SuiteBase, require

__all__ = ["UsersSuite"]


class UsersSuite(SuiteBase):
    """``list_users``; override the ``expected_users`` fixture to check the exact list."""

    @pytest.mark.anyio
    async def test_list_users_returns_users_with_unique_ids(self, backend: Backend) -> None:
        require(backend, Capability.USERS)
        users = await backend.list_users()
        assert isinstance(users, list)
        assert all(isinstance(u, User) and u.id and isinstance(u.name, str) for u in users)
        assert len({u.id for u in users}) == len(users)

    @pytest.mark.anyio
    async def test_list_users_returns_expected_users(
        self, backend: Backend, expected_users: list[User] | None
    ) -> None:
        require(backend, Capability.USERS)
        if expected_users is None:
            pytest.skip("the driver's tests give no expected_users fixture")
        users = await backend.list_users()
        assert sorted(users, key=lambda u: u.id) == sorted(expected_users, key=lambda u: u.id)
