"""``errors:`` alone: classification by status, body and headers; the retry decision; the
wait read from ``Retry-After`` (seconds, HTTP date), a body field or a reset header."""

from __future__ import annotations

import email.utils

import pytest

from backends.base import (
    AuthFailed,
    BackendError,
    Conflict,
    InvalidRecord,
    NotFound,
    RateLimited,
    Unavailable,
)
from backends.rest.errors import ErrorsSpec, ErrorTable, RestRetryPolicy

NOW = 1_800_000_000.0


def table(**spec: object) -> ErrorTable:
    return ErrorTable(ErrorsSpec.model_validate(spec))


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (
            400,
            {"error": True, "errors": {"email": ["Contact already exists with this email"]}},
            Conflict,
        ),
        (
            400,
            {"error": True, "errors": {"first_name": ["This field is required."]}},
            InvalidRecord,
        ),
        (400, {"errors": [{"extensions": {"code": "RECORD_NOT_UNIQUE"}}]}, Conflict),
        (403, {"detail": "Organization context is required."}, AuthFailed),
        (404, {"detail": "No Contact matches the given query."}, NotFound),
        (429, {}, RateLimited),
        (500, {"message": "<h1>Server Error (500)</h1>"}, Unavailable),
        (405, {"detail": "Method not allowed"}, BackendError),
    ],
)
def test_classification(status: int, body: dict[str, object], cls: type[BackendError]) -> None:
    errors = table(
        rules=[
            {"status": 400, "message": "already exists", "class": "conflict"},
            {
                "status": 400,
                "body": {"path": "errors.0.extensions.code", "equals": "RECORD_NOT_UNIQUE"},
                "class": "conflict",
            },
        ]
    )
    error = errors(status, body)
    assert type(error) is cls
    assert error.message.startswith(f"the CRM answered {status}")


def test_messages_read_field_maps_and_lists() -> None:
    errors = table(message=["errors", "detail"])
    error = errors(400, {"errors": {"email": ["bad"], "phone": ["too long", "digits"]}})
    assert error.message == "the CRM answered 400: email: bad; phone: too long; digits"


def test_a_header_rule_makes_a_403_a_rate_limit() -> None:
    errors = table(
        rules=[{"status": 403, "header": "X-RateLimit-Reset", "class": "rate_limited"}],
        retry_after={"reset_header": "X-RateLimit-Reset"},
    )
    policy = RestRetryPolicy(errors, now=lambda: NOW)
    decision = policy.for_response(403, {}, {"x-ratelimit-reset": "12"}, 1)
    assert decision.retry and decision.wait == 12 and decision.kind == "429"
    assert isinstance(errors(403, {}, headers={"X-RateLimit-Reset": "12"}), RateLimited)
    assert not policy.for_response(403, {}, {}, 1).retry


@pytest.mark.parametrize(
    ("spec", "headers", "body", "wait"),
    [
        ({}, {"retry-after": "7"}, {}, 7.0),
        ({}, {"retry-after": email.utils.formatdate(NOW + 30, usegmt=True)}, {}, 30.0),
        ({"body": "error.retry_after"}, {}, {"error": {"retry_after": 4}}, 4.0),
        ({"reset_header": "x-ratelimit-reset"}, {"x-ratelimit-reset": "2"}, {}, 2.0),
        (
            {"reset_header": "x-ratelimit-reset", "reset_is_epoch": True},
            {"x-ratelimit-reset": str(int(NOW + 9))},
            {},
            9.0,
        ),
    ],
)
def test_retry_after_sources(
    spec: dict[str, object], headers: dict[str, str], body: dict[str, object], wait: float
) -> None:
    policy = RestRetryPolicy(table(retry_after=spec), now=lambda: NOW)
    decision = policy.for_response(429, body, headers, 1)
    assert decision.retry and decision.exact and decision.wait == pytest.approx(wait)


def test_permanent_errors_are_never_retried_and_5xx_back_off() -> None:
    policy = RestRetryPolicy(table(), now=lambda: NOW)
    for status in (400, 401, 403, 404, 405, 409, 422):
        assert not policy.for_response(status, {}, {}, 1).retry
    assert policy.for_response(503, {}, {}, 3).wait == 4.0
