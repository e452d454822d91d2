"""The retry policy alone: what is retried, after how long, and what never is."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from backends.http import RetryPolicy, parse_retry_after

NOW = 1_800_000_000.0


def policy(**kwargs: object) -> RetryPolicy:
    return RetryPolicy(now=lambda: NOW, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("2.5", 2.5),
        (7, 7.0),
        (email.utils.formatdate(NOW + 90, usegmt=True), 90.0),
        (email.utils.formatdate(NOW - 90, usegmt=True), 0.0),  # a date in the past: now
        ("-3", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        (True, None),
    ],
)
def test_retry_after_as_seconds_or_http_date(value: object, seconds: float | None) -> None:
    assert parse_retry_after(value, lambda: NOW) == seconds


def test_429_waits_retry_after_and_marks_its_budget_exhausted() -> None:
    decision = policy().for_response(429, {}, {"retry-after": "3"}, 1)
    assert (decision.retry, decision.wait, decision.exact) == (True, 3.0, True)
    assert decision.exhausted == "general"


def test_429_without_retry_after_waits_the_default_window() -> None:
    decision = policy(rate_limit_wait=10.0).for_response(429, {}, {}, 1)
    assert decision.retry and decision.wait == 10.0


def test_retry_after_from_a_body_field() -> None:
    body = {"error": {"retry_after": "4"}}
    decision = policy(retry_after_field="error.retry_after").for_response(429, body, {}, 1)
    assert decision.wait == 4.0
    # the header wins over the body
    assert (
        policy(retry_after_field="error.retry_after").retry_after({"retry-after": "9"}, body) == 9
    )


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_transient_statuses_back_off_exponentially(status: int) -> None:
    p = policy(backoff_base=1.0, backoff_cap=5.0)
    waits = [p.for_response(status, {}, {}, attempt).wait for attempt in (1, 2, 3, 4, 5)]
    assert waits == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert all(p.for_response(status, {}, {}, 1).retry for _ in range(1))


def test_503_with_retry_after_waits_what_the_server_said() -> None:
    decision = policy().for_response(503, {}, {"retry-after": "42"}, 1)
    assert decision.retry and decision.wait == 42.0 and decision.exact


def test_423_waits_at_least_two_seconds() -> None:
    assert policy().for_response(423, {}, {}, 1).wait == 2.0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 410, 413, 414, 422, 501])
def test_permanent_errors_are_never_retried(status: int) -> None:
    decision = policy().for_response(status, {}, {"retry-after": "1"}, 1)
    assert decision.retry is False


def test_network_errors_are_retried_with_backoff() -> None:
    decision = policy().for_network_error(httpx.ConnectError("refused"), 3)
    assert decision.retry and decision.wait == 4.0 and decision.kind == "network"
