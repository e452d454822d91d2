"""A.11: GET /users from the backend, else the static YAML list, else 501."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from backends.base import Capability
from backends.memory import MemoryBackend, MemoryOptions, MemoryUser

pytestmark = pytest.mark.anyio


class NoUsersBackend(MemoryBackend):
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability) - {Capability.USERS}


async def test_a11_users_come_from_the_backend(serve: Any) -> None:
    backend = MemoryBackend(
        MemoryOptions(
            users=(
                MemoryUser(id="user-123", name="John Smith", email="john@example.com"),
                MemoryUser(id="user-789", name="Sales Bot"),
            )
        )
    )
    async with serve(backend=backend) as client:
        response = await client.get("/users")
    assert response.status_code == 200
    # A bare array; a user without email has no "email" key.
    assert response.json() == [
        {"id": "user-123", "name": "John Smith", "email": "john@example.com"},
        {"id": "user-789", "name": "Sales Bot"},
    ]


async def test_a11_users_from_the_static_list(serve: Any, settings_for: Any) -> None:
    settings = settings_for(users=[{"id": "u1", "name": "Jane Doe", "email": "jane@example.com"}])
    async with serve(settings, NoUsersBackend()) as client:
        response = await client.get("/users")
    assert response.status_code == 200
    assert response.json() == [{"id": "u1", "name": "Jane Doe", "email": "jane@example.com"}]


async def test_a11_users_501_with_no_source(serve: Any) -> None:
    async with serve(backend=NoUsersBackend()) as client:
        response = await client.get("/users")
    assert response.status_code == 501
    assert response.json()["error"] == "not_implemented"
    assert response.json()["message"]


async def test_a11_empty_static_list_is_an_empty_array(serve: Any, settings_for: Any) -> None:
    async with serve(settings_for(users=[]), NoUsersBackend()) as client:
        response = await client.get("/users")
    assert response.status_code == 200
    assert response.json() == []


async def test_a1_users_is_a_bare_array(serve: Any, settings_for: Any) -> None:
    settings = settings_for(users=[{"id": "u1", "name": "Jane"}])
    async with serve(settings, NoUsersBackend()) as client:
        response = await client.get("/users")
    assert response.json() == [{"id": "u1", "name": "Jane"}]


async def test_a11_a_configured_static_list_wins_over_the_backend(
    serve: Any, settings_for: Any
) -> None:
    backend = MemoryBackend(MemoryOptions(users=(MemoryUser(id="owner-1", name="From CRM"),)))
    settings = settings_for(users=[{"id": "u1", "name": "From YAML"}])
    async with serve(settings, backend) as client:
        response = await client.get("/users")
    assert response.json() == [{"id": "u1", "name": "From YAML"}]
