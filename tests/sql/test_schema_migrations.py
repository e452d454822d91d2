"""The adapter's schema migrations on a database an earlier version made: version 3 rebuilds
SQLite's ``<prefix>match_keys`` without a rowid, keeping every key (and is nothing to do on the
other databases, or on a database created at version 3)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from backends.base import Entity, MatchKey, NewRecord
from backends.sql import SQLBackend, SQLOptions
from backends.sql.schema import SCHEMA_VERSION

from .conftest import OpenBackend

pytestmark = pytest.mark.anyio
C = Entity.CONTACT


def _table_sql(db: Path, name: str) -> str:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()
    return str(row[0])


def _back_to_version_2(db: Path, prefix: str) -> None:
    """Give ``<prefix>match_keys`` the shape versions 1 and 2 created (a rowid table), its
    rows kept, and set the schema's version to 2."""
    mk = f"{prefix}match_keys"
    with sqlite3.connect(db) as conn:
        conn.executescript(
            f"""
            DROP INDEX {prefix}keys_crm_ix;
            ALTER TABLE {mk} RENAME TO old_keys;
            CREATE TABLE {mk} (
                entity VARCHAR(16) NOT NULL,
                key_name VARCHAR(64) NOT NULL,
                value VARCHAR(512) NOT NULL,
                crm_id VARCHAR(64) NOT NULL,
                PRIMARY KEY (entity, key_name, value, crm_id)
            );
            CREATE INDEX {prefix}keys_crm_ix ON {mk} (entity, crm_id);
            INSERT INTO {mk} SELECT * FROM old_keys;
            DROP TABLE old_keys;
            UPDATE {prefix}schema_version SET version = 2;
            """
        )


async def test_a_version_2_sqlite_database_gets_match_keys_without_rowid_and_keeps_them(
    tmp_path: Path,
) -> None:
    db = tmp_path / "old.db"
    options = SQLOptions.model_validate({"url": f"sqlite+aiosqlite:///{db}"})
    prefix = options.table_prefix
    backend = SQLBackend(options)
    await backend.open()
    try:
        made = await backend.create_records(
            C,
            [
                NewRecord(f"e{i}", {"email": f"p{i}@x.io"}, {"email": f"p{i}@x.io"})
                for i in range(5)
            ],
        )
    finally:
        await backend.close()
    _back_to_version_2(db, prefix)
    assert "WITHOUT ROWID" not in _table_sql(db, f"{prefix}match_keys").upper()

    backend = SQLBackend(options)
    await backend.open()
    try:
        assert "WITHOUT ROWID" in _table_sql(db, f"{prefix}match_keys").upper()
        found = await backend.find_records(C, MatchKey("email", "email"), ["p3@x.io", "p9@x.io"])
        assert list(found) == ["p3@x.io"] and found["p3@x.io"].crm_id == made[3].crm_id
        # Keys written after the migration land in the rebuilt table, and its index is back.
        await backend.create_records(
            C, [NewRecord("e9", {"email": "p9@x.io"}, {"email": "p9@x.io"})]
        )
        found = await backend.find_records(C, MatchKey("email", "email"), ["p9@x.io"])
        assert found["p9@x.io"].external_id == "e9"
    finally:
        await backend.close()
    with sqlite3.connect(db) as conn:
        version = conn.execute(f"SELECT version FROM {prefix}schema_version").fetchone()[0]
        indexes = {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        }
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        rows = conn.execute(f"SELECT count(*) FROM {prefix}match_keys").fetchone()[0]
    assert version == SCHEMA_VERSION == 3
    assert f"{prefix}keys_crm_ix" in indexes
    assert not any(t.endswith("_v2") for t in tables)
    assert rows == 6


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ]
)
def any_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


async def test_a_new_database_is_at_version_3_and_its_keys_work(
    open_backend: OpenBackend, any_url: str
) -> None:
    async with open_backend(any_url) as backend:
        made = await backend.create_records(
            C, [NewRecord("n1", {"email": "n1@x.io"}, {"email": "n1@x.io"})]
        )
        found = await backend.find_records(C, MatchKey("email", "email"), ["n1@x.io"])
        assert found["n1@x.io"].crm_id == made[0].crm_id
        async with backend.engine.connect() as conn:
            sv = backend.tables.schema_version
            version = (await conn.execute(sv.select())).one().version
        assert version == SCHEMA_VERSION
