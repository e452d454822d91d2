"""The REST driver's client: the shared HTTP layer (:mod:`backends.http`) set up from the
manifest, and the one place operations are sent (or, in a dry run, logged and answered).

What is the manifest's here: the auth component, the error table and the retry policy built
from it, the rate budget and its headers, the fixed headers and query parameters, TLS
verification. Retries, the time budget, the limiter and secret-safe logging are the shared
layer's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from backends.base import NotFound
from backends.http import Budget, HttpClient, HttpResponse, Limiter, RateHeader, build_limiter
from backends.http.limiter import Clock, Sleep
from backends.http.redact import MASK
from backends.rest.errors import ErrorTable, RestRetryPolicy
from backends.rest.manifest import RestOptions
from backends.rest.pagination import NoPagination, Pagination
from backends.rest.requests import Built, RequestSpec, ResponseSpec

__all__ = ["DRY_RUN_PREFIX", "RestClient"]

log = logging.getLogger("backends.rest")

#: Ids answered in a dry run start with this, so nobody mistakes them for the CRM's.
DRY_RUN_PREFIX = "dry-run-"
GENERAL = "general"
_NO_PAGES = NoPagination.model_validate({"type": "none"})


class RestClient:
    """Sends the manifest's operations through one :class:`HttpClient`."""

    def __init__(
        self,
        options: RestOptions,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        jitter: Callable[[], float] = random.random,
        limiter: Limiter | None = None,
        name: str = "CRM",
    ) -> None:
        self.options = options
        self.prepared = options.auth.prepare(clock)
        self.table = ErrorTable(options.errors, name=name)
        limits = options.rate_limit
        budgets = [Budget(GENERAL, limits.requests, limits.per_seconds)] if limits.requests else []
        self.limiter = limiter or build_limiter(
            limits,
            budgets,
            driver="rest",
            credential=self.prepared.credential or options.base_url,
            clock=clock,
            sleep=sleep,
        )
        rate_headers = (
            [RateHeader(limits.remaining_header, GENERAL, limits.limit_header)]
            if limits.remaining_header and limits.requests
            else []
        )
        timeouts = options.timeouts
        self.http = HttpClient(
            base_url=options.base_url,
            limiter=self.limiter,
            errors=self.table,
            policy=RestRetryPolicy(self.table),
            headers={"Accept": "application/json", **options.headers, **self.prepared.headers},
            secrets=self.prepared.secrets,
            timeout=httpx.Timeout(
                connect=timeouts.connect,
                read=timeouts.read,
                write=timeouts.write,
                pool=timeouts.pool,
            ),
            max_connections=options.max_connections,
            max_attempts=options.max_attempts,
            budget_seconds=options.budget_seconds,
            rate_headers=rate_headers,
            transport=transport,
            sleep=sleep,
            clock=clock,
            jitter=jitter,
            logger=log,
            name=name,
            auth=self.prepared.flow,
            verify=options.verify_tls,
        )
        self._budgets = (GENERAL,) if budgets else ()
        #: Requests a dry run logged instead of sending (method + path + body), newest last.
        self.dry_run_log: list[str] = []

    @property
    def attempts(self) -> int:
        """HTTP attempts sent so far (for benches and tests)."""
        return self.http.attempts

    async def aclose(self) -> None:
        await self.http.aclose()

    @contextlib.contextmanager
    def budget(self, seconds: float | None = None) -> Iterator[None]:
        with self.http.budget(seconds):
            yield

    def context(self, ctx: Mapping[str, Any]) -> dict[str, Any]:
        """``ctx`` with the roots every operation has (``vars``, ``now``)."""
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        return {"vars": self.options.vars, "now": now, **ctx}

    def build(self, request: RequestSpec, ctx: Mapping[str, Any]) -> Built:
        return request.build(self.context(ctx), self.options.tables)

    async def send(
        self,
        request: RequestSpec,
        response: ResponseSpec,
        ctx: Mapping[str, Any],
        *,
        idempotent: bool = True,
        accept: Collection[int] = (),
        params: Mapping[str, Any] | None = None,
        url: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """Build ``request`` for ``ctx`` and send it; a 2xx that ``response`` calls failed
        raises like the matching error status. ``idempotent=False`` for creates: the HTTP
        layer then retries only what the server cannot have acted on."""
        built = self.build(request, ctx)
        query = {} if url is not None else {**self.prepared.params, **built.params}
        query.update(params or {})
        extra = {**built.headers, **(headers or {})}
        if self.options.dry_run:
            return self._dry_run(built, query, extra, response)
        answer = await self.http.request(
            built.method,
            url or built.path,
            json=built.json,
            params=query or None,
            budgets=self._budgets,
            accept=accept,
            headers=extra or None,
            idempotent=idempotent,
        )
        if response.empty_means_not_found and answer.body in (None, "", {}, []):
            raise NotFound(f"{built.method} {built.path}: nothing there (empty answer)")
        if response.failed(answer.body):
            body = answer.body if isinstance(answer.body, dict) else {}
            raise self.table(400, body, headers=answer.headers)
        return answer

    async def collect(
        self,
        request: RequestSpec,
        response: ResponseSpec,
        pagination: Pagination | None,
        ctx: Mapping[str, Any],
        limit: int | None = None,
    ) -> list[Any]:
        """Every item of every page (at most ``limit``)."""
        items: list[Any] = []
        walker = pagination or _NO_PAGES

        async def send(params: Mapping[str, Any], url: str | None) -> HttpResponse:
            return await self.send(request, response, ctx, params=params, url=url)

        async for page in walker.pages(send, response.items_of):
            items.extend(page)
            if limit is not None and len(items) >= limit:
                break
        return items

    # -- dry run -------------------------------------------------------------------------------

    def _dry_run(
        self,
        built: Built,
        params: Mapping[str, Any],
        headers: Mapping[str, str],
        response: ResponseSpec,
    ) -> HttpResponse:
        shown_params = {k: (MASK if k in self.prepared.params else v) for k, v in params.items()}
        shown_headers = {k: (MASK if k in self.prepared.headers else v) for k, v in headers.items()}
        query = "&".join(f"{k}={v}" for k, v in shown_params.items())
        line = f"{built.method} {built.path}{'?' + query if query else ''}"
        if shown_headers:
            line += f" headers={json.dumps(shown_headers, sort_keys=True)}"
        if built.json is not None:
            line += f" body={json.dumps(built.json, default=str, sort_keys=True)}"
        line = self.http.redactor.text(line)
        self.dry_run_log.append(line)
        log.warning("dry run: would send %s", line)
        fake = f"{DRY_RUN_PREFIX}{uuid.uuid4().hex[:12]}"
        # A read finds nothing; a write succeeds with an id that says it is not real.
        reads = built.method in ("GET", "SEARCH")
        return HttpResponse(200, {} if reads else response.synthesize(built.json, fake), {})
