"""``enginy-adapter check`` is read-only unless ``--migrate``; what it reports on a mapped
schema before Enginy meets it; and a schema error reaches Enginy as a 500 with its own code,
not as a retryable 503."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.ext.asyncio import create_async_engine

from adapter import cli
from adapter.app import create_app
from adapter.config import Settings
from backends.base import Entity
from backends.sql import SQLBackend, SQLOptions

from .conftest import drop_adapter_tables, unique_prefix
from .mapped_schemas import Schema, party_options, party_tables, schema

KEY = "check-test-key-123"


def names(url: str) -> set[str]:
    engine = sa.create_engine(url.replace("+aiosqlite", ""))
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_check_changes_nothing_unless_asked_to_migrate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    config = tmp_path / "adapter.yaml"
    config.write_text(
        yaml.safe_dump({"auth": {"keys": [KEY]}, "backend": {"driver": "sql",
                        "options": {"url": url}}})
    )  # fmt: skip
    assert cli.main(["check", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "do not exist yet" in out and out.splitlines()[-1].startswith("ok: ")
    assert not any(n.startswith("enginy_") for n in names(url))
    assert cli.main(["check", "--config", str(config), "--migrate"]) == 0
    out = capsys.readouterr().out
    assert "do not exist yet" not in out
    assert {"enginy_contacts", "enginy_schema_version"} <= names(url)


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


FIELDS = {
    Entity.CONTACT: {"firstName": "first_name", "title": "job_title"},
    Entity.COMPANY: {"name": "org_name"},
}


@pytest.mark.anyio
async def test_check_reports_what_would_fail_before_enginy_meets_it(party: Schema) -> None:
    options: dict[str, Any] = party_options(party)
    people = options["contacts"]
    # a key too short for the ids the strategy makes, a NOT NULL child column left unfilled,
    # a constant the column cannot hold, a field onto a column of a type it cannot fill
    people["id_strategy"] = "uuid"
    del people["children"]["email"]["on_create"]
    people["on_create"]["created_at"] = "not a date"
    fields = {**FIELDS, Entity.CONTACT: {**FIELDS[Entity.CONTACT], "lastName": "employer_id"}}
    prefix = unique_prefix()
    backend = SQLBackend(
        SQLOptions.model_validate({"url": party.url, "table_prefix": prefix, **options})
    )
    report = await backend.check_setup(fields)
    text = "\n".join(report.problems)
    assert "id_strategy 'uuid' makes text ids but" in text and ".id'" in text
    assert "email.location' is NOT NULL without a default" in text
    assert "created_at" in text and "date-times" in text
    assert "field 'lastName' is text but column" in text and "employer_id" in text
    assert len(report.problems) == 4, report.problems
    # read-only: the adapter's tables were not created by the check
    engine = create_async_engine(party.url)
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
    await engine.dispose()
    assert not any(t.startswith(backend.options.table_prefix) for t in tables)
    # and the healthy configuration has none
    healthy = SQLBackend(SQLOptions.model_validate({"url": party.url, **party_options(party)}))
    assert (await healthy.check_setup(FIELDS)).problems == ()


@pytest.mark.anyio
async def test_a_schema_error_is_a_500_with_its_own_code(party: Schema) -> None:
    settings = Settings.model_validate(
        {
            "auth": {"keys": [KEY]},
            "backend": {"driver": "sql", "options": {"url": party.url, **party_options(party)}},
            "mapping": {"contacts": {"fields": FIELDS[Entity.CONTACT]}},
        }
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://a", headers={"X-API-Key": KEY}
        ) as client,
    ):
        made = await client.post(
            "/contacts", json={"contacts": [{"externalId": "a", "firstName": "Ada"}]}
        )
        crm_id = made.json()["results"][0]["crmId"]
        await party.execute(sa.text(f"ALTER TABLE {party.name('party')} DROP COLUMN job_title"))
        answer = await client.put("/contacts", json={"contacts": [{"crmId": crm_id,
                                                                   "title": "CEO"}]})  # fmt: skip
    backend = app.state.service.backend
    assert isinstance(backend, SQLBackend)
    await drop_adapter_tables(backend)
    assert answer.status_code == 500
    assert answer.json()["error"] == "backend_schema_error"
    assert "job_title" in answer.json()["message"]
    assert "retry-after" not in answer.headers


@pytest.mark.anyio
@pytest.mark.mysql
async def test_keys_in_two_collations_are_a_problem(mysql_url: str) -> None:
    tag = unique_prefix()
    engine = create_async_engine(mysql_url)
    ddl = [
        f"CREATE TABLE {tag}people (id varchar(24) COLLATE utf8mb4_unicode_ci PRIMARY KEY)",
        f"CREATE TABLE {tag}orgs (id varchar(24) COLLATE utf8mb4_general_ci PRIMARY KEY)",
    ]
    try:
        async with engine.begin() as conn:
            for statement in ddl:
                await conn.execute(sa.text(statement))
        options = {
            "url": mysql_url,
            "table_prefix": unique_prefix(),
            "mode": "mapped",
            "contacts": {"table": f"{tag}people", "id_strategy": "espo"},
            "companies": {"table": f"{tag}orgs", "id_strategy": "espo"},
        }
        problems = await SQLBackend(SQLOptions.model_validate(options)).check_schema()
        assert len(problems) == 1 and "collations:" in problems[0], problems
        assert "utf8mb4_unicode_ci" in problems[0] and "utf8mb4_general_ci" in problems[0]
        # naming the collation the adapter's tables take settles it
        chosen = {**options, "collation": "utf8mb4_unicode_ci"}
        assert await SQLBackend(SQLOptions.model_validate(chosen)).check_schema() == []
    finally:
        async with engine.begin() as conn:
            for table in ("people", "orgs"):
                await conn.execute(sa.text(f"DROP TABLE IF EXISTS {tag}{table}"))
        await engine.dispose()
