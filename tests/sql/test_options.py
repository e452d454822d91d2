"""The SQL driver's options as the configuration sees them: a database URL whose DBAPI module
is not installed fails validation with the exact ``pip install`` line, reported by
``build_backend`` / ``check`` as one ``backend.options.url: ...`` line (QA: a bare
``ModuleNotFoundError`` in ``check``, a traceback in ``serve``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from adapter import cli
from adapter.app import create_app
from adapter.config import ConfigError, Settings, build_backend, load_settings
from backends.base import Capability, User
from backends.sql import SQLBackend, SQLOptions
from backends.sql.options import UsersTable

from .conftest import OpenBackend, unique_prefix

MISSING = [
    ("postgresql+asyncpg://enginy@db:5432/crm", "asyncpg", "postgresql"),
    ("mysql+aiomysql://enginy@db:3306/crm", "aiomysql", "mysql"),
    ("mariadb+aiomysql://enginy@db:3306/crm", "aiomysql", "mysql"),
]


def _without(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name == module else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "adapter.yaml"
    path.write_text(
        f"auth:\n  keys: [k-123456]\nbackend:\n  driver: sql\n  options:\n    url: {url}\n"
    )
    return path


@pytest.mark.parametrize(("url", "module", "extra"), MISSING)
def test_a_missing_dbapi_is_a_config_error_with_the_pip_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, module: str, extra: str
) -> None:
    _without(monkeypatch, module)
    settings = load_settings(_config(tmp_path, url), environ={})
    with pytest.raises(ConfigError) as caught:
        build_backend(settings)
    message = str(caught.value)
    assert message.startswith("backend.options.url: ")
    assert f'pip install "enginy-crm-adapter[{extra}]"' in message
    assert repr(module) in message
    assert "\n" not in message


def test_check_prints_one_line_with_the_pip_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _without(monkeypatch, "asyncpg")
    code = cli.main(["check", "--config", str(_config(tmp_path, MISSING[0][0]))])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.strip().splitlines() == [
        "error: backend.options.url: the Python package 'asyncpg' this URL needs is not "
        'installed; run: pip install "enginy-crm-adapter[postgresql]"'
    ]
    assert "Traceback" not in out + err


@pytest.mark.parametrize(("url", "module", "extra"), MISSING)
def test_an_installed_dbapi_passes(tmp_path: Path, url: str, module: str, extra: str) -> None:
    settings = load_settings(_config(tmp_path, url), environ={})
    assert isinstance(build_backend(settings), SQLBackend)


# -- users: declared only when a users table is configured ------------------------------------


def _settings(url: str, **options: Any) -> Settings:
    return Settings.model_validate(
        {
            "auth": {"keys": ["k-123456"]},
            "backend": {"driver": "sql", "options": {"url": url, **options}},
        }
    )


@pytest.mark.anyio
async def test_users_are_off_without_a_users_table_so_get_users_is_501(sqlite_url: str) -> None:
    settings = _settings(sqlite_url)
    backend = build_backend(settings)
    assert Capability.USERS not in backend.capabilities
    app = create_app(settings, backend)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app),
            base_url="http://adapter",
            headers={"X-API-Key": "k-123456"},
        ) as client,
    ):
        answer = await client.get("/users")
    assert answer.status_code == 501, answer.text
    assert set(answer.json()) >= {"error", "message"}


@pytest.mark.anyio
async def test_the_managed_users_table_serves_users_when_named(
    open_backend: OpenBackend, sqlite_url: str
) -> None:
    prefix = unique_prefix()
    options = {"table_prefix": prefix, "users": {"table": f"{prefix}users"}}
    async with open_backend(sqlite_url, **options) as backend:
        assert Capability.USERS in backend.capabilities
        assert await backend.list_users() == []
        async with backend.engine.begin() as conn:
            await conn.execute(
                sa.insert(backend.tables.users), [{"id": "u1", "name": "Ada", "email": None}]
            )
        assert await backend.list_users() == [User("u1", "Ada", None)]


@pytest.mark.anyio
async def test_check_reports_a_missing_users_table_in_managed_mode(sqlite_url: str) -> None:
    backend = SQLBackend(SQLOptions(url=sqlite_url, users=UsersTable(table="crm_users")))
    assert await backend.check_schema() == ["users: table 'crm_users' does not exist"]
