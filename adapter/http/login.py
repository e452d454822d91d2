"""The dashboard's login: HTTP Basic with ``ui.password``, throttled per client address.

**Password.** Only ``ui.password`` opens the dashboard (any user name); the API keys never do,
so a key leaked from Enginy's side does not show the stored records, and the password can be
given to people who must not hold a key. ``serve`` generates a password when none is configured
(:mod:`adapter.cli.serve`). The comparison is constant-time (:func:`adapter.http.auth.key_matches`).

**Throttling.** Every request carries the credentials again (that is Basic authentication), so
every request is a login. :class:`LoginThrottle` counts failures per client address: after
``ui.max_failed_logins`` failures, each within ``ui.lockout_seconds`` of the previous one, the
address gets 429 with ``Retry-After`` — without its password being checked — until
``lockout_seconds`` pass without a failure; a successful login clears its count. IPv6 clients
are counted per /64 network (one host usually owns a whole /64). The counts live in a
:class:`cachetools.TTLCache` of at most ``max_clients`` addresses whose entries expire on their
own: memory stays bounded whatever the number of addresses; when it is full the least recently
seen address is forgotten first, so an attacker rotating addresses only gets each of them its own
few attempts. Behind a reverse proxy the client address is the proxy's unless uvicorn trusts its
``X-Forwarded-For`` (``FORWARDED_ALLOW_IPS``, see docs/deploy.md).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import TTLCache
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from adapter.http.auth import key_matches

__all__ = ["BasicAuthGuard", "LoginThrottle", "basic_password", "client_key"]

_log = logging.getLogger("adapter.ui")


def basic_password(scope: Scope) -> str | None:
    """The password of the request's ``Authorization: Basic`` header, if any."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, encoded = value.decode("latin-1").partition(" ")
            if scheme.lower() != "basic":
                return None
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None
            _user, sep, password = decoded.partition(":")
            return password if sep else None
    return None


def client_key(scope: Scope) -> str:
    """Whose failures a request counts against: its client address, an IPv6 one as its /64."""
    client = scope.get("client")
    host = client[0] if client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass
class _Failures:
    count: int
    last: float


class LoginThrottle:
    """Failed logins per client address, in bounded memory (see the module docstring)."""

    def __init__(
        self,
        max_failures: int = 10,
        lockout_seconds: float = 300.0,
        *,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.lockout_seconds = lockout_seconds
        self._clock = clock
        # Each failure re-inserts the entry, which restarts its time to live: an address is
        # forgotten lockout_seconds after its last failure.
        self._failures: TTLCache[str, _Failures] = TTLCache(
            maxsize=max_clients, ttl=lockout_seconds, timer=clock
        )

    def retry_after(self, client: str) -> float | None:
        """Seconds ``client`` must wait, or ``None`` when it may try."""
        failures = self._failures.get(client)
        if failures is None or failures.count < self.max_failures:
            return None
        return max(failures.last + self.lockout_seconds - self._clock(), 0.0)

    def failed(self, client: str) -> int:
        """Record a failed login; returns the address's count."""
        previous = self._failures.get(client)
        count = previous.count + 1 if previous is not None else 1
        self._failures[client] = _Failures(count, self._clock())
        return count

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)

    def __len__(self) -> int:
        return len(self._failures)


class BasicAuthGuard:
    """Pure ASGI guard: HTTP Basic with the dashboard password for everything under ``/ui``
    except ``public`` paths (the stylesheet), throttled by a :class:`LoginThrottle`."""

    def __init__(
        self,
        app: ASGIApp,
        password: Callable[[], str | None],
        *,
        throttle: LoginThrottle,
        is_public: Callable[[Scope], bool],
        headers: dict[str, str],
    ) -> None:
        self.app = app
        self.password = password
        self.throttle = throttle
        self.is_public = is_public
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.is_public(scope):
            await self.app(scope, receive, send)
            return
        client = client_key(scope)
        wait = self.throttle.retry_after(client)
        if wait is not None:
            seconds = max(math.ceil(wait), 1)
            response = PlainTextResponse(
                f"Too many failed logins from your address: try again in {seconds} s.",
                status_code=429,
                headers={"retry-after": str(seconds), **self.headers},
            )
            await response(scope, receive, send)
            return
        presented = basic_password(scope)
        expected = self.password()
        if key_matches(presented, [expected] if expected else []):
            self.throttle.succeeded(client)
            await self.app(scope, receive, send)
            return
        if presented is not None:
            # A request without credentials is a browser asking for the prompt, not a guess.
            count = self.throttle.failed(client)
            if count == self.throttle.max_failures:
                _log.warning(
                    "dashboard: %d failed logins from %s; refused for %g s",
                    count,
                    client,
                    self.throttle.lockout_seconds,
                )
        message = (
            "Authentication required: log in with the dashboard password (ui.password, or the "
            "one printed at start-up); any user name."
            if expected
            else "The dashboard has no password configured, so it is locked: set ui.password "
            "or ENGINY_ADAPTER_UI_PASSWORD and restart."
        )
        response = PlainTextResponse(
            message,
            status_code=401,
            headers={
                "www-authenticate": 'Basic realm="enginy-adapter", charset="UTF-8"',
                **self.headers,
            },
        )
        await response(scope, receive, send)
