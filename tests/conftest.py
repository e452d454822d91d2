"""Shared pytest configuration: async tests run on asyncio through anyio's plugin, and the API
tests get the app served through httpx's ASGI transport with its lifespan running."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapter.app import create_app
from adapter.config import Settings
from backends.base import Backend
from backends.memory import MemoryBackend

# Hypothesis (under tests/test_schemathesis.py) keeps caches in a directory of its own; keep it
# out of the checkout, reused between runs.
try:
    from hypothesis.configuration import set_hypothesis_home_dir
except ImportError:  # pragma: no cover - the [test] extra installs it
    pass
else:
    set_hypothesis_home_dir(str(Path(tempfile.gettempdir()) / "enginy-adapter-hypothesis"))

#: The keys every API test's configuration accepts (two, as during a rotation).
API_KEY = "test-key-primary-7f3a"
ROTATED_KEY = "test-key-rotated-91bc"
#: The dashboard password every test configuration has (the dashboard requires one).
UI_PASSWORD = "test-dashboard-password-4e7d"

Serve = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
MakeSettings = Callable[..., Settings]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def make_settings(**sections: Any) -> Settings:
    """Settings with both test keys and the dashboard password, overridden section by section
    (nested dicts merge)."""
    raw = _merge(
        {"auth": {"keys": [API_KEY, ROTATED_KEY]}, "ui": {"password": UI_PASSWORD}}, sections
    )
    return Settings.model_validate(raw)


@asynccontextmanager
async def serve_app(
    settings: Settings | None = None,
    backend: Backend | None = None,
    *,
    key: str | None = API_KEY,
    raise_app_exceptions: bool = True,
) -> AsyncIterator[httpx.AsyncClient]:
    """Create the app, run its lifespan, and yield a client that sends ``key`` (if any)."""
    app = create_app(settings or make_settings(), backend or MemoryBackend())
    headers = {"X-API-Key": key} if key is not None else {}
    transport = httpx.ASGITransport(app, raise_app_exceptions=raise_app_exceptions)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://adapter", headers=headers) as c,
    ):
        c.app = app  # type: ignore[attr-defined]  # lets a test reach app.state.service
        yield c


@pytest.fixture(autouse=True)
def _isolated_working_directory(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test in its own directory: the embedded default backend is an SQLite file in
    the working directory, and no test may leave one in the checkout (or share one)."""
    monkeypatch.chdir(tmp_path)


#: The loggers whose set-up ``configure_logging`` (what ``serve`` and ``worker_app`` run)
#: changes: the root logger and uvicorn's.
_CONFIGURED_LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access")


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """Put the process's logging back as it was after each test. A test that builds the app
    the way ``serve`` does (``run_server``, ``worker_app``) routes every logger to a handler on
    the ``sys.stderr`` of that moment, which pytest closes when the test ends: left in place,
    a later test's server thread would log into that closed stream ("--- Logging error ---")."""
    saved = {
        name: (list(lg.handlers), lg.level, lg.propagate, lg.disabled)
        for name in _CONFIGURED_LOGGERS
        for lg in [logging.getLogger(name)]
    }
    yield
    for name, (handlers, level, propagate, disabled) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate, logger.disabled = propagate, disabled


@pytest.fixture
def settings_for() -> MakeSettings:
    return make_settings


@pytest.fixture
def serve() -> Serve:
    return serve_app


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


@pytest.fixture
async def client(backend: MemoryBackend) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(backend=backend) as c:
        yield c


@pytest.fixture
def api_keys() -> tuple[str, str]:
    """The primary and the rotated key the default test settings accept."""
    return API_KEY, ROTATED_KEY


def error_body(response: httpx.Response) -> dict[str, Any]:
    """An error answer's body without its ``requestId``, after checking that the id is the
    one of the ``X-Request-ID`` header (every error body carries it, for the operator to find
    the request's log line)."""
    body = dict(response.json())
    assert body.pop("requestId") == response.headers["x-request-id"]
    return body


@pytest.fixture
def access_lines() -> Iterator[list[logging.LogRecord]]:
    """The request lines written while the test runs (one per request, ``record.access``)."""
    from adapter.ops.telemetry import ACCESS_LOGGER

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger(ACCESS_LOGGER)
    handler = Keep()
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(old)
