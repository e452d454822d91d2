"""A.12 health with a cached backend check, and A.13 serving under a root path."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from backends.base import AuthFailed, BackendError, RateLimited, Unavailable
from backends.memory import MemoryBackend
from tests.conftest import error_body

pytestmark = pytest.mark.anyio


class PingBackend(MemoryBackend):
    """Counts pings; fails them with ``error`` when set; can hold them until released."""

    def __init__(self, error: BackendError | None = None) -> None:
        super().__init__()
        self.error = error
        self.pings = 0
        self.gate: anyio.Event | None = None

    async def ping(self) -> None:
        self.pings += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a12_health_is_ok(serve: Any) -> None:
    async with serve() as client:
        response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_a12_health_is_503_when_backend_unreachable(serve: Any) -> None:
    backend = PingBackend(Unavailable("cannot connect to db.internal:5432"))
    async with serve(backend=backend) as client:
        response = await client.get("/health")
    assert response.status_code == 503
    # The cause stays in the log: the body never names the database's host (11.3).
    assert error_body(response) == {
        "status": "unavailable",
        "error": "backend_unavailable",
        "message": "The CRM backend is unavailable; retry later.",
    }


async def test_a12_health_is_503_when_backend_refuses_our_credentials(serve: Any) -> None:
    async with serve(backend=PingBackend(AuthFailed("token expired"))) as client:
        response = await client.get("/health")
    assert response.status_code == 503
    assert response.json()["error"] == "backend_auth_failed"
    assert response.json()["status"] == "unavailable"


async def test_a12_health_503_carries_retry_after_when_known(serve: Any) -> None:
    async with serve(backend=PingBackend(RateLimited("slow down", retry_after=12))) as client:
        response = await client.get("/health")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "12"


async def test_a12_health_survives_an_unexpected_ping_error(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    backend = PingBackend()
    backend.error = RuntimeError("secret-ish internal detail")  # type: ignore[assignment]
    async with serve(backend=backend) as client:
        response = await client.get("/health")
    assert response.status_code == 503
    assert "secret-ish" not in response.text
    assert "secret-ish" in caplog.text


async def test_a12_health_result_is_cached(serve: Any, settings_for: Any) -> None:
    backend = PingBackend()
    clock = Clock()
    async with serve(settings_for(server={"health_cache_seconds": 5}), backend) as client:
        client.app.state.service.health._clock = clock
        for _ in range(10):
            assert (await client.get("/health")).status_code == 200
        assert backend.pings == 1
        clock.now += 4.9
        await client.get("/health")
        assert backend.pings == 1
        clock.now += 0.2
        await client.get("/health")
        assert backend.pings == 2


async def test_a12_cached_failure_then_recovery(serve: Any, settings_for: Any) -> None:
    backend = PingBackend(Unavailable("down"))
    clock = Clock()
    async with serve(settings_for(server={"health_cache_seconds": 5}), backend) as client:
        client.app.state.service.health._clock = clock
        assert (await client.get("/health")).status_code == 503
        backend.error = None
        assert (await client.get("/health")).status_code == 503  # still cached
        clock.now += 6
        assert (await client.get("/health")).status_code == 200
    assert backend.pings == 2


async def test_a12_concurrent_health_calls_share_one_ping(serve: Any) -> None:
    backend = PingBackend()
    backend.gate = anyio.Event()
    statuses: list[int] = []
    async with serve(backend=backend) as client:

        async def probe() -> None:
            statuses.append((await client.get("/health")).status_code)

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(probe)
            await anyio.wait_all_tasks_blocked()
            backend.gate.set()
    assert statuses == [200] * 20
    assert backend.pings == 1


async def test_a13_served_under_root_path(serve: Any, settings_for: Any) -> None:
    async with serve(settings_for(server={"root_path": "/enginy"})) as client:
        prefixed = await client.get("/enginy/health")
        bare = await client.get("/health")
        created = await client.post(
            "/enginy/contacts", json={"contacts": [{"externalId": "l1", "email": "a@b.c"}]}
        )
        task = await client.post("/enginy/tasks", json={"subject": "x"})
        got = await client.get(f"/enginy/tasks/{task.json()['id']}")
    assert prefixed.status_code == 200
    assert prefixed.json() == {"status": "ok"}
    assert bare.status_code == 404
    assert created.status_code == 200
    assert got.status_code == 200


async def test_a13_root_path_still_requires_the_key(serve: Any, settings_for: Any) -> None:
    async with serve(settings_for(server={"root_path": "/enginy/"}), key=None) as client:
        response = await client.get("/enginy/health")
    assert response.status_code == 401


# -- a backend that cannot be opened at start-up ---------------------------------------------


class FlakyOpenBackend(MemoryBackend):
    """``open()`` fails with ``errors`` in turn, then succeeds."""

    def __init__(self, *errors: Exception) -> None:
        super().__init__()
        self.errors = list(errors)
        self.opens = 0
        self.closes = 0

    async def open(self) -> None:
        self.opens += 1
        if self.errors:
            raise self.errors.pop(0)
        await super().open()

    async def close(self) -> None:
        self.closes += 1
        await super().close()


def _app_and_client(backend: MemoryBackend, **settings: Any) -> tuple[Any, Any]:
    import httpx

    from adapter.app import create_app
    from adapter.ops.startup import Backoff
    from tests.conftest import API_KEY, make_settings

    app = create_app(make_settings(**settings), backend,
                     open_backoff=Backoff(first=0.05, factor=2, cap=0.1))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://adapter",
                               headers={"X-API-Key": API_KEY})
    return app, client


async def test_a12_starts_while_backend_is_down_and_serves_once_it_opens(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "s3cret-db-password"
    backend = FlakyOpenBackend(
        Unavailable(f"cannot connect to postgresql://crm:{secret}@db:5432/crm"),
        Unavailable("cannot connect to db:5432 (connection refused)"),
    )
    app, client = _app_and_client(backend)
    caplog.set_level("INFO", logger="adapter.startup")
    async with app.router.lifespan_context(app), client:
        health = await client.get("/health")
        assert health.status_code == 503
        body = health.json()
        assert body["status"] == "unavailable"
        assert body["error"] == "backend_unavailable" and body["message"]
        assert "db:5432" not in health.text and secret not in health.text
        create = await client.post("/contacts", json={"contacts": [{"externalId": "e1"}]})
        assert create.status_code == 503
        assert create.json()["error"] == "backend_unavailable"
        assert int(create.headers["retry-after"]) >= 1
        # The key is still required during the outage (A.2); no-backend routes still answer.
        assert (await client.get("/health", headers={"X-API-Key": "wrong"})).status_code == 401
        assert (await client.get("/openapi.json")).status_code == 200
        with anyio.fail_after(5):
            while (await client.get("/health")).status_code != 200:
                await anyio.sleep(0.02)
        assert backend.opens == 3
        create = await client.post("/contacts", json={"contacts": [{"externalId": "e1"}]})
        assert create.status_code == 200, create.text
    assert backend.closes == 1
    lines = [r for r in caplog.records if r.name == "adapter.startup"]
    failures = [r for r in lines if r.levelname == "WARNING"]
    assert len(failures) == 2  # one line per failed attempt
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in lines)
    assert "attempt 1" in failures[0].getMessage() and "retrying in" in failures[0].getMessage()
    assert secret not in caplog.text


async def test_a12_non_retryable_open_error_stops_start_up_in_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from adapter.ops.startup import StartupFailed

    backend = FlakyOpenBackend(BackendError("crm_people: no column email_address",
                                            code="schema_mismatch"))
    app, client = _app_and_client(backend)
    with pytest.raises(StartupFailed, match="schema_mismatch: crm_people: no column"):
        async with app.router.lifespan_context(app):
            pass
    assert backend.opens == 1 and backend.closes == 0
    [line] = [r for r in caplog.records if r.name == "adapter.startup"]
    assert line.levelname == "ERROR" and line.exc_info is None
    await client.aclose()


async def test_a12_open_retries_back_off_exponentially_up_to_the_cap(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Backoff(first=0.05, factor=2, cap=0.1): 0.05 s after the first failure, then 0.1 s.
    backend = FlakyOpenBackend(*(Unavailable(f"down {n}") for n in range(3)))
    app, client = _app_and_client(backend)
    caplog.set_level("INFO", logger="adapter.startup")
    async with app.router.lifespan_context(app), client:
        with anyio.fail_after(5):
            while (await client.get("/health")).status_code != 200:
                await anyio.sleep(0.02)
    warnings = [r.getMessage() for r in caplog.records
                if r.name == "adapter.startup" and r.levelname == "WARNING"]
    assert [w.rsplit("retrying in ", 1)[1] for w in warnings] == ["0.05s", "0.1s", "0.1s"]
    assert [f"attempt {n}" in w for n, w in enumerate(warnings, 1)] == [True] * 3
    assert any("opened at attempt 4" in r.getMessage() for r in caplog.records)


async def test_a12_a_driver_bug_in_a_later_open_is_logged_with_its_stack_and_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = FlakyOpenBackend(Unavailable("down"), RuntimeError("driver bug"))
    app, client = _app_and_client(backend)
    async with app.router.lifespan_context(app), client:
        with anyio.fail_after(5):
            while (await client.get("/health")).status_code != 200:
                await anyio.sleep(0.02)
    assert backend.opens == 3
    [bug] = [r for r in caplog.records if r.name == "adapter.startup" and r.levelname == "ERROR"]
    assert "raised unexpectedly (attempt 2)" in bug.getMessage()
    assert bug.exc_info is not None and isinstance(bug.exc_info[1], RuntimeError)


async def test_a12_a_driver_bug_in_the_first_open_stops_start_up() -> None:
    backend = FlakyOpenBackend(RuntimeError("driver bug"))
    app, client = _app_and_client(backend)
    with pytest.raises(RuntimeError, match="driver bug"):
        async with app.router.lifespan_context(app):
            pass
    assert backend.opens == 1
    await client.aclose()


async def test_a12_a_non_retryable_error_in_a_later_open_keeps_answering_503_without_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = FlakyOpenBackend(
        Unavailable("down"), BackendError("crm_people: no column email", code="schema_mismatch")
    )
    app, client = _app_and_client(backend)
    async with app.router.lifespan_context(app), client:
        with anyio.fail_after(5):
            while backend.opens < 2 or app.state.backend_gate.fatal is None:
                await anyio.sleep(0.02)
        await anyio.sleep(0.3)  # longer than the backoff cap: no further attempt
        health = await client.get("/health")
        assert health.status_code == 503
        # The reason is in the log, not in the body (it names the CRM's tables).
        assert "crm_people" not in health.text
        assert "operator" in health.json()["message"]
        assert "retry-after" not in health.headers
    assert backend.opens == 2 and backend.closes == 0
    [line] = [r for r in caplog.records if r.name == "adapter.startup" and r.levelname == "ERROR"]
    assert "cannot start: schema_mismatch" in line.getMessage() and line.exc_info is None
