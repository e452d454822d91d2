"""The bounded HTTP side of the simulator: every call Enginy would make goes through here.

Why a wrapper around :class:`httpx.AsyncClient` rather than the client itself:

* **bounds** - every request carries a timeout, and the run stops after ``max_requests``, so a
  server that loops the simulator (or a bug in it) cannot turn into a load test;
* **secrets** - the API key is set here and nowhere else, and every text that leaves this module
  (response excerpts for the table) has the key replaced, in case a server echoes it; whether a
  server echoed it is itself reported (:attr:`SimHttp.key_echoes`);
* **a log** of (method, path, status) that the run's final checks (error body shape) and the
  tests (``--read-only`` writes nothing) read.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from adapter.simulate.report import mask_secret

__all__ = ["Auth", "BudgetExhausted", "Reply", "SimHttp", "Unreachable"]

Auth = Literal["key", "none", "wrong"]

_MISSING: Any = object()


class Unreachable(Exception):
    """The server did not answer (connection refused, timeout, protocol error)."""


class BudgetExhausted(Exception):
    """The run reached its request limit; the remaining checks are skipped."""


@dataclass
class Reply:
    """One answered request, decoded once."""

    method: str
    path: str
    status: int
    #: The decoded JSON body, or None when the body was empty or not JSON (see ``is_json``).
    body: Any
    is_json: bool
    #: A short, secret-free excerpt of the body for details.
    excerpt: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def describe(self) -> str:
        """``POST /contacts -> 400 {"error": ...}``: the line a check's detail starts from."""
        return f"{self.method} {self.path} -> {self.status} {self.excerpt}".rstrip()


@dataclass
class LogEntry:
    method: str
    path: str
    status: int | None
    body: Any = None
    is_json: bool = False


@dataclass
class SimHttp:
    client: httpx.AsyncClient
    api_key: str
    header: str = "X-API-Key"
    timeout: float = 10.0
    max_requests: int = 400
    log: list[LogEntry] = field(default_factory=list)
    #: Requests whose response contained the API key (method + path).
    key_echoes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # A wrong key that cannot be a prefix or suffix of the real one, so a server that
        # compares carelessly still has to reject it.
        self._wrong_key = "sim-wrong-" + secrets.token_hex(12)

    @property
    def count(self) -> int:
        return len(self.log)

    def sanitise(self, text: str) -> str:
        """``text`` with the API key replaced; applied to everything that may be printed."""
        if self.api_key:
            text = text.replace(self.api_key, mask_secret(self.api_key))
        return text

    async def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = _MISSING,
        content: bytes | None = None,
        content_type: str = "application/json",
        auth: Auth = "key",
    ) -> Reply:
        """Send one request as Enginy would (key header, JSON content type and accept).

        ``auth`` picks the key: the real one, none, or a wrong one. Raises :class:`Unreachable`
        when the server does not answer and :class:`BudgetExhausted` past ``max_requests``.
        """
        if self.count >= self.max_requests:
            raise BudgetExhausted(f"request limit of {self.max_requests} reached")
        headers = {"Accept": "application/json"}
        if auth == "key":
            headers[self.header] = self.api_key
        elif auth == "wrong":
            headers[self.header] = self._wrong_key
        data: bytes | None = content
        if json_body is not _MISSING:
            data = json.dumps(json_body).encode()
        if data is not None:
            headers["Content-Type"] = content_type
        entry = LogEntry(method, path, None)
        self.log.append(entry)
        try:
            response = await self.client.request(
                method, path, content=data, headers=headers, timeout=self.timeout
            )
            raw = await response.aread()
        except httpx.TimeoutException as exc:
            raise Unreachable(f"{method} {path}: no answer within {self.timeout:g}s") from exc
        except httpx.HTTPError as exc:
            raise Unreachable(
                self.sanitise(f"{method} {path}: {type(exc).__name__}: {exc}")
            ) from exc
        text = raw.decode("utf-8", errors="replace")
        if (
            self.api_key
            and len(self.api_key) >= 6
            and (self.api_key in text or any(self.api_key in v for v in response.headers.values()))
        ):
            self.key_echoes.append(f"{method} {path}")
        body: Any = None
        is_json = False
        if text.strip():
            try:
                body = json.loads(text)
                is_json = True
            except ValueError:
                pass
        entry.status, entry.body, entry.is_json = response.status_code, body, is_json
        excerpt = self.sanitise(" ".join(text.split()))
        if len(excerpt) > 160:
            excerpt = excerpt[:159] + "…"
        return Reply(method, path, response.status_code, body, is_json, excerpt)
