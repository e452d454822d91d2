"""The database password never shows: not in ``check``'s output, not in the log, not in error
messages, whatever characters it holds (QA found ``P@ssw0rdSECRET`` leaking as
``***@ssw0rdSECRET@host``)."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path
from urllib.parse import quote

import pytest
from pydantic import SecretStr
from sqlalchemy import event
from sqlalchemy.engine import make_url

from adapter import cli
from backends.base import Entity, NewRecord, Unavailable
from backends.sql import SQLBackend, SQLOptions
from backends.sql.errors import db_errors
from backends.sql.options import safe_url

from .conftest import OpenBackend, drop_adapter_tables, unique_prefix

pytestmark = pytest.mark.anyio
MARK = "SECRET"
# Each holds a character that is special in a URL; MARK is what must never appear.
PASSWORDS = [
    f"P@ssw0rd{MARK}",
    f"pa:ss{MARK}",
    f"pa/ss{MARK}",
    f"pa#ss{MARK}",
    f"pa?ss{MARK}",
    f"pa%ss{MARK}",
    f"a@b:c/d#e?f%g{MARK}@",
]


def _closed_port() -> int:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_check(tmp_path: Path, options: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    config = tmp_path / "adapter.yaml"
    config.write_text(f"auth:\n  keys: [check-key]\nbackend:\n  driver: sql\n  options:\n{options}")
    code = cli.main(["check", "--config", str(config), "--timeout", "10"])
    out, err = capsys.readouterr()
    return code, out + err


@pytest.mark.parametrize("password", PASSWORDS)
def test_safe_url_masks_everything_before_the_last_at(password: str) -> None:
    raw = f"postgresql+asyncpg://admin:{password}@db.internal:5432/crm"
    assert safe_url(raw) == "postgresql+asyncpg://admin:***@db.internal:5432/crm"
    encoded = f"postgresql+asyncpg://admin:{quote(password, safe='')}@db.internal:5432/crm"
    assert safe_url(encoded) == "postgresql+asyncpg://admin:***@db.internal:5432/crm"
    options = SQLOptions(
        url="postgresql+asyncpg://admin@db.internal/crm", password=SecretStr(password)
    )
    assert options.safe_url == "postgresql+asyncpg://admin:***@db.internal/crm"
    assert MARK not in repr(options)


@pytest.mark.parametrize(
    ("url", "password", "shown"),
    [
        (
            "sqlite+aiosqlite:///./enginy-adapter.db",
            False,
            "sqlite+aiosqlite:///./enginy-adapter.db",
        ),
        ("sqlite+aiosqlite:////var/lib/x.db", True, "sqlite+aiosqlite:////var/lib/x.db"),
        ("postgresql+asyncpg://db/crm", True, "postgresql+asyncpg://:***@db/crm"),
        ("postgresql+asyncpg://admin@db/crm", False, "postgresql+asyncpg://admin@db/crm"),
        (
            "mysql+aiomysql://root:@127.0.0.1:3306/test",
            False,
            "mysql+aiomysql://root@127.0.0.1:3306/test",
        ),
        (
            "postgresql+asyncpg://a%40b:pw@[::1]:5432/db",
            False,
            "postgresql+asyncpg://a%40b:***@[::1]:5432/db",
        ),
        # SQLAlchemy renders the query sorted by key.
        (
            "postgresql://u@h/db?sslmode=require&password=pw",
            False,
            "postgresql://u@h/db?password=***&sslmode=require",
        ),
        ("not a url", False, "<unparsable database URL>"),
    ],
)
def test_safe_url_shapes(url: str, password: bool, shown: str) -> None:
    # SQLAlchemy's rendering, hide_password: what the start-up log and `check` show.
    assert safe_url(url, password=password) == shown


@pytest.mark.parametrize("password", PASSWORDS)
def test_the_password_option_is_set_on_the_url_unencoded(password: str) -> None:
    options = SQLOptions(
        url="postgresql+asyncpg://admin@10.0.0.7:5432/db", password=SecretStr(password)
    )
    url = options.engine_url
    assert (url.host, url.port, url.username, url.password) == ("10.0.0.7", 5432, "admin", password)


def test_a_raw_at_in_the_url_password_is_refused_not_sent_to_another_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DB_PASSWORD", f"P@ssw0rd{MARK}")
    code, output = _run_check(
        tmp_path,
        '    url: "postgresql+asyncpg://admin:${DB_PASSWORD}@10.255.255.1:5432/db"\n',
        capsys,
    )
    assert code == 1
    assert "backend.options.url" in output and "'password' option" in output
    assert MARK not in output and "ssw0rd" not in output


def test_a_password_in_the_url_and_as_an_option_is_refused() -> None:
    with pytest.raises(ValueError, match="not both"):
        SQLOptions(url="postgresql+asyncpg://a:b@h/db", password=SecretStr("c"))


@pytest.mark.parametrize("password", PASSWORDS)
def test_check_output_never_shows_the_password(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    password: str,
) -> None:
    port = _closed_port()
    monkeypatch.setenv("DB_PASSWORD", password)
    # As recommended: the password option.
    code, output = _run_check(
        tmp_path,
        f'    url: "postgresql+asyncpg://admin@127.0.0.1:{port}/db"\n'
        '    password: "${DB_PASSWORD}"\n    connect_timeout: 3\n',
        capsys,
    )
    assert code == 1 and "not usable" in output, output
    assert MARK not in output
    # Or percent-encoded inside the URL.
    monkeypatch.setenv("DB_PASSWORD", quote(password, safe=""))
    code, output = _run_check(
        tmp_path,
        f'    url: "postgresql+asyncpg://admin:${{DB_PASSWORD}}@127.0.0.1:{port}/db"\n'
        "    connect_timeout: 3\n",
        capsys,
    )
    assert code == 1 and "not usable" in output, output
    assert MARK not in output and quote(password, safe="") not in output


@pytest.mark.postgres
@pytest.mark.parametrize("password", PASSWORDS)
def test_check_succeeds_with_the_password_option_and_shows_it_masked(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    postgres_url: str,
    password: str,
) -> None:
    monkeypatch.setenv("DB_PASSWORD", password)  # trust auth ignores it
    prefix = unique_prefix()
    code, output = _run_check(
        tmp_path,
        f'    url: "{postgres_url}"\n    password: "${{DB_PASSWORD}}"\n'
        f"    table_prefix: {prefix}\n",
        capsys,
    )
    asyncio.run(drop_adapter_tables(SQLBackend(SQLOptions(url=postgres_url, table_prefix=prefix))))
    assert code == 0, output
    assert "***@127.0.0.1" in output
    assert MARK not in output


@pytest.mark.postgres
@pytest.mark.parametrize("password", PASSWORDS)
async def test_the_start_up_log_never_shows_the_password(
    caplog: pytest.LogCaptureFixture, postgres_url: str, password: str
) -> None:
    inline = make_url(postgres_url).render_as_string(hide_password=False)
    user_at = inline.index("@")
    for options in (
        SQLOptions(url=postgres_url, password=SecretStr(password), table_prefix=unique_prefix()),
        SQLOptions(
            url=f"{inline[:user_at]}:{quote(password, safe='')}{inline[user_at:]}",
            table_prefix=unique_prefix(),
        ),
    ):
        backend = SQLBackend(options)
        caplog.clear()
        with caplog.at_level(logging.DEBUG):
            await backend.open()
            await backend.close()
        await drop_adapter_tables(backend)
        assert "sql backend ready" in caplog.text
        assert ":***@" in caplog.text
        assert MARK not in caplog.text
        assert quote(password, safe="") not in caplog.text


@pytest.mark.parametrize("password", PASSWORDS)
def test_database_messages_echoing_the_dsn_are_scrubbed(password: str) -> None:
    options = SQLOptions(url="postgresql+asyncpg://admin@h:5432/db", password=SecretStr(password))
    encoded = quote(password, safe="")
    for echoed in (
        f"could not connect: password {password!r} rejected",
        f"invalid DSN postgresql://admin:{encoded}@h:5432/db",
        f"connect to postgresql://admin:{password}@h:5432/db failed",
    ):
        with pytest.raises(Unavailable) as caught, db_errors("open", options.secrets):
            raise ConnectionRefusedError(echoed)
        assert MARK not in str(caught.value), str(caught.value)
        assert encoded not in str(caught.value)


@pytest.mark.postgres
@pytest.mark.parametrize("password", PASSWORDS[:1] + PASSWORDS[-1:])
async def test_driver_errors_echoing_the_password_are_scrubbed(
    open_backend: OpenBackend, postgres_url: str, password: str
) -> None:
    async with open_backend(postgres_url, password=SecretStr(password)) as backend:
        dsn = f"postgresql://postgres:{password}@127.0.0.1/test"

        def fail(*_args: object) -> None:
            raise ConnectionResetError(f"connection to {dsn} lost ({password})")

        event.listen(backend.engine.sync_engine, "before_cursor_execute", fail)
        try:
            with pytest.raises(Unavailable) as caught:
                await backend.create_records(Entity.CONTACT, [NewRecord("x-1", {"email": "a@b"})])
        finally:
            event.remove(backend.engine.sync_engine, "before_cursor_execute", fail)
        assert "connection to" in str(caught.value)
        assert MARK not in str(caught.value)
