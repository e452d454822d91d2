"""Errors by kind on the customer's tables: a schema that changed under the adapter is a
:class:`SchemaError` (permanent: retrying cannot help), never a retryable ``Unavailable``; a
value only the database refuses is that record's ``InvalidRecord``. SQLite, PostgreSQL,
MariaDB."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from backends.base import Entity, InvalidRecord, NewRecord, RecordUpdate, SchemaError

from .conftest import OpenBackend
from .mapped_schemas import Schema, party_options, party_tables, schema

pytestmark = pytest.mark.anyio


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ]
)
async def party(request: pytest.FixtureRequest) -> AsyncIterator[Schema]:
    url = request.getfixturevalue(f"{request.param}_url")
    async with schema(url, party_tables) as s:
        await s.execute(sa.insert(s.t("location_type")).values(id=1, name="Home", is_default=1))
        yield s


async def test_a_column_dropped_under_the_adapter_is_a_schema_error(
    party: Schema, open_backend: OpenBackend
) -> None:
    async with open_backend(party.url, **party_options(party)) as backend:
        [made] = await backend.create_records(
            Entity.CONTACT, [NewRecord("a", {"first_name": "Ada", "job_title": "CTO"})]
        )
        assert made.ok, made.error
        await party.execute(sa.text(f"ALTER TABLE {party.name('party')} DROP COLUMN job_title"))
        with pytest.raises(SchemaError) as caught:
            await backend.update_records(
                Entity.CONTACT, [RecordUpdate(made.crm_id or "", {"job_title": "CEO"})]
            )
        error = caught.value
        assert not error.retryable
        assert error.code == "backend_schema_error"
        assert "job_title" in error.message
        assert "check" in error.message  # says what to run


async def test_a_value_only_the_database_refuses_fails_that_record_alone(
    party: Schema, open_backend: OpenBackend
) -> None:
    # A rule the reflected columns do not show: the batch statement fails, the replay finds
    # the record.
    if party.url.startswith("sqlite"):
        pytest.skip("SQLite cannot add a CHECK constraint to an existing table")
    await party.execute(
        sa.text(
            f"ALTER TABLE {party.name('party')} ADD CONSTRAINT {party.tag}title_ck "
            "CHECK (job_title IS NULL OR job_title <> 'forbidden')"
        )
    )
    async with open_backend(party.url, **party_options(party)) as backend:
        results = await backend.create_records(
            Entity.CONTACT,
            [
                NewRecord("a", {"first_name": "A", "email": "a@x.example"}),
                NewRecord(
                    "b", {"first_name": "B", "job_title": "forbidden", "email": "b@x.example"}
                ),
                NewRecord("c", {"first_name": "C", "email": "c@x.example"}),
            ],
        )
        assert [r.ok for r in results] == [True, False, True]
        assert isinstance(results[1].error, InvalidRecord)
        # nothing of the refused record stayed behind: no row, no e-mail
        names = sorted(r["first_name"] for r in await party.rows("party"))
        assert names == ["A", "C"]
        emails = sorted(r["email"] for r in await party.rows("email"))
        assert emails == ["a@x.example", "c@x.example"]
