"""Sync finds rows the adapter did not write through their stored values, as people typed
them, with one indexed comparison per key: websites with a scheme, ``www.`` or a trailing
slash in any case, a website under another extension, a compound key of several columns, and
the index ``create_index`` asks for. SQLite, PostgreSQL, MariaDB."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from backends.base import Entity, MatchKey

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
        t = s.t("party")
        await s.execute(
            sa.insert(s.t("location_type")).values(id=1, name="Home", is_default=1),
            sa.insert(t).values(id=1, kind="org", org_name="Acme", website="HTTP://WWW.Acme.Example/"),
            sa.insert(t).values(id=2, kind="org", org_name="Acme UK", website="https://acme.co.uk"),
            sa.insert(t).values(id=3, kind="org", org_name="Acme Corp", website="acmecorp.com"),
            sa.insert(t).values(id=4, kind="org", org_name="Gone", website="gone.example",
                                is_deleted=1),
            sa.insert(t).values(id=5, kind="person", first_name="Ada", last_name="Lovelace",
                                org_name="Acme"),
            sa.insert(t).values(id=6, kind="person", first_name="ada", last_name="LOVELACE",
                                org_name="Globex"),
        )  # fmt: skip
        yield s


DOMAIN = MatchKey("domain", "website", "domain")


async def test_websites_as_typed_are_found_by_their_domain(
    party: Schema, open_backend: OpenBackend
) -> None:
    async with open_backend(party.url, **party_options(party)) as backend:
        found = await backend.find_records(
            Entity.COMPANY, DOMAIN, ["acme.example", "acme.co.uk", "gone.example", "acme.com"]
        )
        assert {v: r.crm_id for v, r in found.items()} == {"acme.example": "1", "acme.co.uk": "2"}


async def test_a_website_under_any_extension(party: Schema, open_backend: OpenBackend) -> None:
    async with open_backend(party.url, **party_options(party)) as backend:
        key = MatchKey("domain", "website", "domain_any_extension")
        found = await backend.find_records(Entity.COMPANY, key, ["acme", "gone", "globex"])
        # the oldest of the two Acme sites; acmecorp.com is another name; Gone is deleted
        assert {v: r.crm_id for v, r in found.items()} == {"acme": "1"}


async def test_a_compound_key_over_several_columns(
    party: Schema, open_backend: OpenBackend
) -> None:
    async with open_backend(party.url, **party_options(party)) as backend:
        key = MatchKey(
            "firstName+lastName+company", None, "compound", ("first_name", "last_name", "org_name")
        )
        wanted = [
            json.dumps(["ada", "lovelace", "globex"], separators=(",", ":")),
            json.dumps(["ada", "lovelace", "initech"], separators=(",", ":")),
        ]
        found = await backend.find_records(Entity.CONTACT, key, wanted)
        assert {v: r.crm_id for v, r in found.items()} == {wanted[0]: "6"}


INDEXES = {
    "sqlite": "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t",
    "postgresql": "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :t",
    "mysql": "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS "
    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t",
}


async def indexes(url: str, table: str) -> dict[str, str]:
    """``{index name: its definition or column}`` as the database lists them."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            sql = INDEXES[engine.dialect.name]
            return {str(n): str(d) for n, d in await conn.execute(sa.text(sql), {"t": table})}
    finally:
        await engine.dispose()


async def test_create_index_makes_the_index_the_lookup_needs(
    party: Schema, open_backend: OpenBackend
) -> None:
    options = party_options(party)
    options["companies"]["lookups"] = {"org_name": {"create_index": True}}
    table = party.name("party")
    before = await indexes(party.url, table)
    async with open_backend(party.url, **options) as backend:
        made = {n: d for n, d in (await indexes(party.url, table)).items() if n not in before}
        assert len(made) == 1, made
        [(name, definition)] = made.items()
        if party.url.startswith("mysql"):
            # a case-insensitive collation: the column itself serves the comparison
            assert definition == "org_name"
        else:
            assert "lower(" in definition.lower() and "org_name" in definition
        key = MatchKey("name", "org_name", "name")
        found = await backend.find_records(Entity.COMPANY, key, ["acme uk"])
        assert found["acme uk"].crm_id == "2"
        # check knows the index: no note that the lookup scans the table
        report = await backend.check_setup({Entity.COMPANY: {"name": "org_name"}})
        assert not any("sync by name" in n for n in report.notes), report.notes
    # opening again does not try to make it twice
    async with open_backend(party.url, **options):
        assert len(await indexes(party.url, table)) == len(before) + 1
    # the index belongs to the customer's table now; leave the test table as it was
    engine = create_async_engine(party.url)
    async with engine.begin() as conn:
        on = f" ON {table}" if party.url.startswith("mysql") else ""
        await conn.execute(sa.text(f"DROP INDEX {name}{on}"))
    await engine.dispose()


async def test_check_notes_a_lookup_that_reads_the_whole_table(
    party: Schema, open_backend: OpenBackend
) -> None:
    options = party_options(party)
    async with open_backend(party.url, **options) as backend:
        report = await backend.check_setup(
            {
                Entity.CONTACT: {"email": "email"},
                Entity.COMPANY: {"domain": "website", "name": "org_name"},
            }
        )
    text = "\n".join(report.notes)
    # email.email and party.website are indexed, org_name is not; where the collation is
    # case-sensitive (SQLite, PostgreSQL) the comparison is lower(column), which a plain index
    # does not serve
    assert "companies: sync by name compares" in text and "org_name" in text
    case_sensitive = not party.url.startswith("mysql")
    assert ("sync by email compares lower(email)" in text) == case_sensitive
    assert ("sync by domain compares lower(website)" in text) == case_sensitive
