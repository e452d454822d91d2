"""`enginy-adapter links`, workers, JSON logs and graceful shutdown of `serve`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import anyio
import httpx
import pytest

from adapter.app import worker_app
from adapter.cli import main
from adapter.cli.links import run_links
from adapter.cli.serve import WorkersRefused, check_workers, run_server
from adapter.config import (
    ENV_API_KEY,
    ENV_CONFIG,
    ENV_DRY_RUN,
    ENV_HOST,
    ENV_PORT,
    ENV_UI_PASSWORD,
    load_settings,
)
from adapter.links import COMPANY_KEY, CONTACT_KEY, link_templates
from backends.base import Backend, Capability
from backends.memory import MemoryBackend
from tests.browser_support import free_port
from tests.conftest import API_KEY, make_settings

ROOT = Path(__file__).resolve().parent.parent


class PortalBackend(MemoryBackend):
    """A driver that links to its own CRM's record pages (as HubSpot does)."""

    name = "portal"

    def link_templates(self) -> Mapping[str, str]:
        return {CONTACT_KEY: "https://crm.example/c/{{crmId}}",
                COMPANY_KEY: "https://crm.example/o/{{crmId}}"}


class Plain(Backend):
    name = "plain"


class SlowPing(MemoryBackend):
    """Health takes a while: lets a test have a request in flight at SIGTERM."""

    name = "slowping"
    process_local: ClassVar[bool] = False

    async def ping(self) -> None:
        await anyio.sleep(1.5)


def test_link_templates_per_driver() -> None:
    assert link_templates(MemoryBackend(), "https://a.example/enginy/") == {
        CONTACT_KEY: "https://a.example/enginy/ui/contacts/{{crmId}}",
        COMPANY_KEY: "https://a.example/enginy/ui/companies/{{crmId}}"}
    portal = link_templates(PortalBackend(), "https://a.example")
    assert portal is not None and portal[CONTACT_KEY] == "https://crm.example/c/{{crmId}}"
    assert Capability.BROWSE not in Plain.capabilities
    assert link_templates(Plain(), "https://a.example") is None


def test_links_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("server: {host: 0.0.0.0, port: 9000, root_path: /enginy}\n")
    assert main(["links", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "contactLinkTemplate: http://localhost:9000/enginy/ui/contacts/{{crmId}}" in out
    assert "companyLinkTemplate: http://localhost:9000/enginy/ui/companies/{{crmId}}" in out
    config.write_text("ui: {public_base_url: 'https://adapter.example/x'}\n")
    assert main(["links", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "contactLinkTemplate: https://adapter.example/x/ui/contacts/{{crmId}}" in out
    assert "note:" not in out
    assert main(["links", "--config", str(config), "--base-url", "https://b.example/"]) == 0
    assert "https://b.example/ui/companies/{{crmId}}" in capsys.readouterr().out


def test_links_command_for_a_driver_without_pages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("backend: {driver: 'tests.test_ops:Plain'}\n")
    assert main(["links", "--config", str(config)]) == 1
    assert "no record pages" in capsys.readouterr().out


@pytest.mark.anyio
async def test_run_links_uses_the_driver_hook() -> None:
    import io

    out = io.StringIO()
    assert await run_links(make_settings(), PortalBackend(), out) == 0
    assert "contactLinkTemplate: https://crm.example/c/{{crmId}}" in out.getvalue()


def test_memory_driver_refuses_several_workers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(WorkersRefused, match=r"server\.workers: 2 workers with the memory"):
        check_workers(make_settings(server={"workers": 2}), MemoryBackend())
    check_workers(make_settings(server={"workers": 1}), MemoryBackend())
    check_workers(make_settings(server={"workers": 4}), SlowPing())
    config = tmp_path / "c.yaml"
    config.write_text(
        f"server: {{workers: 3}}\nauth: {{keys: [{API_KEY}]}}\nbackend: {{driver: memory}}\n"
    )
    assert main(["serve", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "error: server.workers: 3 workers with the memory driver" in err


def test_run_server_passes_logging_and_shutdown_options(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    import logging

    import uvicorn

    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.setattr(logging.getLogger("uvicorn.access"), "disabled", False)
    for name in (ENV_CONFIG, ENV_HOST, ENV_PORT, ENV_API_KEY, ENV_UI_PASSWORD, ENV_DRY_RUN):
        # setenv first so that monkeypatch records the variable (even when unset) and
        # restores it after the test: run_server writes these for its worker processes.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)

    settings = make_settings(server={"graceful_shutdown_seconds": 7})
    run_server(settings, "APP", MemoryBackend(), log_level="info",  # type: ignore[arg-type]
               config_path=None)
    app, kw = calls[-1]
    assert app == "APP"
    assert kw["log_config"] is None and kw["access_log"] is False
    assert kw["timeout_graceful_shutdown"] == 7
    # server.limits: uvicorn's keep-alive, and the guarded protocol (header deadline, cap).
    assert kw["timeout_keep_alive"] == settings.server.limits.keep_alive_seconds
    assert kw["http"].__name__.startswith("Guarded")

    config = tmp_path / "c.yaml"
    config.write_text("server: {workers: 2, port: 9123}\n")
    settings = make_settings(server={"workers": 2, "port": 9123})
    run_server(settings, "APP", SlowPing(), log_level="info",  # type: ignore[arg-type]
               config_path=str(config))
    app, kw = calls[-1]
    assert app == "adapter.app:worker_app" and kw["factory"] is True and kw["workers"] == 2
    # Each worker resolves the protocol by name and builds it from the same configuration.
    from uvicorn.importer import import_from_string

    assert import_from_string(kw["http"]).__name__.startswith("Guarded")
    # The workers load the same configuration and accept the same key.
    assert os.environ[ENV_CONFIG] == str(config.resolve())
    assert os.environ[ENV_PORT] == "9123"
    assert os.environ[ENV_API_KEY] in {k.get_secret_value() for k in settings.auth.keys}
    worker = worker_app()
    assert load_settings(None).server.workers == 2
    assert worker.state.telemetry is not None


def test_serve_logs_json_and_finishes_in_flight_requests_on_sigterm(tmp_path: Path) -> None:
    """A real `serve` process: SIGTERM while /health is in flight; the request still gets its
    answer, the process exits cleanly, and stderr carries one JSON line for it."""
    port = free_port()
    config = tmp_path / "c.yaml"
    config.write_text(
        f"server: {{port: {port}, health_cache_seconds: 0, graceful_shutdown_seconds: 10}}\n"
        f"auth: {{keys: [{API_KEY}]}}\n"
        "backend: {driver: 'tests.test_ops:SlowPing'}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in (ENV_CONFIG, ENV_HOST, ENV_PORT, ENV_API_KEY):
        env.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapter", "serve", "--config", str(config)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{base}/nope", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    proc.kill()
                    pytest.fail("serve did not start: " + proc.communicate()[1][-2000:])
                time.sleep(0.1)
        result: dict[str, Any] = {}

        def slow_request() -> None:
            r = httpx.get(f"{base}/health", headers={"X-API-Key": API_KEY,
                                                     "X-Request-ID": "inflight-1"}, timeout=20)
            result["status"] = r.status_code
            result["body"] = r.json()

        thread = threading.Thread(target=slow_request)
        thread.start()
        time.sleep(0.5)  # the request is now waiting on the backend's ping
        proc.send_signal(signal.SIGTERM)
        thread.join(timeout=20)
        assert result == {"status": 200, "body": {"status": "ok"}}
        # uvicorn re-raises the signal it caught once shutdown is complete.
        assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _, err = proc.communicate()
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    health = [line for line in lines if line.get("request_id") == "inflight-1"]
    assert len(health) == 1
    assert health[0]["route"] == "/health" and health[0]["status"] == 200
    assert health[0]["latency_ms"] >= 1000
    assert API_KEY not in err
