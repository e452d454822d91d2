"""The HTTP layer shared by every HTTP driver (HubSpot today, declarative REST next).

One concern per module, each usable and tested alone:

* :mod:`.client` - :class:`HttpClient`: pooled httpx, time budgets, the retry loop (tenacity),
  rate-limit headers fed back to the limiter, the driver's error table applied at one point.
* :mod:`.retry` - :class:`RetryPolicy`: which answers are retried and after how long
  (``Retry-After`` as seconds, HTTP date or a body field; a permanent error never retried).
* :mod:`.limiter` - named rate budgets, per process (:class:`LocalLimiter`) or shared by every
  replica in Redis (:class:`RedisLimiter`, built on the ``limits`` library's moving window over
  redis-py's asyncio client).
* :mod:`.redact` - secret-safe request logging.
* :mod:`.options` - :class:`RateLimitOptions` (``rate_limit: {redis_url, key_prefix}``) and
  :func:`build_limiter`.

A driver builds one :class:`HttpClient` with its budgets, its policy (a :class:`RetryPolicy`
subclass for its quirks) and its error table, and spells no retry or limiter logic itself.
"""

from __future__ import annotations

from backends.http.client import ErrorFactory, HttpClient, HttpResponse, RateHeader
from backends.http.limiter import Budget, Limiter, LocalLimiter, OverBudget, RedisLimiter
from backends.http.options import RateLimitOptions, build_limiter
from backends.http.redact import Redactor
from backends.http.retry import Decision, RetryPolicy, parse_retry_after

__all__ = [
    "Budget",
    "Decision",
    "ErrorFactory",
    "HttpClient",
    "HttpResponse",
    "Limiter",
    "LocalLimiter",
    "OverBudget",
    "RateHeader",
    "RateLimitOptions",
    "Redactor",
    "RedisLimiter",
    "RetryPolicy",
    "build_limiter",
    "parse_retry_after",
]
