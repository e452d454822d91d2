"""The memory driver: the whole conformance suite, plus what is specific to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from backends.base import Backend, User
from backends.memory import MemoryBackend, MemoryOptions
from backends.testing import ConformanceSuite

USERS = [
    {"id": "u1", "name": "Ada Lovelace", "email": "ada@example.com"},
    {"id": "u2", "name": "Grace Hopper"},
]


class TestMemoryConformance(ConformanceSuite):
    @pytest.fixture
    async def backend(self) -> AsyncIterator[Backend]:
        driver = MemoryBackend(MemoryOptions.model_validate({"users": USERS}))
        await driver.open()
        yield driver
        await driver.close()

    @pytest.fixture
    def expected_users(self) -> list[User]:
        return [User("u1", "Ada Lovelace", "ada@example.com"), User("u2", "Grace Hopper")]
