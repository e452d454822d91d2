"""API-key authentication (A.2), as a pure ASGI middleware.

Every HTTP request, ``/health`` included and unknown paths too (so that the route table cannot
be probed without a key), must carry one of the configured keys in the configured header. The
header name is matched case-insensitively: ASGI servers hand headers over as lower-cased bytes,
so the configured name is lower-cased once here. Several keys may be valid at once (rotation);
the candidate is compared with every key in constant time (:func:`hmac.compare_digest`), and all
keys are always compared so that timing does not tell which one matched.

Not a ``BaseHTTPMiddleware``: that wraps every request in extra tasks and streams, which costs a
measurable share of a small request. Keys are never logged and never echoed.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from adapter.errors import UNAUTHORIZED, Unauthorized, error_response, note_outcome, request_id_of

__all__ = ["ApiKeyMiddleware", "key_matches"]


class ApiKeyMiddleware:
    """Reject HTTP requests without a valid key with 401 ``{"error": "unauthorized", ...}``."""

    def __init__(self, app: ASGIApp, *, header: str, keys: Iterable[str]) -> None:
        self.app = app
        self.header_name = header
        self._header = header.strip().lower().encode("latin-1")
        self._keys = tuple(k.encode("utf-8") for k in keys if k)
        if not self._keys:
            # Serving without a key would expose the CRM to anyone; refuse to start instead.
            raise ValueError("auth.keys: at least one non-empty API key is required")

    def _authorised(self, scope: Scope) -> Unauthorized | None:
        given: bytes | None = None
        for name, value in scope["headers"]:
            if name == self._header:
                given = value.strip()
                break
        if not given:
            return Unauthorized(f"Missing API key: send it in the {self.header_name} header")
        ok = False
        for key in self._keys:
            # No early exit: compare with every key so that timing says nothing.
            ok |= hmac.compare_digest(given, key)
        return None if ok else Unauthorized("Invalid API key")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            error = self._authorised(scope)
            if error is not None:
                note_outcome(scope, UNAUTHORIZED)
                response = error_response(
                    error.status, error.code, error.message, request_id=request_id_of(scope)
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def key_matches(presented: str | None, keys: Iterable[str]) -> bool:
    """Constant-time check of a presented secret against every valid one (no early exit, so
    the time taken does not tell which key — or whether any — almost matched). Used where a
    key arrives as text (the dashboard's Basic password, the metrics endpoint)."""
    if not presented:
        return False
    given = presented.encode()
    found = False
    for key in keys:
        if key and hmac.compare_digest(given, key.encode()):
            found = True
    return found
