"""Which failed HTTP calls are retried, and after how long: one policy, run by tenacity.

:class:`RetryPolicy` decides per answer (:meth:`RetryPolicy.for_response`) or per transport
failure (:meth:`RetryPolicy.for_network_error`) and returns a :class:`Decision`; the client
(:mod:`backends.http.client`) feeds those decisions to ``tenacity.AsyncRetrying``. A permanent
error (any 4xx but 408, 423, 425 and 429) is never retried. A driver with quirks (HubSpot's
429 policy names, its 477 "migration in progress") subclasses the policy and overrides
:meth:`RetryPolicy.for_response`, falling back to ``super()`` for the rest.

``Retry-After`` is read as seconds or as an HTTP date (RFC 9110 §10.2.3), from the header or,
for APIs that put it in the error body, from ``retry_after_field`` (a dotted path).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["Decision", "RetryPolicy", "parse_retry_after"]


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether to retry, and the base wait before the next attempt."""

    retry: bool
    wait: float = 0.0
    #: Short reason for logs and the retry metric (``"429"``, ``"5xx"``, ``"network"``...).
    kind: str = ""
    #: The wait is a floor the server set (Retry-After, a rate window): jitter is *added*.
    #: Otherwise it is a backoff, jittered *down* ("equal jitter": half fixed, half random).
    exact: bool = False
    #: The limiter budget the server said is exhausted (a 429): the limiter pauses it for
    #: ``wait``, so every concurrent caller waits, not only this one.
    exhausted: str | None = None


def parse_retry_after(value: Any, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: a number of seconds (``"120"``, ``7.5``)
    or an HTTP date (``"Wed, 21 Oct 2026 07:28:00 GMT"``, relative to ``now``). ``None`` when
    absent or unreadable; never negative."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return max(0.0, float(value))
    text = str(value).strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


def _lookup(body: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(body, Mapping):
            return None
        body = body.get(part)
    return body


class RetryPolicy:
    """The default policy for JSON APIs (see the module docstring)."""

    #: Transient server failures: retried with exponential backoff.
    RETRY_STATUSES = frozenset({500, 502, 503, 504})

    def __init__(
        self,
        *,
        retry_statuses: frozenset[int] | None = None,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
        rate_limit_wait: float = 10.0,
        rate_limit_budget: str | None = "general",
        retry_after_field: str | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.retry_statuses = self.RETRY_STATUSES if retry_statuses is None else retry_statuses
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.rate_limit_wait = rate_limit_wait
        self.rate_limit_budget = rate_limit_budget
        self.retry_after_field = retry_after_field
        self._now = now

    def backoff(self, attempt: int) -> float:
        """Exponential backoff for the attempt that just failed (1, 2, 4 ... capped)."""
        return float(min(self.backoff_cap, self.backoff_base * 2 ** max(0, attempt - 1)))

    def retry_after(self, headers: Mapping[str, str], body: Any) -> float | None:
        """The server's ``Retry-After`` (header first, then the configured body field)."""
        found = parse_retry_after(headers.get("retry-after"), self._now)
        if found is None and self.retry_after_field:
            found = parse_retry_after(_lookup(body, self.retry_after_field), self._now)
        return found

    def for_response(
        self, status: int, body: Any, headers: Mapping[str, str], attempt: int
    ) -> Decision:
        """Decide for a non-2xx answer; ``attempt`` is the number of the attempt that failed."""
        after = self.retry_after(headers, body)
        if status == 429:
            wait = after if after is not None else self.rate_limit_wait
            return Decision(True, wait, "429", True, self.rate_limit_budget)
        if status == 423:  # locked for a moment (a bulk job holds the record)
            return Decision(True, max(after or 0.0, 2.0), "locked", True)
        if status in (408, 425) or status in self.retry_statuses:
            if after is not None:
                return Decision(True, after, f"{status // 100}xx", True)
            return Decision(True, self.backoff(attempt), f"{status // 100}xx")
        return Decision(False, kind="permanent")

    def for_network_error(self, exc: httpx.HTTPError, attempt: int) -> Decision:
        """Timeouts, refused connections, dropped connections: backoff and retry."""
        return Decision(True, self.backoff(attempt), "network")
