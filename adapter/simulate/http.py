"""The bounded HTTP side of the simulator: every call Enginy would make goes through here.

Why a wrapper around :class:`httpx.AsyncClient` rather than the client itself:

* **bounds** - every request carries a timeout (per phase, and a deadline over the whole
  exchange), bodies are read up to 10 MB, and the run stops after ``max_requests`` (retries
  included), so a server that loops the simulator (or a bug in it) cannot turn into a load test;
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

import anyio
import httpx

from adapter.simulate.report import scrub_secret

__all__ = ["Auth", "BudgetExhausted", "Reply", "SimHttp", "Unreachable"]

Auth = Literal["key", "none", "wrong"]

_MISSING: Any = object()

#: Bodies past this size are not read further (and not parsed): a check needs far less.
MAX_BODY_BYTES = 10 * 1024 * 1024
#: A 429/503 whose Retry-After is at most this many seconds is retried, at most MAX_RETRIES times.
MAX_RETRY_AFTER = 10.0
MAX_RETRIES = 2


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
    #: Requests repeated after a 429/503 with a short Retry-After.
    retries: int = 0

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
            text = scrub_secret(text, self.api_key)
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
        retries = 0
        while True:
            reply, retry_after = await self._send(method, path, data, headers)
            # Enginy retries (Part A.5 makes that safe); so does the simulator, a little, when
            # the server says when to: a rate-limited CRM behind the adapter is not a failure.
            if retry_after is None or retries >= MAX_RETRIES:
                return reply
            retries += 1
            self.retries += 1
            await anyio.sleep(retry_after)

    async def _send(
        self, method: str, path: str, data: bytes | None, headers: dict[str, str]
    ) -> tuple[Reply, float | None]:
        """One request: budget, a deadline over the whole exchange, a capped body."""
        if self.count >= self.max_requests:
            raise BudgetExhausted(f"request limit of {self.max_requests} reached")
        entry = LogEntry(method, path, None)
        self.log.append(entry)
        raw = bytearray()
        truncated = False
        try:
            # httpx's timeout bounds each phase; the deadline bounds the whole exchange, so a
            # server that trickles bytes cannot hold the run.
            with anyio.fail_after(self.timeout):
                async with self.client.stream(
                    method, path, content=data, headers=headers, timeout=self.timeout
                ) as response:
                    async for chunk in response.aiter_bytes():
                        raw.extend(chunk)
                        if len(raw) > MAX_BODY_BYTES:
                            truncated = True
                            break
        except (httpx.TimeoutException, TimeoutError) as exc:
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
        if text.strip() and not truncated:
            try:
                body = json.loads(text)
                is_json = True
            except ValueError:
                pass
        entry.status, entry.body, entry.is_json = response.status_code, body, is_json
        excerpt = self.sanitise(" ".join(text[:2000].split()))
        if len(excerpt) > 160:
            excerpt = excerpt[:159] + "…"
        if truncated:
            excerpt = f"(body over {MAX_BODY_BYTES} bytes, not read) {excerpt}"
        reply = Reply(method, path, response.status_code, body, is_json, excerpt)
        return reply, _retry_after(response)


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait before retrying, when the server asked for a short wait."""
    if response.status_code not in (429, 503):
        return None
    try:
        seconds = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return seconds if 0 <= seconds <= MAX_RETRY_AFTER else None
