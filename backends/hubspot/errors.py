"""HubSpot failures → :mod:`backends.base` errors (one table), and HubSpot's retry quirks.

HubSpot's error bodies are loosely specified (every field optional in practice), so behaviour
keys on the HTTP status first and only refines by ``category`` / ``policyName``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from backends.base import (
    AuthFailed,
    BackendError,
    Conflict,
    InvalidRecord,
    NotFound,
    RateLimited,
    Unavailable,
)
from backends.http import Decision, RetryPolicy

__all__ = [
    "CATEGORY_TABLE",
    "ERROR_TABLE",
    "HubSpotRetryPolicy",
    "describe",
    "error_for",
    "existing_id",
    "item_error",
]

#: status → driver error class. Anything unlisted: 4xx → InvalidRecord, 5xx → Unavailable.
ERROR_TABLE: dict[int, type[BackendError]] = {
    400: InvalidRecord,  # VALIDATION_ERROR, PROPERTY_DOESNT_EXIST, search limits
    401: AuthFailed,  # bad token: a configuration error, never refreshed or retried
    403: AuthFailed,  # MISSING_SCOPES (context.missingScopes)
    404: NotFound,
    409: Conflict,  # duplicate email / unique value ("Existing ID: 512")
    414: InvalidRecord,
    423: Unavailable,  # portal locked by a high-volume sync (~2 s)
    429: RateLimited,
    477: Unavailable,  # portal migrating data centre
}

#: category → class, used when the status alone is ambiguous (e.g. items inside a 207).
CATEGORY_TABLE: dict[str, type[BackendError]] = {
    "VALIDATION_ERROR": InvalidRecord,
    "OBJECT_NOT_FOUND": NotFound,
    "CONFLICT": Conflict,
    "INVALID_AUTHENTICATION": AuthFailed,
    "MISSING_SCOPES": AuthFailed,
    "RATE_LIMITS": RateLimited,
}

_EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)", re.IGNORECASE)


def existing_id(message: str | None) -> str | None:
    """The record id HubSpot names in a 409 message (``Contact already exists. Existing ID:
    512``), or ``None``. The id is only ever in the text, so parse defensively."""
    match = _EXISTING_ID.search(message or "")
    return match.group(1) if match else None


def describe(body: Mapping[str, Any] | None, status: int | None = None) -> str:
    """One log line for a HubSpot error body: category, message, correlation id."""
    body = body or {}
    parts = []
    if status is not None:
        parts.append(f"HTTP {status}")
    category = body.get("category") or body.get("policyName") or body.get("errorType")
    if category:
        parts.append(str(category))
    message = str(body.get("message") or "").strip()
    details = body.get("errors")
    if isinstance(details, list) and details:
        detail = "; ".join(str(d.get("message")) for d in details[:3] if isinstance(d, Mapping))
        if detail and detail not in message:
            message = f"{message} ({detail})" if message else detail
    if message:
        parts.append(message[:500])
    context = body.get("context")
    if isinstance(context, Mapping) and context.get("missingScopes"):
        parts.append(f"missing scopes: {', '.join(map(str, context['missingScopes']))}")
    if body.get("correlationId"):
        parts.append(f"correlationId={body['correlationId']}")
    return ": ".join(parts[:2]) + (" - " + " | ".join(parts[2:]) if len(parts) > 2 else "")


def error_for(
    status: int, body: Mapping[str, Any] | None, *, retry_after: float | None = None
) -> BackendError:
    """The driver error for a failed HubSpot call (the one choke point)."""
    body = body or {}
    cls = ERROR_TABLE.get(status)
    if cls is None:
        category = str(body.get("category") or "")
        cls = CATEGORY_TABLE.get(category) or (Unavailable if status >= 500 else InvalidRecord)
    message = describe(body, status)
    if status == 401:
        message = f"HubSpot refused the token (check backend.options.token): {message}"
    elif status == 403:
        message = f"HubSpot token lacks a scope for this call: {message}"
    elif status == 429 and str(body.get("policyName") or "").upper() == "DAILY":
        message = f"HubSpot daily API quota exhausted (resets at the portal's midnight): {message}"
    if issubclass(cls, Unavailable):
        return cls(message, retry_after=retry_after)
    return cls(message)


def item_error(item: Mapping[str, Any]) -> BackendError:
    """The per-record error for one entry of a 207 ``errors[]`` array."""
    category = str(item.get("category") or "")
    cls = CATEGORY_TABLE.get(category, InvalidRecord)
    if cls in (AuthFailed, RateLimited):
        cls = InvalidRecord
    message = describe(item)
    context = item.get("context")
    if isinstance(context, Mapping) and context.get("objectWriteTraceId"):
        message += f" [objectWriteTraceId={','.join(map(str, context['objectWriteTraceId']))}]"
    return cls(message)


class HubSpotRetryPolicy(RetryPolicy):
    """HubSpot's retry rules (modelled on its own Node SDK's RetryDecorator) on top of the
    shared policy: the 429's ``policyName`` says which limit was hit."""

    #: HubSpot's edge also answers 521-526 for transient connection and TLS trouble.
    RETRY_STATUSES = frozenset({500, 502, 503, 504, 521, 522, 523, 524, 525, 526})

    def for_response(
        self, status: int, body: Any, headers: Mapping[str, str], attempt: int
    ) -> Decision:
        body = body if isinstance(body, Mapping) else {}
        after = self.retry_after(headers, body)
        if status == 429:
            policy = str(body.get("policyName") or "").upper()
            message = str(body.get("message") or "").lower()
            if policy == "DAILY" or "daily limit" in message:
                return Decision(False, kind="daily")  # shared by every app: waiting won't help
            if policy == "SECONDLY" or ("secondly limit" in message and "ten" not in message):
                # search's per-second limit: about a second, growing with attempts
                return Decision(True, max(after or 0.0, 1.0 * attempt), "search", True, "search")
            interval = _header_float(headers, "x-hubspot-ratelimit-interval-milliseconds")
            window = (interval / 1000.0) if interval else 10.0
            return Decision(True, max(after or 0.0, window), "ten_secondly", True, "general")
        if status == 477:  # the portal is moving data centre; Retry-After can be hours
            return Decision(True, after if after is not None else 30.0, "migrating", True)
        return super().for_response(status, body, headers, attempt)


def _header_float(headers: Mapping[str, str], name: str) -> float | None:
    try:
        value = headers.get(name)
        return float(value) if value is not None else None
    except ValueError:
        return None
