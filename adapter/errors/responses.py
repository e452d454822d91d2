"""Rendering an error body, and the request state it reads and writes.

:func:`error_response` is the one renderer of ``{"error", "message"}`` bodies. The request's
id comes from the state the telemetry middleware sets; what a body withholds is kept there for
the request's log line (:func:`note_detail`), as is the outcome of a request answered before
routing (:func:`note_outcome`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

__all__ = [
    "DETAIL_STATE",
    "OUTCOME_STATE",
    "OVERLOADED",
    "REQUEST_ID_STATE",
    "UNAUTHORIZED",
    "UNAVAILABLE",
    "error_response",
    "note_detail",
    "note_outcome",
    "request_id_of",
]

_JSON_HEADERS = {"content-type": "application/json"}

#: Key of ``scope["state"]`` holding the request's id (set by the telemetry middleware, the
#: outermost one, before anything can answer).
REQUEST_ID_STATE = "request_id"
#: Key of ``scope["state"]`` holding what an error body did not say (see :func:`note_detail`).
DETAIL_STATE = "error_detail"
#: Key of ``scope["state"]`` holding the outcome of a request answered before routing (see
#: :func:`note_outcome`): metrics and logs label it with that instead of a route.
OUTCOME_STATE = "outcome"

#: The outcomes a request can be answered with before routing, one fixed label each.
UNAUTHORIZED = "unauthorized"
UNAVAILABLE = "unavailable"
OVERLOADED = "overloaded"


def request_id_of(scope: Mapping[str, Any]) -> str | None:
    """The id of the request ``scope`` belongs to, if the telemetry middleware gave it one."""
    state = scope.get("state")
    value = state.get(REQUEST_ID_STATE) if isinstance(state, Mapping) else None
    return value if isinstance(value, str) else None


def note_detail(scope: Any, detail: str) -> None:
    """Keep ``detail`` (the cause an error body withholds) for the request's log line."""
    state = scope.setdefault("state", {})
    if isinstance(state, dict):
        state[DETAIL_STATE] = detail


def note_outcome(scope: Any, outcome: str) -> None:
    """Say that the request was answered before routing, with ``outcome`` (one of
    :data:`UNAUTHORIZED`, :data:`UNAVAILABLE`, :data:`OVERLOADED`)."""
    state = scope.setdefault("state", {})
    if isinstance(state, dict):
        state[OUTCOME_STATE] = outcome


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
) -> Response:
    """Render one error: ``{"error": code, "message": message, **extra}`` with ``status``,
    plus ``requestId`` when the request has one."""
    body: dict[str, Any] = {"error": code, "message": message}
    if extra:
        body.update(extra)
    if request_id is not None:
        body["requestId"] = request_id
    all_headers = dict(_JSON_HEADERS)
    if headers:
        all_headers.update(headers)
    content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(content, status_code=status, headers=all_headers)
