"""The shipped conformance suite on SQLite, PostgreSQL and MariaDB (managed schema)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa

from backends.base import Backend, Entity, User
from backends.sql import SQLBackend
from backends.testing import ConformanceSuite, RecordFields

from .conftest import OpenBackend, unique_prefix
from .crm_schema import crm_schema

USERS = [User("u1", "Ada Lovelace", "ada@example.com"), User("u2", "Grace Hopper", None)]


def with_users() -> dict[str, Any]:
    """Options naming the managed ``<prefix>users`` table as the users table (without it the
    users capability is off)."""
    prefix = unique_prefix()
    return {"table_prefix": prefix, "users": {"table": f"{prefix}users"}}


async def seed_users(backend: SQLBackend) -> None:
    """The operator-filled ``<prefix>users`` table, named in the ``users`` option."""
    async with backend.engine.begin() as conn:
        await conn.execute(
            sa.insert(backend.tables.users),
            [{"id": u.id, "name": u.name, "email": u.email} for u in USERS],
        )


class _Seeded(ConformanceSuite):
    @pytest.fixture
    def expected_users(self) -> list[User]:
        return USERS


class TestSQLiteConformance(_Seeded):
    @pytest.fixture
    async def backend(self, open_backend: OpenBackend, sqlite_url: str) -> AsyncIterator[Backend]:
        async with open_backend(sqlite_url, **with_users()) as driver:
            await seed_users(driver)
            yield driver


@pytest.mark.postgres
class TestPostgresConformance(_Seeded):
    @pytest.fixture
    async def backend(self, open_backend: OpenBackend, postgres_url: str) -> AsyncIterator[Backend]:
        async with open_backend(postgres_url, **with_users()) as driver:
            await seed_users(driver)
            yield driver


@pytest.mark.mysql
class TestMariaDBConformance(_Seeded):
    @pytest.fixture
    async def backend(self, open_backend: OpenBackend, mysql_url: str) -> AsyncIterator[Backend]:
        async with open_backend(mysql_url, **with_users()) as driver:
            await seed_users(driver)
            yield driver


# -- mapped schema: the same suite against the in-house CRM's tables ---------------------------

MAPPED_FIELDS: dict[Entity, dict[str, str]] = {
    Entity.CONTACT: {
        "email": "mail",
        "firstName": "given_name",
        "lastName": "family_name",
        "linkedinUrl": "li_profile",
    },
    Entity.COMPANY: {"name": "account_name", "domain": "website", "linkedinUrl": "li_page"},
}
CRM_USERS = [User("1", "Ada Lovelace", "ada@example.com"), User("2", "Grace Hopper", None)]


class _Mapped(ConformanceSuite):
    @pytest.fixture
    def record_fields(self) -> RecordFields:
        return lambda entity: MAPPED_FIELDS[entity]

    @pytest.fixture
    def expected_users(self) -> list[User]:
        return CRM_USERS


class TestSQLiteMappedConformance(_Mapped):
    @pytest.fixture
    async def backend(self, open_backend: OpenBackend, sqlite_url: str) -> AsyncIterator[Backend]:
        async with (
            crm_schema(sqlite_url, pre_existing=False) as crm,
            open_backend(**crm.options()) as driver,
        ):
            yield driver


@pytest.mark.postgres
class TestPostgresMappedConformance(_Mapped):
    @pytest.fixture
    async def backend(self, open_backend: OpenBackend, postgres_url: str) -> AsyncIterator[Backend]:
        async with (
            crm_schema(postgres_url, pre_existing=False) as crm,
            open_backend(**crm.options()) as driver,
        ):
            yield driver


@pytest.mark.mysql
class TestMariaDBMappedConformance(_Mapped):
    @pytest.fixture
    async def backend(self, open_backend: OpenBackend, mysql_url: str) -> AsyncIterator[Backend]:
        async with (
            crm_schema(mysql_url, pre_existing=False) as crm,
            open_backend(**crm.options()) as driver,
        ):
            yield driver
