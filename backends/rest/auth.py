"""``auth:``: how the driver proves who it is, one component per scheme, chosen by ``type``.

| ``type`` | sends |
| --- | --- |
| ``none`` | nothing |
| ``bearer`` | ``Authorization: Bearer <token>`` (header and prefix configurable) |
| ``api_key`` | the key in a header or a query parameter (``in: header|query``), with a prefix |
| ``basic`` | HTTP Basic |
| ``oauth2_client_credentials`` | a token from ``token_url`` (client credentials grant) |
| ``oauth2_refresh_token`` | a token from ``token_url`` (refresh token grant) |

Secrets are :class:`~pydantic.SecretStr` written as ``${VAR}`` in the YAML (the environment holds
them); they never reach a log line (headers are not logged, and every message passes the
client's redactor, which knows them).

The OAuth2 schemes are an ``httpx.Auth`` flow run inside every attempt: the first call fetches a
token, a token about to expire is refreshed before use, and a 401 triggers one refresh and one
resend. Concurrent calls share one refresh (a lock; a caller that waited finds the new token
and sends no second token request). A rotated refresh token (the answer carries a new
``refresh_token``) replaces the old one in memory for the life of the process.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from backends.base import AuthFailed, Unavailable

__all__ = [
    "ApiKeyAuth",
    "AuthSpec",
    "BasicAuth",
    "BearerAuth",
    "NoAuth",
    "OAuth2ClientCredentials",
    "OAuth2Flow",
    "OAuth2RefreshToken",
    "Prepared",
]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Prepared:
    """What an auth component adds to the client: fixed headers, fixed query parameters, an
    ``httpx.Auth`` flow, and the secret values the redactor must mask."""

    def __init__(
        self,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        flow: httpx.Auth | None = None,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.headers = dict(headers or {})
        self.params = dict(params or {})
        self.flow = flow
        self.secrets = secrets

    @property
    def credential(self) -> str:
        """A stable string identifying the credentials (hashed into rate-budget keys)."""
        return "|".join(self.secrets)


class NoAuth(_Spec):
    type: Literal["none"]

    def prepare(self, clock: Callable[[], float] = time.monotonic) -> Prepared:
        return Prepared()


class BearerAuth(_Spec):
    type: Literal["bearer"]
    token: SecretStr
    header: str = "Authorization"
    prefix: str = "Bearer "

    def prepare(self, clock: Callable[[], float] = time.monotonic) -> Prepared:
        token = self.token.get_secret_value()
        return Prepared(headers={self.header: f"{self.prefix}{token}"}, secrets=(token,))


class ApiKeyAuth(_Spec):
    type: Literal["api_key"]
    key: SecretStr
    #: Where the key goes (``header`` or ``query``).
    in_: Literal["header", "query"] = Field("header", alias="in")
    #: The header or query-parameter name (``X-API-Key``, ``api_token``...).
    name: str = Field(min_length=1)
    prefix: str = ""

    def prepare(self, clock: Callable[[], float] = time.monotonic) -> Prepared:
        key = self.key.get_secret_value()
        value = f"{self.prefix}{key}"
        if self.in_ == "query":
            return Prepared(params={self.name: value}, secrets=(key,))
        return Prepared(headers={self.name: value}, secrets=(key,))


class BasicAuth(_Spec):
    type: Literal["basic"]
    username: str
    password: SecretStr

    def prepare(self, clock: Callable[[], float] = time.monotonic) -> Prepared:
        password = self.password.get_secret_value()
        raw = base64.b64encode(f"{self.username}:{password}".encode()).decode()
        return Prepared(headers={"Authorization": f"Basic {raw}"}, secrets=(password, raw))


class _OAuth2(_Spec):
    token_url: str
    client_id: str
    client_secret: SecretStr | None = None
    scope: str | None = None
    #: How the client authenticates to the token endpoint: HTTP Basic or form fields.
    client_auth: Literal["basic", "body"] = "basic"
    #: Refresh this many seconds before the token's ``expires_in`` runs out.
    refresh_margin_seconds: float = Field(30.0, ge=0)

    @field_validator("token_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an absolute http(s) URL")
        return value

    def prepare(self, clock: Callable[[], float] = time.monotonic) -> Prepared:
        flow = OAuth2Flow(self, clock)
        return Prepared(flow=flow, secrets=flow.secrets())

    def grant(self, refresh_token: str | None) -> dict[str, str]:
        raise NotImplementedError


class OAuth2ClientCredentials(_OAuth2):
    type: Literal["oauth2_client_credentials"]

    def grant(self, refresh_token: str | None) -> dict[str, str]:
        return {"grant_type": "client_credentials"}


class OAuth2RefreshToken(_OAuth2):
    type: Literal["oauth2_refresh_token"]
    refresh_token: SecretStr

    def grant(self, refresh_token: str | None) -> dict[str, str]:
        return {"grant_type": "refresh_token", "refresh_token": refresh_token or ""}


AuthSpec = (
    NoAuth | BearerAuth | ApiKeyAuth | BasicAuth | OAuth2ClientCredentials | OAuth2RefreshToken
)


class OAuth2Flow(httpx.Auth):
    """The OAuth2 token life cycle as an ``httpx.Auth`` flow (see the module docstring)."""

    requires_response_body = True

    def __init__(self, spec: _OAuth2, clock: Callable[[], float] = time.monotonic) -> None:
        self.spec, self._clock = spec, clock
        self._lock = asyncio.Lock()
        self._access: str | None = None
        self._expires_at = 0.0
        refresh = getattr(spec, "refresh_token", None)
        self._refresh: str | None = refresh.get_secret_value() if refresh is not None else None
        #: Token requests sent (for tests and logs).
        self.token_requests = 0

    def secrets(self) -> tuple[str, ...]:
        found = [self.spec.client_secret.get_secret_value()] if self.spec.client_secret else []
        if self._refresh:
            found.append(self._refresh)
        return tuple(found)

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, Any, None]:
        raise RuntimeError("the REST driver's OAuth2 flow is async only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        used = self._access
        if used is None or self._clock() >= self._expires_at:
            async with self._lock:
                if self._access == used or self._clock() >= self._expires_at:
                    self._accept((yield self._token_request()))
        used = self._access
        request.headers["Authorization"] = f"Bearer {used}"
        response = yield request
        if response.status_code != 401:
            return
        async with self._lock:  # one refresh for every caller that saw the stale token
            if self._access == used:
                self._accept((yield self._token_request()))
        request.headers["Authorization"] = f"Bearer {self._access}"
        yield request  # a second 401 is the answer: the credentials are wrong

    def _token_request(self) -> httpx.Request:
        self.token_requests += 1
        form = self.spec.grant(self._refresh)
        if self.spec.scope:
            form["scope"] = self.spec.scope
        headers = {"Accept": "application/json"}
        secret = self.spec.client_secret.get_secret_value() if self.spec.client_secret else ""
        if self.spec.client_auth == "basic":
            raw = base64.b64encode(f"{self.spec.client_id}:{secret}".encode()).decode()
            headers["Authorization"] = f"Basic {raw}"
        else:
            form["client_id"] = self.spec.client_id
            if secret:
                form["client_secret"] = secret
        return httpx.Request("POST", self.spec.token_url, data=form, headers=headers)

    def _accept(self, response: httpx.Response) -> None:
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        if response.status_code >= 500:
            raise Unavailable(f"OAuth2 token endpoint answered {response.status_code}")
        token = body.get("access_token")
        if response.status_code >= 400 or not isinstance(token, str) or not token:
            reason = body.get("error") or f"HTTP {response.status_code}"
            raise AuthFailed(
                f"OAuth2 token request refused ({str(reason)[:80]}); check "
                "backend.options.auth (client id, secret, refresh token, scope)"
            )
        self._access = token
        expires = body.get("expires_in")
        lifetime = (
            float(expires)
            if isinstance(expires, int | float | str) and str(expires).replace(".", "", 1).isdigit()
            else 3600.0
        )
        self._expires_at = self._clock() + max(0.0, lifetime - self.spec.refresh_margin_seconds)
        rotated = body.get("refresh_token")
        if isinstance(rotated, str) and rotated:
            self._refresh = rotated  # the old one may already be void: keep the new one
