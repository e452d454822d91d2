"""The HTTP client every HTTP driver shares: pooled httpx, named rate budgets, tenacity retries,
one deadline per driver operation, secret-safe logs.

* One ``httpx.AsyncClient`` per driver (connection pooling, explicit timeouts, no redirects
  followed silently); the transport is injectable so tests and benches serve fakes with no
  network.
* Before each attempt the call takes a slot of each of its budgets from the
  :class:`~backends.http.limiter.Limiter`; after it, rate-limit headers (``rate_headers``:
  header name → budget) tell the limiter how much the server still allows.
* Failures are decided by the :class:`~backends.http.retry.RetryPolicy` and retried by tenacity;
  a 429 marks its budget exhausted, so every concurrent caller waits the window, not only the
  one that was refused. A call marked ``idempotent=False`` (a create without an idempotency
  key) is retried only when the server cannot have acted on it (a 429/423/425, a connection
  that was never made); anything else raises at once, and the caller decides (finds what the
  lost attempt may have written before sending again).
* Authentication that needs more than a header (OAuth2 token refresh) is an ``httpx.Auth``
  flow handed to the client: it runs inside every attempt, on the same transport.
* Every call runs inside a *budget of time* (:meth:`HttpClient.budget`, a deadline shared by all
  the calls of one driver operation, e.g. one Enginy request). When the next wait would pass it,
  the call fails at once with ``Unavailable`` / ``RateLimited`` carrying ``retry_after``, so the
  front answers 503 with ``Retry-After`` instead of holding the request.
* Errors are built by the driver's ``errors`` callable (its one status → error table); every
  message goes through the :class:`~backends.http.redact.Redactor` first.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import itertools
import logging
import random
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from backends.base import BackendError, RateLimited, Unavailable
from backends.http.limiter import Clock, Limiter, OverBudget, Sleep
from backends.http.redact import Redactor, log_attempt
from backends.http.retry import Decision, RetryPolicy

__all__ = ["ErrorFactory", "HttpClient", "HttpResponse", "RateHeader"]

_ids = itertools.count()


class ErrorFactory(Protocol):
    """Builds the driver's error for a failed answer (its one status → error table).

    A factory that also takes a ``headers`` keyword (``Mapping[str, str]``) gets the answer's
    headers, for tables that classify by header as well as by status and body.
    """

    def __call__(
        self, status: int, body: Mapping[str, Any], *, retry_after: float | None = None
    ) -> BackendError: ...


@dataclass(frozen=True, slots=True)
class RateHeader:
    """A response header carrying how many calls of ``budget`` remain, optionally with the
    header carrying the server's limit for that window (to keep the configured headroom)."""

    remaining: str
    budget: str = "general"
    limit: str | None = None


@dataclass(slots=True)
class HttpResponse:
    """A decoded answer (any 2xx, or an error status the caller accepted)."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json_dict(self) -> dict[str, Any]:
        return self.body if isinstance(self.body, dict) else {}


class _Retry(Exception):
    """One attempt failed in a retryable way; ``wait`` is the pause before the next one."""

    def __init__(self, error: BackendError, wait: float, kind: str) -> None:
        super().__init__(error.message)
        self.error, self.wait, self.kind = error, wait, kind


@dataclass(frozen=True, slots=True)
class _Call:
    """One request as the caller asked for it (sent again unchanged by each retry)."""

    method: str
    path: str
    json: Any
    params: Mapping[str, Any] | None
    budgets: Sequence[str]
    accept: Collection[int]
    headers: Mapping[str, str] | None
    idempotent: bool


#: Answers that say the server did not act on the request (rate limit, lock, too early).
_UNPROCESSED = frozenset({423, 425, 429})
#: Transport failures raised before the request left (safe to send again whatever it was).
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _int_header(headers: Mapping[str, str], name: str | None) -> int | None:
    if name is None:
        return None
    try:
        value = headers.get(name)
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


class HttpClient:
    """Async client for one upstream API (one per driver instance)."""

    def __init__(
        self,
        *,
        base_url: str,
        limiter: Limiter,
        errors: ErrorFactory,
        policy: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        secrets: Sequence[str] = (),
        timeout: httpx.Timeout | None = None,
        max_connections: int = 20,
        max_attempts: int = 5,
        budget_seconds: float = 25.0,
        rate_headers: Sequence[RateHeader] = (),
        describe: Callable[[Mapping[str, Any], int], str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        jitter: Callable[[], float] = random.random,
        logger: logging.Logger | None = None,
        name: str = "upstream",
        auth: httpx.Auth | None = None,
        verify: bool | str = True,
    ) -> None:
        self.limiter, self.policy = limiter, policy or RetryPolicy()
        self._errors, self._describe = errors, describe
        self._errors_read_headers = "headers" in inspect.signature(errors).parameters
        self.max_attempts, self.budget_seconds = max_attempts, budget_seconds
        self.rate_headers = tuple(rate_headers)
        self._sleep, self._clock, self._jitter = sleep, clock, jitter
        self.redactor = Redactor(secrets)
        self.log = logger or logging.getLogger("backends.http")
        self.name = name
        self.timeout = timeout or httpx.Timeout(30.0, connect=5.0, pool=10.0)
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=dict(headers or {}),
            timeout=self.timeout,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
            follow_redirects=False,
            auth=auth,
            verify=verify,
        )
        self._deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
            f"http_deadline_{next(_ids)}", default=None
        )
        #: HTTP attempts sent (for logs and benches).
        self.attempts = 0
        #: Called with the failure's kind before each retry (the front's retry metric).
        self.on_retry: Callable[[str], None] | None = None

    async def aclose(self) -> None:
        """Close the connection pool and the limiter's store; never raises."""
        with contextlib.suppress(Exception):
            await self._http.aclose()
        with contextlib.suppress(Exception):
            await self.limiter.aclose()

    # -- time budget --------------------------------------------------------------------------

    @contextlib.contextmanager
    def budget(self, seconds: float | None = None) -> Iterator[None]:
        """Run the enclosed calls under one deadline; a nested budget keeps the outer one."""
        if self._deadline.get() is not None:
            yield
            return
        token = self._deadline.set(self._clock() + (seconds or self.budget_seconds))
        try:
            yield
        finally:
            self._deadline.reset(token)

    # -- requests -----------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        budgets: Sequence[str] = ("general",),
        accept: Collection[int] = (),
        headers: Mapping[str, str] | None = None,
        idempotent: bool = True,
    ) -> HttpResponse:
        """Send one call with the limiter and retries.

        Returns any 2xx (no exact code is expected: APIs swap 200/201 in practice) or a status
        listed in ``accept``; raises the driver's :class:`BackendError` otherwise (after the
        retries the policy allows, within the attempt cap and the time budget). ``headers``
        are added to this call only; ``idempotent=False`` retries only failures the server
        cannot have acted on (see the module docstring).
        """
        call = _Call(method, path, json, params, budgets, accept, headers, idempotent)
        with self.budget():
            deadline = self._deadline.get()
            assert deadline is not None

            def stop(state: RetryCallState) -> bool:
                exc = state.outcome.exception() if state.outcome else None
                if not isinstance(exc, _Retry) or state.attempt_number >= self.max_attempts:
                    return True
                return self._clock() + exc.wait > deadline

            def wait(state: RetryCallState) -> float:
                exc = state.outcome.exception() if state.outcome else None
                return exc.wait if isinstance(exc, _Retry) else 0.0

            def before_sleep(state: RetryCallState) -> None:
                exc = state.outcome.exception() if state.outcome else None
                if self.on_retry is not None and isinstance(exc, _Retry):
                    self.on_retry(exc.kind)

            retrying = AsyncRetrying(
                retry=retry_if_exception_type(_Retry),
                stop=stop,
                wait=wait,
                before_sleep=before_sleep,
                sleep=self._sleep,
                reraise=True,
            )
            try:
                async for attempt in retrying:
                    with attempt:
                        number = attempt.retry_state.attempt_number
                        return await self._attempt(call, deadline, number)
            except _Retry as exc:
                raise self._gave_up(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _gave_up(self, exc: _Retry) -> BackendError:
        error = exc.error
        if isinstance(error, Unavailable):
            error = type(error)(
                f"{error.message} (gave up after at most {self.max_attempts} attempts "
                f"within the {self.budget_seconds:g}s budget)",
                retry_after=error.retry_after or (max(0.0, exc.wait) or None),
            )
        return error

    async def _acquire(self, budgets: Sequence[str], deadline: float) -> None:
        for name in budgets:
            try:
                await self.limiter.acquire(name, deadline)
            except OverBudget as exc:
                raise RateLimited(
                    f"client-side rate limit: the next {exc.budget} slot is {exc.wait:.1f}s "
                    f"away, past the {self.budget_seconds:g}s budget",
                    retry_after=exc.wait,
                ) from None

    def _timeout(self, deadline: float) -> httpx.Timeout:
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise Unavailable(f"{self.name} call budget exhausted", retry_after=1.0)
        t = self.timeout
        return httpx.Timeout(
            connect=min(t.connect or remaining, remaining),
            read=min(t.read or remaining, remaining),
            write=min(t.write or remaining, remaining),
            pool=min(t.pool or remaining, remaining),
        )

    async def _attempt(self, call: _Call, deadline: float, number: int) -> HttpResponse:
        method, path, params = call.method, call.path, call.params
        await self._acquire(call.budgets, deadline)
        timeout = self._timeout(deadline)
        url = self.redactor.url(path, params)
        self.attempts += 1
        started = time.perf_counter()
        try:
            response = await self._http.request(
                method, path, json=call.json, params=params, timeout=timeout, headers=call.headers
            )
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            kind = type(exc).__name__
            log_attempt(
                self.log, self.redactor, method, url, number, kind,
                time.perf_counter() - started, level=logging.WARNING,
            )  # fmt: skip
            decision = self.policy.for_network_error(exc, number)
            failure = Unavailable(self.redactor.text(f"{self.name} {method} {path}: {kind}: {exc}"))
            if not call.idempotent and not isinstance(exc, _NEVER_SENT):
                raise failure from None  # it may have been acted on: the caller decides
            raise _Retry(failure, self._jittered(decision), decision.kind) from None
        elapsed = time.perf_counter() - started
        body: Any = None
        if response.content:
            try:
                body = response.json()
            except ValueError:
                body = {"message": response.text[:200]}
        status = response.status_code
        await self._observe(response.headers)
        if 200 <= status < 300 or status in call.accept:
            log_attempt(self.log, self.redactor, method, url, number, str(status), elapsed)
            return HttpResponse(status, body, response.headers)
        data = body if isinstance(body, dict) else {}
        decision = self.policy.for_response(status, data, response.headers, number)
        wait = decision.wait if decision.retry else None
        if self._errors_read_headers:
            error = self._errors(status, data, retry_after=wait, headers=response.headers)  # type: ignore[call-arg]
        else:
            error = self._errors(status, data, retry_after=wait)
        error.message = self.redactor.text(error.message)
        detail = self._describe(data, status) if self._describe else str(status)
        log_attempt(
            self.log, self.redactor, method, url, number, detail, elapsed, level=logging.WARNING
        )
        if not decision.retry or (not call.idempotent and status not in _UNPROCESSED):
            raise error
        if decision.exhausted is not None:
            await self.limiter.pause(decision.exhausted, decision.wait)
        raise _Retry(error, self._jittered(decision), decision.kind)

    def _jittered(self, decision: Decision) -> float:
        # Server-set waits get jitter added so concurrent callers don't return in lock-step;
        # backoffs get "equal jitter" (half fixed, half random).
        if decision.exact:
            return decision.wait + self._jitter()
        return decision.wait * (0.5 + self._jitter() / 2)

    async def _observe(self, headers: Mapping[str, str]) -> None:
        for header in self.rate_headers:
            remaining = _int_header(headers, header.remaining)
            if remaining is None:
                continue  # a missing header means "unknown", never "zero"
            limit = _int_header(headers, header.limit)
            budget = self.limiter.budgets.get(header.budget)
            if budget is not None and limit is not None and limit > budget.calls:
                remaining -= limit - budget.calls  # keep the configured headroom
            await self.limiter.observe(header.budget, remaining)
