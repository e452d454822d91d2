"""A stateful, in-memory fake of a stock HubSpot portal (the API subset the driver uses).

Serve it through an httpx transport (one process) or :mod:`.server` (several processes)::

    portal = FakeHubSpot(token="pat-test")
    backend = HubSpotBackend(HubSpotOptions(token="pat-test"), transport=portal.transport())

Each behaviour follows HubSpot's public documentation, so code is tested against HubSpot's
rules rather than an idealised API. Where each comes from:

* stock properties only, enumerations take only their internal option values, writing an
  unknown or read-only property is 400 ``PROPERTY_DOESNT_EXIST`` / ``READ_ONLY_VALUE``
  (:mod:`.schema` names its sources; error shape: developers.hubspot.com/docs/api-reference/
  error-handling);
* batches of at most 100 inputs; 207 multi-status only when every input carries a unique
  ``objectWriteTraceId``, otherwise one bad input fails the batch (error-handling guide,
  "Multi-status errors"); 409 on a duplicate email or unique value naming one existing id only
  in the message; ``batch/read`` with ``idProperty`` at the top level and only by unique
  properties; ``batch/update`` by record id only (contacts guide,
  developers.hubspot.com/docs/api/crm/contacts);
* search (developers.hubspot.com/docs/api/crm/search): 5 filter groups, 6 filters per group, 18
  in all; 3,000-character bodies; 200 per page and 10,000 results per query; ``IN`` matches only
  lower-case values; ``CONTAINS_TOKEN`` matches a whole token, ``*`` standing for any
  characters, ignoring case (:func:`.links.contains_token`); ``HAS_PROPERTY`` /
  ``NOT_HAS_PROPERTY``; a filter or sort on a property the portal lacks is a 400; results lag
  writes ("may take a few moments to appear"), here by ``search_lag`` seconds;
* rate limits (developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines and the
  older api/usage-details page): 100 calls per rolling 10 s for a Free/Starter private app
  (``rate_limit``), search 5 per second (``search_per_second``) and a daily quota
  (``daily_limit``), each refused with a 429 whose body names the policy
  (``TEN_SECONDLY_ROLLING``, ``SECONDLY``, ``DAILY``); ``X-HubSpot-RateLimit-*`` headers on
  every answer but search answers;
* "Create and associate companies with contacts" (knowledge.hubspot.com/object-settings/
  automatically-create-and-associate-companies-with-contacts): with ``auto_create_companies``,
  a contact created with a business email gets a company for its email domain, created by the
  portal itself (no ``enginy_*`` property) and associated as the contact's primary company,
  unless a company with that domain already exists; HubSpot does this in the background, here
  ``auto_create_delay`` seconds later;
* v4 association type ids with direction; both the v3/v4 and the date-versioned paths.

Everything it answered is in :attr:`FakeHubSpot.calls`; ``fail_next`` scripts any status or a
transport error.
"""

from __future__ import annotations

import collections
import itertools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from backends.testing.hubspot.objects import FakeError, ObjectStore
from backends.testing.hubspot.schema import OBJECT_ALIASES

__all__ = ["Call", "FakeHubSpot"]


@dataclass(frozen=True, slots=True)
class Call:
    """One request the fake answered: ``op`` is a version-independent name such as
    ``contacts.batch/read`` or ``search:contacts``."""

    method: str
    path: str
    op: str
    status: int
    inputs: int = 0
    #: The JSON body sent, decoded (``None`` without one).
    body: Any = None


@dataclass(slots=True)
class _Scripted:
    status: int | None
    body: Any
    headers: dict[str, str]
    path_contains: str | None
    error: Exception | None
    times: int


class FakeHubSpot:
    """The fake portal. All state lives on the instance."""

    def __init__(
        self,
        *,
        token: str = "pat-na1-fake-token",
        clock: Callable[[], float] = time.monotonic,
        rate_limit: int | None = 100,
        search_per_second: int | None = 5,
        daily_limit: int | None = None,
        search_lag: float = 2.0,
        auto_create_companies: bool = False,
        auto_create_delay: float = 0.0,
        portal_id: int = 4242,
        missing_scopes: frozenset[str] = frozenset(),
    ) -> None:
        self.token = token
        self.clock = clock
        self.rate_limit = rate_limit
        self.search_per_second = search_per_second
        self.daily_limit = daily_limit
        self.portal_id = portal_id
        self.missing_scopes = set(missing_scopes)
        self.store = ObjectStore(
            clock=clock,
            search_lag=search_lag,
            auto_create_companies=auto_create_companies,
            auto_create_delay=auto_create_delay,
        )
        self.calls: list[Call] = []
        self._window: collections.deque[float] = collections.deque()
        self._search_window: collections.deque[float] = collections.deque()
        self._daily = 0
        self._script: list[_Scripted] = []
        self.owners: list[dict[str, Any]] = []
        self._owner_ids = itertools.count(100)

    # -- test helpers -------------------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def fail_next(
        self,
        status: int | None = 500,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        path_contains: str | None = None,
        error: Exception | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status``/``body`` (or raise
        ``error``, e.g. ``httpx.ReadTimeout``) instead of serving them."""
        self._script.append(_Scripted(status, body, headers or {}, path_contains, error, times))

    def add_owner(self, first: str, last: str, email: str, *, archived: bool = False) -> str:
        owner_id = str(next(self._owner_ids))
        self.owners.append(
            {
                "id": owner_id,
                "email": email,
                "firstName": first,
                "lastName": last,
                "userId": int(owner_id) + 9000,
                "type": "PERSON",
                "archived": archived,
                "teams": [],
                "createdAt": _now(),
                "updatedAt": _now(),
            }
        )
        self.store.owner_ids.add(owner_id)
        return owner_id

    def add_property(self, object_type: str, name: str, **definition: Any) -> None:
        """Define a custom property, as a portal admin would."""
        self.store.properties[object_type][name] = {
            "name": name,
            "label": name,
            "type": "string",
            "fieldType": "text",
            "groupName": "contactinformation",
            "hubspotDefined": False,
            "hasUniqueValue": False,
            "options": [],
            "modificationMetadata": {"readOnlyValue": False},
            **definition,
        }

    def count(self, op_prefix: str = "") -> int:
        return sum(1 for c in self.calls if c.op.startswith(op_prefix))

    @property
    def objects(self) -> dict[str, dict[str, dict[str, Any]]]:
        return self.store.objects

    # -- dispatch -------------------------------------------------------------------------------

    async def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        try:
            op, response = self._dispatch(request)
        except FakeError as exc:
            op, response = exc.op or path, exc.response()
        inputs = 0
        sent: Any = None
        if request.content:
            try:
                sent = json.loads(request.content)
                inputs = len(sent.get("inputs") or []) if isinstance(sent, dict) else len(sent)
            except ValueError:
                pass
        self.calls.append(Call(request.method, path, op, response.status_code, inputs, sent))
        return response

    def _scripted(self, request: httpx.Request) -> httpx.Response | None:
        for entry in self._script:
            if entry.path_contains and entry.path_contains not in request.url.path:
                continue
            entry.times -= 1
            if entry.times <= 0:
                self._script.remove(entry)
            if entry.error is not None:
                raise entry.error
            return httpx.Response(entry.status or 500, json=entry.body, headers=entry.headers)
        return None

    def _dispatch(self, request: httpx.Request) -> tuple[str, httpx.Response]:
        scripted = self._scripted(request)
        if scripted is not None:
            return "scripted", scripted
        if request.headers.get("authorization") != f"Bearer {self.token}":
            raise FakeError(
                401,
                "Authentication credentials not found. This API supports OAuth "
                "2.0 authentication and you can find more details at https://...",
                "INVALID_AUTHENTICATION",
                op="auth",
            )
        parts = [p for p in request.url.path.split("/") if p]
        route = _route(parts)
        if route is None:
            raise FakeError(404, f"Unknown path {request.url.path}", "OBJECT_NOT_FOUND")
        kind, args = route
        self._check_scope(kind, args, request.method)
        body: Any = json.loads(request.content) if request.content else None
        if kind == "search":
            self._limit_search()
            if len(request.content) > 3000:  # the limit is on what is sent
                raise FakeError(
                    400,
                    "Request body exceeds 3000 characters",
                    "VALIDATION_ERROR",
                    op=f"search:{args[0]}",
                )
        headers = self._limit_general(request)
        params = dict(request.url.params)
        op, status, payload = self.store.serve(kind, args, request.method, body, params, self)
        response = (
            httpx.Response(status, json=payload, headers=headers)
            if payload is not None
            else httpx.Response(status, headers=headers)
        )
        return op, response

    def _check_scope(self, kind: str, args: list[str], method: str) -> None:
        needed = {"owners": "crm.objects.owners.read"}.get(kind)
        if kind in ("properties", "property_groups"):
            needed = f"crm.schemas.{args[0]}.{'read' if method == 'GET' else 'write'}"
        if needed and needed in self.missing_scopes:
            error = FakeError(
                403,
                "This app hasn't been granted all required scopes to make this call.",
                "MISSING_SCOPES",
                op=kind,
            )
            error.extra = {
                "context": {"requiredGranularScopes": [needed], "missingScopes": [needed]}
            }
            raise error

    def _limit_general(self, request: httpx.Request) -> dict[str, str]:
        self._daily += 1
        if self.daily_limit is not None and self._daily > self.daily_limit:
            raise FakeError(
                429,
                "You have reached your daily limit.",
                None,
                op="ratelimit",
                extra={
                    "errorType": "RATE_LIMIT",
                    "policyName": "DAILY",
                    "requestId": str(uuid.uuid4()),
                },
            )
        if self.rate_limit is None:
            return {}
        now = self.clock()
        while self._window and self._window[0] <= now - 10.0:
            self._window.popleft()
        if len(self._window) >= self.rate_limit:
            raise FakeError(
                429,
                "You have reached your ten_secondly_rolling limit.",
                None,
                op="ratelimit",
                extra={
                    "errorType": "RATE_LIMIT",
                    "policyName": "TEN_SECONDLY_ROLLING",
                    "groupName": "publicapi:private_app-api-calls-ten-secondly:1",
                },
                headers={
                    "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                    "X-HubSpot-RateLimit-Max": str(self.rate_limit),
                    "X-HubSpot-RateLimit-Remaining": "0",
                },
            )
        self._window.append(now)
        if "/search" in request.url.path:
            return {}  # search answers carry no rate-limit headers
        return {
            "X-HubSpot-RateLimit-Max": str(self.rate_limit),
            "X-HubSpot-RateLimit-Remaining": str(self.rate_limit - len(self._window)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        }

    def _limit_search(self) -> None:
        if self.search_per_second is None:
            return
        now = self.clock()
        while self._search_window and self._search_window[0] <= now - 1.0:
            self._search_window.popleft()
        if len(self._search_window) >= self.search_per_second:
            raise FakeError(
                429,
                "You have reached your secondly limit.",
                None,
                op="ratelimit",
                extra={
                    "errorType": "RATE_LIMIT",
                    "policyName": "SECONDLY",
                    "requestId": str(uuid.uuid4()),
                },
            )
        self._search_window.append(now)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _route(parts: list[str]) -> tuple[str, list[str]] | None:
    """Version-independent route: (kind, args). Handles ``/crm/v3|v4/...`` and
    ``/crm/<area>/<date>/...``."""
    if parts[:3] == ["account-info", "v3", "details"]:
        return "account", []
    if len(parts) < 3 or parts[0] != "crm":
        return None
    if parts[1] in ("v3", "v4"):
        area, rest = parts[2], parts[3:]
    else:
        area, rest = parts[1], parts[3:]  # /crm/<area>/<2026-03>/...
    if area == "owners":
        return ("owners", rest)
    if area == "properties" and rest:
        kind = "property_groups" if rest[1:2] == ["groups"] else "properties"
        return (kind, [OBJECT_ALIASES.get(rest[0], rest[0]), *rest[1:]])
    if area == "associations" and len(rest) >= 4 and rest[2] == "batch":
        return (
            "assoc_batch",
            [
                OBJECT_ALIASES.get(rest[0], rest[0]),
                OBJECT_ALIASES.get(rest[1], rest[1]),
                "/".join(rest[3:]),
            ],
        )
    if area == "objects" and rest:
        object_type = OBJECT_ALIASES.get(rest[0])
        if object_type is None:
            return None
        tail = rest[1:]
        if len(tail) >= 2 and tail[1] == "associations":
            return ("assoc_record", [object_type, tail[0], *tail[2:]])
        if tail[:1] == ["batch"] and len(tail) == 2:
            return ("batch", [object_type, tail[1]])
        if tail == ["search"]:
            return ("search", [object_type])
        if len(tail) == 1:
            return ("object", [object_type, tail[0]])
        if not tail:
            return ("objects", [object_type])
    return None
