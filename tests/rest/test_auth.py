"""``auth:`` components alone: where each puts its secret, and the OAuth2 token life cycle
(one refresh shared by concurrent calls, a rotated refresh token kept, one retry on 401)."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import TypeAdapter

from backends.base import AuthFailed
from backends.rest.auth import AuthSpec, OAuth2Flow, OAuth2RefreshToken
from backends.rest.components import tagged
from tests.rest.support import VirtualClock

pytestmark = pytest.mark.anyio
SPEC: TypeAdapter[AuthSpec] = TypeAdapter(tagged(AuthSpec))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(
    ("config", "headers", "params"),
    [
        ({"type": "bearer", "token": "tok-123"}, {"Authorization": "Bearer tok-123"}, {}),
        (
            {"type": "bearer", "token": "tok-123", "header": "Token", "prefix": ""},
            {"Token": "tok-123"},
            {},
        ),
        ({"type": "api_key", "key": "k-9", "name": "x-api-token"}, {"x-api-token": "k-9"}, {}),
        (
            {"type": "api_key", "key": "k-9", "in": "query", "name": "api_token"},
            {},
            {"api_token": "k-9"},
        ),
        (
            {"type": "basic", "username": "u", "password": "pw-1"},
            {"Authorization": "Basic dTpwdy0x"},
            {},
        ),
        ({"type": "none"}, {}, {}),
    ],
)
def test_static_schemes(
    config: dict[str, str], headers: dict[str, str], params: dict[str, str]
) -> None:
    prepared = SPEC.validate_python(config).prepare()
    assert prepared.headers == headers and prepared.params == params
    assert prepared.flow is None
    secret = config.get("token") or config.get("key") or config.get("password")
    assert (secret in prepared.secrets) if secret else prepared.secrets == ()


class TokenServer:
    """An OAuth2 token endpoint and an API that accepts only the newest access token."""

    def __init__(self, lifetime: int = 3600) -> None:
        self.issued = 0
        self.lifetime = lifetime
        self.refresh_token = "refresh-0"
        self.grants: list[dict[str, list[str]]] = []
        self.valid: set[str] = set()

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            form = parse_qs(request.content.decode())
            self.grants.append(form)
            if form.get("refresh_token", [self.refresh_token])[0] != self.refresh_token:
                return httpx.Response(400, json={"error": "invalid_grant"})
            self.issued += 1
            token = f"access-{self.issued}"
            self.valid = {token}
            self.refresh_token = f"refresh-{self.issued}"  # rotated on every use
            return httpx.Response(
                200,
                json={
                    "access_token": token,
                    "expires_in": self.lifetime,
                    "refresh_token": self.refresh_token,
                },
            )
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        return httpx.Response(200 if bearer in self.valid else 401, json={"token": bearer})


def flow(server: TokenServer, clock: VirtualClock) -> tuple[httpx.AsyncClient, OAuth2Flow]:
    spec = OAuth2RefreshToken.model_validate(
        {
            "type": "oauth2_refresh_token",
            "token_url": "https://auth.test/oauth/token",
            "client_id": "cid",
            "client_secret": "csecret",
            "refresh_token": "refresh-0",
        }
    )
    auth = OAuth2Flow(spec, clock)
    client = httpx.AsyncClient(
        base_url="https://api.test", transport=httpx.MockTransport(server.handle), auth=auth
    )
    return client, auth


async def test_concurrent_calls_share_one_token_request() -> None:
    server, clock = TokenServer(), VirtualClock()
    client, auth = flow(server, clock)
    answers = await asyncio.gather(*(client.get("/x") for _ in range(10)))
    assert {a.status_code for a in answers} == {200}
    assert auth.token_requests == 1 and server.issued == 1


async def test_a_401_refreshes_once_and_the_rotated_refresh_token_is_used_next() -> None:
    server, clock = TokenServer(), VirtualClock()
    client, auth = flow(server, clock)
    assert (await client.get("/x")).status_code == 200
    server.valid = set()  # the server revoked the access token
    answer = await client.get("/x")
    assert answer.status_code == 200 and answer.json()["token"] == "access-2"
    assert server.grants[1]["refresh_token"] == ["refresh-1"]  # the rotated one
    assert auth.token_requests == 2


async def test_an_expiring_token_is_refreshed_before_use() -> None:
    server, clock = TokenServer(lifetime=100), VirtualClock()
    client, auth = flow(server, clock)
    await client.get("/x")
    clock.now += 80  # within the 30 s margin of the 100 s lifetime
    await client.get("/x")
    assert auth.token_requests == 2


async def test_a_refused_grant_is_auth_failed_without_the_secret() -> None:
    server, clock = TokenServer(), VirtualClock()
    server.refresh_token = "something-else"
    client, _ = flow(server, clock)
    with pytest.raises(AuthFailed) as info:
        await client.get("/x")
    assert "invalid_grant" in str(info.value) and "csecret" not in str(info.value)
    assert "refresh-0" not in str(info.value)


async def test_client_credentials_in_the_body() -> None:
    server = TokenServer()
    spec = SPEC.validate_python(
        {
            "type": "oauth2_client_credentials",
            "token_url": "https://auth.test/oauth/token",
            "client_id": "cid",
            "client_secret": "csecret",
            "client_auth": "body",
            "scope": "crm",
        }
    )
    prepared = spec.prepare(VirtualClock())
    client = httpx.AsyncClient(transport=httpx.MockTransport(server.handle), auth=prepared.flow)
    assert (await client.get("https://api.test/x")).status_code == 200
    assert server.grants[0] == {
        "grant_type": ["client_credentials"],
        "scope": ["crm"],
        "client_id": ["cid"],
        "client_secret": ["csecret"],
    }
    assert "csecret" in prepared.secrets
