"""A.2: API-key authentication on all 15 routes, /health included."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from adapter.app import create_app
from adapter.config import ConfigError
from backends.memory import MemoryBackend
from tests.conftest import error_body

pytestmark = pytest.mark.anyio

#: Every route of the contract with a body it accepts.
ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/health", None),
    ("POST", "/contacts", {"contacts": [{"externalId": "lead-1", "email": "a@b.com"}]}),
    ("POST", "/contacts/sync", {"contacts": [{"externalId": "lead-1"}]}),
    ("PUT", "/contacts", {"contacts": [{"crmId": "ct_x", "title": "CEO"}]}),
    ("POST", "/companies", {"companies": [{"externalId": "co-1", "name": "Acme"}]}),
    ("POST", "/companies/sync", {"companies": [{"externalId": "co-1"}]}),
    ("PUT", "/companies", {"companies": [{"crmId": "co_x", "industry": "Tech"}]}),
    ("POST", "/associations", {"associations": []}),
    ("POST", "/activities", {"type": "EMAIL"}),
    ("POST", "/tasks", {"subject": "Call"}),
    ("GET", "/tasks/task-1", None),
    ("PATCH", "/tasks/task-1", {"completed": True}),
    ("POST", "/tasks/batch", {"ids": ["task-1"]}),
    ("PATCH", "/tasks/batch", {"ids": ["task-1"], "completed": True}),
    ("GET", "/users", None),
]
ROUTE_IDS = [f"{m} {p}" for m, p, _ in ROUTES]


def test_the_route_list_covers_the_15_contract_routes() -> None:
    assert len(set((m, p.replace("task-1", "{id}")) for m, p, _ in ROUTES)) == 15


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=ROUTE_IDS)
async def test_a2_missing_key_is_401_on_every_route(
    serve: Any, method: str, path: str, body: Any
) -> None:
    async with serve(key=None) as client:
        response = await client.request(method, path, json=body)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert response.json()["message"]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=ROUTE_IDS)
async def test_a2_wrong_key_is_401_and_not_echoed(
    serve: Any, method: str, path: str, body: Any
) -> None:
    wrong = "wrong-key-0123456789"
    async with serve(key=wrong) as client:
        response = await client.request(method, path, json=body)
    assert response.status_code == 401
    assert set(error_body(response)) == {"error", "message"}
    assert response.json()["error"] == "unauthorized"
    assert wrong not in response.text
    assert wrong not in str(response.headers)


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=ROUTE_IDS)
async def test_a2_valid_key_passes_on_every_route(
    serve: Any, api_keys: tuple[str, str], method: str, path: str, body: Any
) -> None:
    async with serve() as client:
        response = await client.request(method, path, json=body)
    assert response.status_code != 401
    assert response.status_code < 500


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=ROUTE_IDS)
async def test_a2_second_rotated_key_works_on_every_route(
    serve: Any, api_keys: tuple[str, str], method: str, path: str, body: Any
) -> None:
    async with serve(key=api_keys[1]) as client:
        response = await client.request(method, path, json=body)
    assert response.status_code != 401


@pytest.mark.parametrize("sent_name", ["x-api-key", "X-API-KEY", "X-Api-Key"])
@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=ROUTE_IDS)
async def test_a2_header_name_is_case_insensitive_on_every_route(
    serve: Any, api_keys: tuple[str, str], sent_name: str, method: str, path: str, body: Any
) -> None:
    async with serve(key=None) as client:
        response = await client.request(method, path, json=body, headers={sent_name: api_keys[0]})
    assert response.status_code != 401


@pytest.mark.parametrize("configured", ["X-Enginy-Token", "x-enginy-token", "X-ENGINY-TOKEN"])
async def test_a2_configured_header_name_is_used_in_any_case(
    serve: Any, settings_for: Any, api_keys: tuple[str, str], configured: str
) -> None:
    settings = settings_for(auth={"header": configured})
    async with serve(settings, key=None) as client:
        ok = await client.get("/health", headers={"x-EnGiNy-tOkEn": api_keys[0]})
        default_header = await client.get("/health", headers={"X-API-Key": api_keys[0]})
    assert ok.status_code == 200
    # The key in the default header no longer counts once another header is configured.
    assert default_header.status_code == 401


async def test_a2_auth_runs_before_routing(serve: Any) -> None:
    # Without a key, an unknown path says 401, not 404: the route table cannot be probed.
    async with serve(key=None) as client:
        response = await client.get("/no/such/route")
    assert response.status_code == 401


async def test_a2_empty_key_header_is_401(serve: Any) -> None:
    async with serve(key="") as client:
        response = await client.get("/health")
    assert response.status_code == 401


async def test_a2_key_prefix_or_extension_is_rejected(
    serve: Any, api_keys: tuple[str, str]
) -> None:
    async with serve(key=api_keys[0][:-1]) as client:
        shorter = await client.get("/health")
    async with serve(key=api_keys[0] + "x") as client:
        longer = await client.get("/health")
    assert shorter.status_code == longer.status_code == 401


async def test_a2_keys_never_appear_in_logs(
    serve: Any, api_keys: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-key-logged?-5555"
    for key in (*api_keys, wrong, None):
        async with serve(key=key) as client:
            for method, path, body in ROUTES:
                await client.request(method, path, json=body)
    for secret in (*api_keys, wrong):
        assert secret not in caplog.text


def test_a2_app_refuses_to_start_without_a_key(settings_for: Any) -> None:
    settings = settings_for(auth={"keys": []})
    with pytest.raises(ConfigError, match=r"auth\.keys"):
        create_app(settings, MemoryBackend())
