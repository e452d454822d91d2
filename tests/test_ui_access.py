"""Who gets into the dashboard, and how it is found: its own password (generated and printed
when none is configured), login throttling per client address, a listener of its own, the
HTTPS warning next to the base URL, search and filters on the lists."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from adapter.app import create_app
from adapter.cli import main
from adapter.cli.serve import ensure_ui_password
from adapter.config import ConfigError, load_settings
from adapter.http.login import LoginThrottle, client_key
from backends.memory import MemoryBackend
from tests.conftest import API_KEY, UI_PASSWORD, Serve, make_settings

AUTH = ("anyone", UI_PASSWORD)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------------------------
# The password: never an API key, generated and printed once when not configured
# --------------------------------------------------------------------------------------------


def test_generated_password_is_strong_printed_once_and_not_a_key() -> None:
    settings = make_settings(ui={"password": None}, server={"port": 9123})
    stream = io.StringIO()
    result = ensure_ui_password(settings, stream)
    assert result.ui.password is not None
    password = result.ui.password.get_secret_value()
    assert len(password) >= 24 and password not in (k.get_secret_value() for k in result.auth.keys)
    out = stream.getvalue()
    assert out.count(password) == 1
    assert "http://127.0.0.1:9123/ui" in out and "ENGINY_ADAPTER_UI_PASSWORD" in out
    # Configured, or no dashboard: nothing generated, nothing printed.
    for configured in (make_settings(), make_settings(ui={"password": None, "enabled": False})):
        quiet = io.StringIO()
        assert ensure_ui_password(configured, quiet) is configured
        assert quiet.getvalue() == ""
    other = ensure_ui_password(settings, io.StringIO()).ui.password
    assert other is not None and other.get_secret_value() != password


def test_the_environment_sets_the_password(tmp_path: Any) -> None:
    settings = load_settings(None, environ={"ENGINY_ADAPTER_UI_PASSWORD": " from-env-pw "})
    assert settings.ui.password is not None
    assert settings.ui.password.get_secret_value() == "from-env-pw"
    assert "from-env-pw" in settings.secret_values()


@pytest.mark.anyio
async def test_an_app_without_a_dashboard_password_keeps_it_locked(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    # `serve` always sets one; an app built otherwise does not fall back to the API keys.
    with caplog.at_level(logging.WARNING, logger="adapter.ui"):
        async with serve(make_settings(ui={"password": None})) as c:
            for password in (API_KEY, "", "anything"):
                locked = await c.get("/ui", auth=("anyone", password))
                assert locked.status_code == 401
                assert "no password configured, so it is locked" in locked.text
            assert (await c.get("/health")).status_code == 200
    assert "ui.password is not set: the dashboard at /ui refuses every login" in caplog.text


class _FakeUvicorn:
    def __init__(self) -> None:
        self.apps: list[Any] = []

    def __call__(self, app: Any, **kwargs: Any) -> None:
        self.apps.append(app)


@pytest.mark.anyio
async def test_serve_prints_a_generated_password_that_opens_the_dashboard(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("ENGINY_ADAPTER_CONFIG", "ENGINY_ADAPTER_UI_PASSWORD", "ENGINY_ADAPTER_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ENGINY_ADAPTER_API_KEY", API_KEY)
    fake = _FakeUvicorn()
    monkeypatch.setattr(uvicorn, "run", fake)
    assert main(["serve"]) == 0
    err = capsys.readouterr().err
    match = re.search(
        r"no dashboard password configured; generated one for this run:\n\n    (\S+)\n", err
    )
    assert match, err
    password = match.group(1)
    assert API_KEY not in err  # a configured key is never printed
    app = fake.apps[0]
    transport = httpx.ASGITransport(app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://adapter") as client,
    ):
        assert (await client.get("/ui", auth=("admin", password))).status_code == 200
        assert (await client.get("/ui", auth=("admin", API_KEY))).status_code == 401


# --------------------------------------------------------------------------------------------
# Throttling
# --------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_locks_an_address_after_its_failures_and_forgets_it() -> None:
    clock = Clock()
    throttle = LoginThrottle(3, 60.0, clock=clock)
    for _ in range(2):
        throttle.failed("10.0.0.1")
        assert throttle.retry_after("10.0.0.1") is None
    throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == 60.0
    assert throttle.retry_after("10.0.0.2") is None  # others are not affected
    clock.now += 45
    assert throttle.retry_after("10.0.0.1") == 15.0
    clock.now += 15.5
    assert throttle.retry_after("10.0.0.1") is None
    assert len(throttle) == 0  # expired entries are gone, not just ignored


def test_throttle_success_clears_and_spaced_failures_do_not_add_up() -> None:
    clock = Clock()
    throttle = LoginThrottle(3, 60.0, clock=clock)
    throttle.failed("a")
    throttle.failed("a")
    throttle.succeeded("a")
    throttle.failed("a")
    throttle.failed("a")
    assert throttle.retry_after("a") is None
    clock.now += 61  # more than lockout_seconds after the last failure: forgotten
    throttle.failed("a")
    throttle.failed("a")
    assert throttle.retry_after("a") is None


def test_throttle_memory_is_bounded() -> None:
    throttle = LoginThrottle(3, 60.0, max_clients=100, clock=Clock())
    for n in range(5000):
        throttle.failed(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
    assert len(throttle) == 100


@pytest.mark.parametrize(
    ("client", "key"),
    [
        (("192.0.2.7", 5000), "192.0.2.7"),
        (("2001:db8:1:2:aaaa::1", 5000), "2001:db8:1:2::/64"),
        (("2001:db8:1:2:ffff:ffff:ffff:ffff", 1), "2001:db8:1:2::/64"),
        (("2001:db8:1:3::1", 1), "2001:db8:1:3::/64"),
        (("::ffff:192.0.2.7", 1), "192.0.2.7"),
        (("testclient", 1), "testclient"),
        (None, "unknown"),
    ],
)
def test_failures_count_per_address_and_per_ipv6_64(client: Any, key: str) -> None:
    assert client_key({"client": client}) == key


@pytest.mark.anyio
async def test_dashboard_refuses_an_address_after_failed_logins(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(
        make_settings(ui={"max_failed_logins": 3, "lockout_seconds": 120}), MemoryBackend()
    )

    def client(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://adapter")

    async with (
        app.router.lifespan_context(app),
        client("203.0.113.5") as bad,
        client("203.0.113.6") as good,
    ):
        # Asking for the prompt (no credentials) is not a failed login.
        for _ in range(5):
            assert (await bad.get("/ui")).status_code == 401
        with caplog.at_level(logging.WARNING, logger="adapter.ui"):
            for _ in range(3):
                assert (await bad.get("/ui", auth=("x", "guess"))).status_code == 401
        assert "3 failed logins from 203.0.113.5; refused for 120 s" in caplog.text
        # Now even the right password is not checked from that address.
        refused = await bad.get("/ui", auth=AUTH)
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 120
        assert "try again in" in refused.text and "Overview" not in refused.text
        assert refused.headers["cache-control"] == "no-store"
        # Another address logs in; the API is not affected.
        assert (await good.get("/ui", auth=AUTH)).status_code == 200
        health = await bad.get("/health", headers={"X-API-Key": API_KEY})
        assert health.status_code == 200


# --------------------------------------------------------------------------------------------
# A listener of its own
# --------------------------------------------------------------------------------------------


async def _serve(app: Any, port: int) -> AsyncIterator[None]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(300):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        await task


@pytest.mark.anyio
async def test_dashboard_on_its_own_listener() -> None:
    main_port, ui_port = free_port(), free_port()
    settings = make_settings(
        server={"port": main_port, "root_path": "/enginy"},
        ui={"listen": f"127.0.0.1:{ui_port}"},
    )
    app = create_app(settings, MemoryBackend())
    async for _ in _serve(app, main_port):
        async with httpx.AsyncClient(timeout=10) as c:
            main_base = f"http://127.0.0.1:{main_port}/enginy"
            created = await c.post(
                f"{main_base}/contacts",
                json={"contacts": [{"externalId": "own-1", "email": "own@example.com"}]},
                headers={"X-API-Key": API_KEY},
            )
            crm_id = created.json()["results"][0]["crmId"]
            # Not on the main port any more: there /ui is an ordinary, unknown API path.
            assert (await c.get(f"{main_base}/ui", auth=AUTH)).status_code == 401
            missing = await c.get(f"{main_base}/ui", headers={"X-API-Key": API_KEY})
            assert missing.status_code == 404
            # On its own port, at /ui, with its password.
            ui_base = f"http://127.0.0.1:{ui_port}"
            assert (await c.get(f"{ui_base}/ui")).status_code == 401
            overview = await c.get(f"{ui_base}/ui", auth=AUTH)
            assert overview.status_code == 200
            # Enginy's base URL is the service's; the record pages are on this listener.
            assert f"<code>http://127.0.0.1:{main_port}/enginy</code>" in overview.text
            assert f"{ui_base}/ui/contacts/{{{{crmId}}}}" in overview.text
            page = await c.get(f"{ui_base}/ui/contacts/{crm_id}", auth=AUTH)
            assert page.status_code == 200 and "own@example.com" in page.text
    # Stopped with the app.
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", ui_port)) != 0


def test_dashboard_listener_problems_are_configuration_errors(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError, match=r"^ui\.listen: a listener of its own needs"):
        load_settings(
            None,
            environ={
                "ENGINY_ADAPTER_CONFIG": _write(
                    tmp_path,
                    """
            server: {workers: 2}
            ui: {listen: "127.0.0.1:9001"}
            """,
                )
            },
        )
    with pytest.raises(ConfigError, match=r"^ui\.listen: must be another port than server"):
        load_settings(
            None,
            environ={
                "ENGINY_ADAPTER_CONFIG": _write(
                    tmp_path,
                    """
            server: {port: 9001}
            ui: {listen: "127.0.0.1:9001"}
            """,
                )
            },
        )
    with pytest.raises(ConfigError, match=r"^ui\.listen: must be host:port"):
        load_settings(
            None,
            environ={
                "ENGINY_ADAPTER_CONFIG": _write(
                    tmp_path,
                    """
            ui: {listen: "9001"}
            """,
                )
            },
        )
    # An address in use stops serve in one line, before any key or password is printed.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = _write(
            tmp_path,
            f"""
            auth: {{keys: [{API_KEY}]}}
            backend: {{driver: memory}}
            ui: {{listen: "127.0.0.1:{port}"}}
            """,
        )
        assert main(["serve", "--config", config]) == 1
    err = capsys.readouterr().err
    assert err == f"error: ui.listen: cannot listen on 127.0.0.1:{port} (Address already in use)\n"


def _write(tmp_path: Any, text: str) -> str:
    import textwrap

    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


# --------------------------------------------------------------------------------------------
# HTTPS warning, search and filters
# --------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_https_warning_next_to_a_plain_http_base_url(serve: Serve) -> None:
    async with serve() as c:
        html = (await c.get("/ui", auth=AUTH)).text
        connection = html.split('id="connection"')[1].split("</table>")[0]
        assert 'id="https-warning"' in connection and "Enginy only calls" in connection
    public = make_settings(ui={"public_base_url": "https://crm.example.com"})
    async with serve(public) as c:
        html = (await c.get("/ui", auth=AUTH)).text
        assert "<code>https://crm.example.com</code>" in html
        assert 'id="https-warning"' not in html


@pytest.fixture
async def stocked(serve: Serve) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(make_settings(ui={"page_size": 2})) as c:
        contacts = [
            {"externalId": "s-1", "email": "jane@acme.example", "firstName": "Jane"},
            {"externalId": "s-2", "email": "john@acme.example", "firstName": "John"},
            {"externalId": "s-3", "email": "mary@globex.example", "firstName": "Mary"},
            {"externalId": "s-4", "email": "joan@acme.example", "firstName": "<b>Joan</b>"},
        ]
        assert (await c.post("/contacts", json={"contacts": contacts})).status_code == 200
        for subject in ("Call Jane", "Send deck to John", "Call Mary"):
            assert (await c.post("/tasks", json={"subject": subject})).status_code == 200
        yield c


def _listed(html: str) -> list[str]:
    return re.findall(r"<td>(s-\d)</td>", html)


@pytest.mark.anyio
async def test_record_list_search_with_paging(stocked: httpx.AsyncClient) -> None:
    c = stocked
    page = await c.get("/ui/contacts", params={"q": "ACME"}, auth=AUTH)
    assert page.status_code == 200
    assert _listed(page.text) == ["s-4", "s-2"]  # newest first, two per page
    assert 'value="ACME"' in page.text
    # The next page keeps the search.
    assert 'href="?q=ACME&amp;page=1"' in page.text
    rest = await c.get("/ui/contacts", params={"q": "ACME", "page": "1"}, auth=AUTH)
    assert _listed(rest.text) == ["s-1"] and "page=2" not in rest.text
    nothing = await c.get("/ui/contacts", params={"q": "<b>nobody</b>"}, auth=AUTH)
    assert _listed(nothing.text) == []
    assert "No contacts match “&lt;b&gt;nobody&lt;/b&gt;”" in nothing.text
    assert _listed((await c.get("/ui/contacts", params={"q": "s-3"}, auth=AUTH)).text) == ["s-3"]


@pytest.mark.anyio
async def test_task_list_filters_by_status_and_search(stocked: httpx.AsyncClient) -> None:
    c = stocked
    listing = await c.get("/ui/tasks", params={"q": "call"}, auth=AUTH)
    assert re.findall(r">(Call \w+)</a>", listing.text) == ["Call Mary", "Call Jane"]
    ids = dict(re.findall(r'/ui/tasks/([^"]+)">([^<]+)</a>', listing.text))
    mary = next(task_id for task_id, subject in ids.items() if subject == "Call Mary")
    done = await c.patch(f"/tasks/{mary}", json={"completed": True})
    assert done.status_code == 200, done.text
    completed = await c.get("/ui/tasks", params={"status": "completed"}, auth=AUTH)
    assert re.findall(r'/ui/tasks/[^"]+">([^<]+)</a>', completed.text) == ["Call Mary"]
    assert '<option value="completed" selected>' in completed.text
    open_calls = await c.get("/ui/tasks", params={"status": "open", "q": "CALL"}, auth=AUTH)
    assert re.findall(r'/ui/tasks/[^"]+">([^<]+)</a>', open_calls.text) == ["Call Jane"]
    # An unknown status is "all", not an error.
    everything = await c.get("/ui/tasks", params={"status": "bogus"}, auth=AUTH)
    assert len(re.findall(r'/ui/tasks/[^"]+">', everything.text)) == 2  # page size
    assert 'href="?page=1"' in everything.text
