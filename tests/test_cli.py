"""The command line: ``check`` exit codes and one-line reasons, ``serve`` wiring and the API key
it generates when none is configured (issue 2 §5)."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from adapter import cli
from adapter.cli import COMMANDS, Command, build_parser, ensure_api_key, main
from adapter.cli import commands as cli_commands
from adapter.config import Settings, load_settings
from adapter.redaction import redact
from backends.base import Entity

SECRET = "pw-9f8e7d6c5b4a"
ROOT = Path(__file__).resolve().parent.parent

DRIVER_MODULE = """
import asyncio

from backends.base import AuthFailed, Backend, DriverOptions, SetupReport, Unavailable
from pydantic import SecretStr


class Options(DriverOptions):
    url: str = "postgresql://db.internal:5432/crm"
    token: SecretStr | None = None


class _Recording(Backend):
    Options = Options
    events: list[str] = []

    async def open(self) -> None:
        type(self).events.append("open")

    async def close(self) -> None:
        type(self).events.append("close")


class Unreachable(_Recording):
    name = "unreachable"

    async def ping(self) -> None:
        raise Unavailable("cannot connect to db.internal:5432 (connection refused)")


class BadCredentials(_Recording):
    name = "badcreds"

    async def open(self) -> None:
        type(self).events.append("open")
        raise AuthFailed("the database refused the password")


class Buggy(_Recording):
    name = "buggy"

    async def ping(self) -> None:
        token = self.options.token.get_secret_value() if self.options.token else ""
        raise RuntimeError(f"boom at {self.options.url} with {token}\\nsecond line")


class Noisy(_Recording):
    name = "noisy"

    async def ping(self) -> None:
        import logging

        logging.getLogger("noisy.driver").warning("attempt 1 failed: ConnectError")
        raise Unavailable("still down after retries")


class MissingColumn(_Recording):
    name = "missingcolumn"
    seen_maps = None

    async def check_setup(self, field_maps):
        type(self).seen_maps = field_maps
        return SetupReport(problems=("crm_people.email_address: no such column",),
                           notes=("portal 42",))


class Noted(_Recording):
    name = "noted"

    async def check_setup(self, field_maps):
        return SetupReport(notes=("contactLinkTemplate: https://crm.example/c/{{crmId}}",))


class SchemaMismatch(_Recording):
    name = "schemamismatch"

    async def open(self) -> None:
        type(self).events.append("open")
        from backends.base import BackendError

        raise BackendError("crm_people: no column email_address (token pw-9f8e7d6c5b4a)",
                           code="schema_mismatch")


class BadOption(_Recording):
    name = "badoption"

    async def open(self) -> None:
        type(self).events.append("open")
        from adapter.config import ConfigError

        raise ConfigError("unknown schema 'crm'", path="backend.options.schema")


class Slow(_Recording):
    name = "slow"

    async def ping(self) -> None:
        await asyncio.sleep(30)
"""


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ENGINY_ADAPTER_CONFIG",
        "ENGINY_ADAPTER_API_KEY",
        "ENGINY_ADAPTER_HOST",
        "ENGINY_ADAPTER_PORT",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def drivers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A module ``cli_test_drivers`` of tiny drivers, importable as ``module:Class``."""
    (tmp_path / "cli_test_drivers.py").write_text(DRIVER_MODULE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "cli_test_drivers", raising=False)
    import cli_test_drivers  # type: ignore[import-not-found]

    cli_test_drivers._Recording.events.clear()
    return cli_test_drivers


def config_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(err: str) -> str:
    assert err.startswith("error: ")
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    return err.removeprefix("error: ").strip()


# -- check -------------------------------------------------------------------------------------


def test_check_good_config_exits_0_with_ok(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_file(tmp_path, f"auth: {{keys: [{SECRET}]}}\nbackend: {{driver: memory}}\n")
    code, out, err = run(["check", "--config", path], capsys)
    assert code == 0, err
    assert out.startswith("ok: ")
    assert "'memory'" in out and "reachable" in out and "1 API key" in out
    assert SECRET not in out + err


def test_check_without_any_configuration_uses_the_embedded_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(["check"], capsys)
    assert code == 0
    assert "no API key configured" in out


def test_check_reads_the_config_path_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENGINY_ADAPTER_CONFIG", config_file(tmp_path, "server: {prot: 1}"))
    code, _, err = run(["check"], capsys)
    assert code == 1
    assert assert_one_line_error(err).startswith("server.prot: ")


def test_check_bad_key_gives_its_yaml_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_file(tmp_path, "server:\n  prot: 8080\n")
    code, out, err = run(["check", "--config", path], capsys)
    assert code == 1
    assert out == ""
    assert assert_one_line_error(err) == "server.prot: unknown option (did you mean 'port'?)"


def test_check_bad_driver_option_gives_its_yaml_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_file(tmp_path, "backend: {driver: memory, options: {pool_size: 3}}")
    code, _, err = run(["check", "--config", path], capsys)
    assert code == 1
    assert assert_one_line_error(err).startswith("backend.options.pool_size: unknown option")


def test_check_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["check", "--config", str(tmp_path / "nope.yaml")], capsys)
    assert code == 1
    assert "configuration file not found" in assert_one_line_error(err)


def test_check_unknown_driver_suggests_the_closest_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_file(tmp_path, "backend: {driver: hubsopt}")
    code, _, err = run(["check", "--config", path], capsys)
    assert code == 1
    reason = assert_one_line_error(err)
    assert reason.startswith("backend.driver: ")
    assert "did you mean" in reason and "hubspot" in reason


def test_check_missing_variable_names_it_without_a_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_file(tmp_path, "auth: {keys: ['${NOT_SET_ANYWHERE}']}")
    code, _, err = run(["check", "--config", path], capsys)
    assert code == 1
    assert "NOT_SET_ANYWHERE is not set" in assert_one_line_error(err)


def test_check_unreachable_backend_exits_1_and_closes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], drivers: Any
) -> None:
    path = config_file(tmp_path, "backend: {driver: 'cli_test_drivers:Unreachable'}")
    code, out, err = run(["check", "--config", path], capsys)
    assert code == 1
    assert out == ""
    reason = assert_one_line_error(err)
    assert "'unreachable'" in reason
    assert "backend_unavailable: cannot connect to db.internal:5432" in reason
    assert drivers._Recording.events == ["open", "close"]


def test_check_reports_setup_problems_with_the_effective_mapping(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], drivers: Any
) -> None:
    path = config_file(
        tmp_path,
        """
        backend: {driver: 'cli_test_drivers:MissingColumn'}
        mapping: {contacts: {fields: {email: email_address}}}
        """,
    )
    code, out, err = run(["check", "--config", path], capsys)
    assert code == 1
    assert out == "note: portal 42\n"
    reason = assert_one_line_error(err)
    assert "not set up: crm_people.email_address: no such column" in reason
    maps = drivers.MissingColumn.seen_maps
    assert maps[Entity.CONTACT]["email"] == "email_address"
    assert drivers._Recording.events == ["open", "close"]


def test_check_prints_setup_notes_and_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], drivers: Any
) -> None:
    path = config_file(tmp_path, "backend: {driver: 'cli_test_drivers:Noted'}")
    code, out, err = run(["check", "--config", path], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "note: contactLinkTemplate: https://crm.example/c/{{crmId}}"
    assert lines[1].startswith("ok: ")


def test_check_backend_refusing_credentials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], drivers: Any
) -> None:
    path = config_file(tmp_path, "backend: {driver: 'cli_test_drivers:BadCredentials'}")
    code, _, err = run(["check", "--config", path], capsys)
    assert code == 1
    assert "backend_auth_failed" in assert_one_line_error(err)
    assert drivers._Recording.events == ["open", "close"]


def test_check_unexpected_driver_error_is_one_line_without_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], drivers: Any
) -> None:
    path = config_file(
        tmp_path,
        f"""
        backend:
          driver: 'cli_test_drivers:Buggy'
          options:
            url: "postgresql://crm:{SECRET}@db.internal/crm"
            token: "tok-{SECRET}"
        """,
    )
    code, _, err = run(["check", "--config", path], capsys)
    assert code == 1
    reason = assert_one_line_error(err)
    assert "RuntimeError: boom at postgresql://***@db.internal/crm" in reason
    assert "second line" not in reason
    assert SECRET not in err


def test_check_times_out_on_a_silent_backend(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], drivers: Any
) -> None:
    path = config_file(tmp_path, "backend: {driver: 'cli_test_drivers:Slow'}")
    code, _, err = run(["check", "--config", path, "--timeout", "0.05"], capsys)
    assert code == 1
    assert "did not answer within 0.05s" in assert_one_line_error(err)
    assert drivers._Recording.events == ["open", "close"]


def test_check_output_is_one_line_even_when_the_driver_logs(tmp_path: Path, drivers: Any) -> None:
    # In a real process (pytest's own log handlers would hide logging's last-resort output).
    path = config_file(tmp_path, "backend: {driver: 'cli_test_drivers:Noisy'}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    command = [sys.executable, "-m", "adapter", "check", "--config", path]
    quiet = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert quiet.returncode == 1
    assert quiet.stdout == ""
    assert "backend_unavailable: still down after retries" in assert_one_line_error(quiet.stderr)
    verbose = subprocess.run(
        [*command, "--verbose"], capture_output=True, text=True, env=env, timeout=60
    )
    assert verbose.returncode == 1
    assert "attempt 1 failed" in verbose.stderr


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2


# -- redaction ---------------------------------------------------------------------------------


def test_redact_removes_keys_secret_options_and_url_credentials() -> None:
    settings = Settings.model_validate(
        {
            "auth": {"keys": ["api-key-123456"]},
            "backend": {"driver": "x:Y", "options": {"password": "hunter22", "host": "db"}},
        }
    )
    text = "api-key-123456 / hunter22 / mysql://root:pw@db:3306/x / db"
    assert redact(text, settings.secret_values()) == "*** / *** / mysql://***@db:3306/x / db"


def test_redact_masks_a_url_password_containing_at_signs() -> None:
    text = "open postgresql+asyncpg://admin:P@ss@w0rd@10.0.0.1:5432/db: unreachable"
    assert redact(text) == "open postgresql+asyncpg://***@10.0.0.1:5432/db: unreachable"


# -- serve -------------------------------------------------------------------------------------


def test_ensure_api_key_keeps_configured_keys_and_prints_nothing() -> None:
    settings = Settings.model_validate({"auth": {"keys": ["configured"]}})
    stream = io.StringIO()
    assert ensure_api_key(settings, stream) is settings
    assert stream.getvalue() == ""


def test_ensure_api_key_generates_a_strong_key_and_prints_it_once() -> None:
    settings = Settings.model_validate({"auth": {"header": "X-Enginy-Key"}})
    stream = io.StringIO()
    resolved = ensure_api_key(settings, stream)
    [key] = [k.get_secret_value() for k in resolved.auth.keys]
    assert len(key) >= 40
    printed = stream.getvalue()
    assert printed.count(key) == 2  # once on its own line, once inside the curl example
    assert f"\n    {key}\n" in printed
    assert "X-Enginy-Key" in printed
    assert settings.auth.keys == []  # the input is not modified
    other = ensure_api_key(settings, io.StringIO())
    assert other.auth.keys[0].get_secret_value() != key


def test_environment_key_counts_as_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGINY_ADAPTER_API_KEY", "from-env")
    settings = load_settings(None)
    stream = io.StringIO()
    assert ensure_api_key(settings, stream).auth.keys == [SecretStr("from-env")]
    assert stream.getvalue() == ""


class _FakeUvicorn:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, app: Any, **kwargs: Any) -> None:
        self.calls.append({"app": app, **kwargs})


@pytest.fixture
def fake_uvicorn(monkeypatch: pytest.MonkeyPatch) -> _FakeUvicorn:
    import uvicorn

    fake = _FakeUvicorn()
    monkeypatch.setattr(uvicorn, "run", fake)
    return fake


@pytest.mark.anyio
async def test_serve_without_configuration_generates_a_key_and_requires_it(
    capsys: pytest.CaptureFixture[str],
    fake_uvicorn: _FakeUvicorn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The embedded default is an SQLite file in the working directory.
    monkeypatch.chdir(tmp_path)
    code, out, err = run(["serve", "--host", "0.0.0.0", "--port", "9911"], capsys)
    assert code == 0
    [call] = fake_uvicorn.calls
    assert (call["host"], call["port"]) == ("0.0.0.0", 9911)
    key = err.split("generated one for this run:", 1)[1].split()[0]
    assert len(key) >= 40
    # The example points at where it listens (0.0.0.0 is reached through the loopback).
    assert f"curl -H 'X-API-Key: {key}' http://127.0.0.1:9911/health" in err
    assert key not in out

    app = call["app"]
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        assert (await client.get("/health")).status_code == 401
        assert (await client.get("/health", headers={"X-API-Key": "wrong"})).status_code == 401
        response = await client.get("/health", headers={"x-api-key": key})
        assert response.status_code == 200
        assert response.json()["status"] == "ok"
    assert (tmp_path / "enginy-adapter.db").is_file()


def test_serve_with_a_configured_key_prints_no_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_uvicorn: _FakeUvicorn
) -> None:
    path = config_file(tmp_path, f"auth: {{keys: [{SECRET}]}}\nserver: {{port: 9100}}")
    code, out, err = run(["serve", "--config", path], capsys)
    assert code == 0
    assert fake_uvicorn.calls[0]["port"] == 9100
    assert fake_uvicorn.calls[0]["host"] == "127.0.0.1"
    assert SECRET not in out + err
    assert "no API key configured" not in err
    # Only the dashboard's password is generated (and printed) ...
    assert "no dashboard password configured; generated one" in err
    # ... and with that configured too, nothing is printed at all.
    path = config_file(tmp_path, f"auth: {{keys: [{SECRET}]}}\nui: {{password: dash-pass-77}}")
    code, out, err = run(["serve", "--config", path], capsys)
    assert (code, out, err) == (0, "", "")


def test_serve_with_a_bad_configuration_does_not_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_uvicorn: _FakeUvicorn
) -> None:
    path = config_file(tmp_path, "backend: {driver: memroy}")
    code, _, err = run(["serve", "--config", path], capsys)
    assert code == 1
    assert assert_one_line_error(err).startswith("backend.driver: ")
    assert fake_uvicorn.calls == []


def test_serve_rejects_an_invalid_port_flag(
    capsys: pytest.CaptureFixture[str], fake_uvicorn: _FakeUvicorn
) -> None:
    code, _, err = run(["serve", "--port", "70000"], capsys)
    assert code == 1
    assert assert_one_line_error(err).startswith("server.port (from --port): ")
    assert fake_uvicorn.calls == []


# -- the command table and python -m adapter ---------------------------------------------------


def test_a_registered_command_gets_config_and_its_own_arguments(tmp_path: Path) -> None:
    seen: list[argparse.Namespace] = []

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--base-url")

    def run_links(args: argparse.Namespace) -> int:
        seen.append(args)
        return 7

    table = {**COMMANDS, "links": Command("print link templates", add_arguments, run_links)}
    args = build_parser(table).parse_args(["links", "--config", "c.yaml", "--base-url", "u"])
    assert args._run(args) == 7
    assert (seen[0].config, seen[0].base_url) == ("c.yaml", "u")


def test_a_command_may_do_without_the_configuration_option() -> None:
    table = {"ping": Command("ping", lambda p: None, lambda a: 0, uses_config=False)}
    args = build_parser(table).parse_args(["ping"])
    assert not hasattr(args, "config")
    with pytest.raises(SystemExit):
        build_parser(table).parse_args(["ping", "--config", "x.yaml"])


def test_simulate_is_wired_in_without_config(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["simulate", "--help"])
    assert info.value.code == 0
    usage = capsys.readouterr().out
    assert "--url" in usage and "--config" not in usage


def test_register_adds_to_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_commands, "COMMANDS", dict(COMMANDS))
    cli.register("hello", Command("say hello", lambda p: None, lambda a: 5))
    assert main(["hello"]) == 5


def test_python_dash_m_adapter_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "adapter", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert "serve" in result.stdout and "check" in result.stdout


@pytest.mark.parametrize(
    ("driver", "reason"),
    [
        ("SchemaMismatch", "backend 'schemamismatch' cannot start: schema_mismatch: crm_people: "
                           "no column email_address"),
        ("BadOption", "backend 'badoption' cannot start: backend.options.schema: unknown schema"),
    ],
)
def test_serve_stops_in_one_line_when_the_backend_cannot_start_for_a_configuration_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], drivers: Any, driver: str, reason: str
) -> None:
    import logging
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = config_file(tmp_path, f"""
        auth: {{keys: [configured-key]}}
        ui: {{password: dashboard-pass}}
        backend: {{driver: 'cli_test_drivers:{driver}', options: {{token: {SECRET}}}}}
        """)
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        # Real uvicorn: its lifespan handling decides what reaches the terminal.
        code, out, err = run(["serve", "--config", path, "--port", str(port),
                              "--log-level", "warning"], capsys)
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1, err
    assert "Traceback" not in err and "Application startup failed" not in err
    assert reason in err
    assert SECRET not in err
    assert drivers._Recording.events == ["open"]
