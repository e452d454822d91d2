"""Telemetry: request ids, per-route metrics, one log line per request, redaction, timing."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Sequence

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from adapter.config import LogsConfig, TelemetryConfig
from adapter.ops.instrument import instrument_backend
from adapter.ops.logs import (
    REDACTED,
    JsonFormatter,
    TextFormatter,
    configure_logging,
    mask_emails,
)
from adapter.ops.telemetry import (
    Telemetry,
    TelemetryMiddleware,
    metrics_endpoint,
)
from adapter.redaction import redact
from backends.base import (
    Backend,
    Entity,
    ItemResult,
    MatchKey,
    NewRecord,
    StoredRecord,
    Unavailable,
)
from backends.memory import MemoryBackend

pytestmark = pytest.mark.anyio

KEY = "s3cret-key-value"


def make_app(telemetry: Telemetry) -> Starlette:
    async def task(request: Request) -> JSONResponse:
        telemetry.record_batch("contacts.create", 3, 1)
        return JSONResponse({"id": request.path_params["id"]})

    async def echo(request: Request) -> JSONResponse:
        return JSONResponse(await request.json())

    async def bad(request: Request) -> JSONResponse:
        return JSONResponse({"error": "invalid_request", "message": "nope"}, status_code=400)

    async def boom(request: Request) -> JSONResponse:
        raise RuntimeError("kaput")

    app = Starlette(routes=[
        Route("/tasks/{id}", task),
        Route("/echo", echo, methods=["POST"]),
        Route("/bad", bad),
        Route("/boom", boom),
        Route("/metrics", metrics_endpoint(telemetry, "X-API-Key", lambda: [KEY])),
    ])
    app.add_middleware(TelemetryMiddleware, telemetry=telemetry)
    return app


def client(app: Starlette) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


def sample(t: Telemetry, name: str, **labels: str) -> float:
    value = t.registry.get_sample_value(name, labels)
    return value or 0.0


async def test_request_id_is_echoed_or_generated(access_lines: list[logging.LogRecord]) -> None:
    t = Telemetry()
    async with client(make_app(t)) as c:
        given = await c.get("/tasks/1", headers={"X-Request-ID": "abc-123"})
        made = await c.get("/tasks/2")
        hostile = await c.get("/tasks/3", headers={"X-Request-ID": "a b\tc<script>"})
    assert given.headers["x-request-id"] == "abc-123"
    assert len(made.headers["x-request-id"]) == 32
    int(made.headers["x-request-id"], 16)
    # A request id with unsafe characters is replaced, never echoed into headers and logs.
    assert hostile.headers["x-request-id"] != "a b\tc<script>"
    assert [r.access["request_id"] for r in access_lines] == [  # type: ignore[attr-defined]
        "abc-123", made.headers["x-request-id"], hostile.headers["x-request-id"]]


async def test_metrics_by_route_template_and_status() -> None:
    t = Telemetry()
    async with client(make_app(t)) as c:
        for i in range(3):
            await c.get(f"/tasks/{i}")
        await c.get("/bad")
        await c.get("/nowhere/at/all")
    assert sample(t, "enginy_adapter_http_requests_total",
                  route="/tasks/{id}", method="GET", status="200") == 3
    assert sample(t, "enginy_adapter_http_requests_total",
                  route="/bad", method="GET", status="400") == 1
    # Unmatched paths share one label value: no time series per scanner probe.
    assert sample(t, "enginy_adapter_http_requests_total",
                  route="<unmatched>", method="GET", status="404") == 1
    assert sample(t, "enginy_adapter_http_request_duration_seconds_count",
                  route="/tasks/{id}", method="GET") == 3
    assert sample(t, "enginy_adapter_records_total", operation="contacts.create",
                  outcome="ok") == 9
    assert sample(t, "enginy_adapter_records_total", operation="contacts.create",
                  outcome="failed") == 3


async def test_registries_are_per_instance() -> None:
    a, b = Telemetry(), Telemetry()
    async with client(make_app(a)) as c:
        await c.get("/tasks/1")
    assert sample(a, "enginy_adapter_http_requests_total",
                  route="/tasks/{id}", method="GET", status="200") == 1
    assert sample(b, "enginy_adapter_http_requests_total",
                  route="/tasks/{id}", method="GET", status="200") == 0


async def test_metrics_endpoint_requires_the_key() -> None:
    t = Telemetry()
    async with client(make_app(t)) as c:
        await c.get("/tasks/1")
        denied = await c.get("/metrics")
        wrong = await c.get("/metrics", headers={"X-API-Key": "nope"})
        ok = await c.get("/metrics", headers={"x-api-key": KEY})
    assert denied.status_code == 401 and denied.json()["error"] == "unauthorized"
    assert wrong.status_code == 401
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith("text/plain")
    assert 'enginy_adapter_http_requests_total{method="GET",route="/tasks/{id}",status="200"} 1.0' \
        in ok.text
    assert KEY not in ok.text


async def test_one_log_line_per_request_with_error_code_and_records(
    access_lines: list[logging.LogRecord],
) -> None:
    t = Telemetry()
    async with client(make_app(t)) as c:
        await c.get("/tasks/7")
        await c.get("/bad")
        boom = await c.get("/boom")
    assert boom.status_code == 500
    assert len(access_lines) == 3
    ok, bad, crash = (r.access for r in access_lines)  # type: ignore[attr-defined]
    assert ok["route"] == "/tasks/{id}" and ok["status"] == 200 and ok["records"] == 4
    assert ok["error"] is None and ok["method"] == "GET" and ok["latency_ms"] >= 0
    assert bad["status"] == 400 and bad["error"] == "invalid_request" and bad["records"] is None
    assert crash["status"] == 500 and crash["error"] == "internal_error"
    assert access_lines[2].levelno == logging.ERROR


async def test_json_and_text_formats_and_no_bodies_by_default(
    access_lines: list[logging.LogRecord],
) -> None:
    t = Telemetry()
    async with client(make_app(t)) as c:
        await c.post("/echo", json={"email": "jane@example.com", "apiKey": KEY},
                     headers={"X-API-Key": KEY})
    record = access_lines[0]
    line = JsonFormatter().format(record)
    parsed = json.loads(line)
    assert "\n" not in line
    assert set(parsed) >= {"time", "request_id", "method", "route", "status", "latency_ms",
                           "records", "error"}
    assert parsed["route"] == "/echo" and parsed["status"] == 200
    assert parsed["time"].endswith("Z")
    text = TextFormatter().format(record)
    assert "POST /echo 200" in text and parsed["request_id"] in text
    for out in (line, text):
        assert "jane@example.com" not in out and KEY not in out and "request_body" not in out


async def test_debug_bodies_are_redacted(access_lines: list[logging.LogRecord]) -> None:
    t = Telemetry(TelemetryConfig(logs=LogsConfig(bodies=True)),
                  secret_headers=("x-custom-auth",))
    body = {"contacts": [{"email": "jane.doe@example.com", "firstName": "Jane",
                          "note": "write to bob@corp.io"}],
            "apiKey": KEY, "nested": {"accessToken": "tok-1", "Password": "pw-1"},
            "X-Custom-Auth": "hdr-secret"}
    async with client(make_app(t)) as c:
        await c.post("/echo", json=body)
    line = JsonFormatter().format(access_lines[0])
    for secret in (KEY, "tok-1", "pw-1", "hdr-secret", "jane.doe@example.com", "bob@corp.io"):
        assert secret not in line
    logged = json.loads(line)
    request_body = json.loads(logged["request_body"])
    assert request_body["contacts"][0]["firstName"] == "Jane"
    assert request_body["contacts"][0]["email"] == "j***@example.com"
    assert request_body["apiKey"] == "[redacted]"
    assert "response_body" in logged


def test_redact_and_mask_helpers() -> None:
    assert mask_emails("a Bob@Example.org b") == "a B***@Example.org b"
    assert redact({"authorization": "x", "list": [{"secret_value": 1}], "n": 3}, mask=REDACTED) == {
        "authorization": "[redacted]", "list": [{"secret_value": "[redacted]"}], "n": 3}
    assert redact({"X-Enginy-Sig": "k"}, names=["x-enginy-sig"], mask=REDACTED) == {
        "X-Enginy-Sig": "[redacted]"}
    assert redact({"X-Enginy-Sig": "k"}, mask=REDACTED) == {"X-Enginy-Sig": "k"}


def test_configure_logging_json(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    try:
        configure_logging(LogsConfig(format="json", level="INFO"), stream)
        logging.getLogger("backends.test").warning("hello %s", "world")
        logging.getLogger("backends.test").debug("hidden")
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])
        logging.getLogger("uvicorn.access").disabled = False
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["message"] == "hello world"


async def test_recent_calls_ring_buffer_skips_dashboard_traffic() -> None:
    t = Telemetry(recent_calls=2)
    async with client(make_app(t)) as c:
        for i in range(3):
            await c.get(f"/tasks/{i}")
        await c.get("/metrics", headers={"X-API-Key": KEY})
    recent = t.recent()
    assert len(recent) == 2
    assert all(call.route == "/tasks/{id}" for call in recent)
    assert recent[0].time >= recent[1].time


class FlakyBackend(Backend):
    name = "flaky"

    async def create_record(self, entity: Entity, record: NewRecord) -> ItemResult:
        if record.external_id == "bad":
            from backends.base import InvalidRecord
            return ItemResult(error=InvalidRecord("too long"))
        return ItemResult(crm_id="1", created=record.external_id != "old")

    async def find_records(self, entity: Entity, key: MatchKey, values: Sequence[str]
                           ) -> dict[str, StoredRecord]:
        return {v: StoredRecord("1", None, {}) for v in values if v == "known"}

    async def ping(self) -> None:
        raise Unavailable("down")


async def test_instrumented_backend_times_calls_and_counts_records() -> None:
    t = Telemetry()
    backend = FlakyBackend()
    same = instrument_backend(backend, t)
    assert same is backend and isinstance(same, FlakyBackend)
    instrument_backend(backend, t)  # idempotent: no double wrapping
    records = [NewRecord("a", {}), NewRecord("old", {}), NewRecord("bad", {})]
    results = await backend.create_records(Entity.CONTACT, records)
    assert [r.ok for r in results] == [True, True, False]
    found = await backend.find_records(Entity.COMPANY, MatchKey("domain"), ["known", "x", "y"])
    assert list(found) == ["known"]
    with pytest.raises(Unavailable):
        await backend.ping()
    assert sample(t, "enginy_adapter_backend_call_duration_seconds_count",
                  method="create_records") == 1
    # The base class's batch default loops over the primitive: only the outer call is timed
    # (nested calls are part of its latency, and timing each record would dominate) ...
    assert sample(t, "enginy_adapter_backend_call_duration_seconds_count",
                  method="create_record") == 0
    # ... but records are counted once, from the batch's per-item results.
    assert sample(t, "enginy_adapter_records_total", operation="contacts.create",
                  outcome="ok") == 1
    assert sample(t, "enginy_adapter_records_total", operation="contacts.create",
                  outcome="existing") == 1
    assert sample(t, "enginy_adapter_records_total", operation="contacts.create",
                  outcome="failed") == 1
    assert sample(t, "enginy_adapter_records_total", operation="companies.find",
                  outcome="matched") == 1
    assert sample(t, "enginy_adapter_records_total", operation="companies.find",
                  outcome="unmatched") == 2
    assert sample(t, "enginy_adapter_backend_errors_total", method="ping",
                  error="backend_unavailable") == 1


async def test_a_syncs_lookup_is_timed_once_and_counts_each_record_once() -> None:
    """``match_records`` (the base class's default: one ``find_records`` per key for the items
    still unmatched) is one timed call; its records count as matched or unmatched once each,
    whichever key found them, not once per lookup."""
    t = Telemetry()
    backend = instrument_backend(FlakyBackend(), t)
    keys = [MatchKey("externalId"), MatchKey("domain")]
    values = [["a", "known", "c", "d"], ["known", "x", None, "known"]]
    found = await backend.match_records(Entity.COMPANY, keys, values)
    assert [r is not None for r in found] == [True, True, False, True]
    assert sample(t, "enginy_adapter_backend_call_duration_seconds_count",
                  method="match_records") == 1
    assert sample(t, "enginy_adapter_backend_call_duration_seconds_count",
                  method="find_records") == 0
    assert sample(t, "enginy_adapter_records_total", operation="companies.find",
                  outcome="matched") == 3
    assert sample(t, "enginy_adapter_records_total", operation="companies.find",
                  outcome="unmatched") == 1


def test_upstream_retries_counter() -> None:
    t = Telemetry()
    t.upstream_retry("hubspot", "429")
    t.upstream_retry("hubspot", "429")
    assert sample(t, "enginy_adapter_upstream_retries_total", driver="hubspot", reason="429") == 2


# --------------------------------------------------------------------------------------------
# Wired into the real app (create_app)
# --------------------------------------------------------------------------------------------


async def test_app_metrics_count_contract_calls_and_records(
    access_lines: list[logging.LogRecord],
) -> None:
    from tests.conftest import API_KEY, serve_app

    async with serve_app() as c:
        r = await c.post("/contacts", json={"contacts": [
            {"externalId": "a", "email": "a@x.example"},
            {"externalId": "b", "email": "b@x.example"}]})
        assert r.status_code == 200
        again = await c.post("/contacts", json={"contacts": [{"externalId": "a"}]})
        assert again.status_code == 200
        await c.get("/tasks/nope")
        await c.get("/health", headers={"X-API-Key": "wrong"})
        denied = await c.get("/metrics", headers={"X-API-Key": "wrong"})
        metrics = await c.get("/metrics", headers={"X-API-Key": API_KEY})
    assert denied.status_code == 401
    text = metrics.text
    assert 'enginy_adapter_http_requests_total{method="POST",route="/contacts",status="200"} 2.0' \
        in text
    assert 'route="/tasks/{task_id}",status="404"' in text
    assert 'enginy_adapter_records_total{operation="contacts.create",outcome="ok"} 2.0' in text
    assert 'enginy_adapter_records_total{operation="contacts.create",outcome="existing"} 1.0' \
        in text
    assert 'enginy_adapter_backend_call_duration_seconds_count{method="create_records"}' in text
    assert API_KEY not in text
    lines = [r.access for r in access_lines]  # type: ignore[attr-defined]
    first = lines[0]
    assert first["route"] == "/contacts" and first["records"] == 2 and first["status"] == 200
    assert lines[2]["error"] == "task_not_found" and lines[2]["status"] == 404
    # A request refused for its key is labelled by that outcome, not by an unmatched route.
    assert lines[3]["error"] == "unauthorized" and lines[3]["route"] == "unauthorized"
    assert 'route="unauthorized",status="401"' in text
    # The task nobody has is the caller's mistake, not a backend error.
    assert 'enginy_adapter_backend_rejections_total{error="not_found",method="get_tasks"}' \
        not in text  # get_tasks skips unknown ids: nothing raised
    assert "enginy_adapter_backend_errors_total{" not in text
    # Process metrics.
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                 "process_open_fds", "process_max_fds"):
        assert f"\n{name} " in text
    assert all(r.headers.get("x-request-id") for r in (r, again, denied, metrics))


async def test_separate_metrics_listener() -> None:
    import socket

    import anyio

    from tests.conftest import API_KEY, make_settings, serve_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = make_settings(observability={"metrics": {"listen": f"127.0.0.1:{port}"}})
    async with serve_app(settings) as c:
        await c.get("/health")
        assert (await c.get("/metrics", headers={"X-API-Key": API_KEY})).status_code == 404
        async with httpx.AsyncClient() as plain:
            r = await plain.get(f"http://127.0.0.1:{port}/metrics")
        assert r.status_code == 200
        assert 'route="/health"' in r.text
    await anyio.sleep(0)
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as plain:
            await plain.get(f"http://127.0.0.1:{port}/metrics")


async def test_driver_retry_hook_is_counted() -> None:
    from tests.conftest import API_KEY, serve_app

    backend = MemoryBackend()
    async with serve_app(backend=backend) as c:
        backend.on_upstream_retry("429")  # type: ignore[attr-defined]
        text = (await c.get("/metrics", headers={"X-API-Key": API_KEY})).text
    assert 'enginy_adapter_upstream_retries_total{driver="memory",reason="429"} 1.0' in text


async def test_debug_bodies_scrub_the_service_api_keys_wherever_they_appear(
    access_lines: list[logging.LogRecord],
) -> None:
    from tests.conftest import API_KEY, ROTATED_KEY, make_settings, serve_app

    settings = make_settings(observability={"logs": {"bodies": True}},
                             auth={"header": "X-Enginy-Auth"})
    body = {"contacts": [{"externalId": f"id-{ROTATED_KEY}",
                          "notes": f"my key is {API_KEY}, the old one {ROTATED_KEY}",
                          "tags": [API_KEY], API_KEY: "as a field name"}],
            "x-enginy-auth": "header-value-in-body"}
    async with serve_app(settings, key=None) as c:
        response = await c.post("/contacts", json=body, headers={"X-Enginy-Auth": API_KEY})
        assert response.status_code == 200, response.text
    line = JsonFormatter().format(access_lines[-1])
    assert API_KEY not in line and ROTATED_KEY not in line
    assert "header-value-in-body" not in line
    logged = json.loads(line)
    request = json.loads(logged["request_body"])
    assert request["contacts"][0]["notes"] == "my key is [redacted], the old one [redacted]"
    assert request["contacts"][0]["tags"] == ["[redacted]"]
    # The response echoes the externalId: scrubbed there too.
    assert "id-[redacted]" in logged["response_body"]
    assert redact({"n": "a k1 b"}, ["k1"], mask=REDACTED) == {"n": "a [redacted] b"}
