"""The fake Pipedrive's HTTP side: authentication, rate limits, routing, answers, scripted
faults. State and rules live in :mod:`.store`."""

from __future__ import annotations

import collections
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from backends.testing.pipedrive.store import FakeError, Store

__all__ = ["Call", "FakePipedrive"]


@dataclass(frozen=True, slots=True)
class Call:
    """One request the fake answered."""

    method: str
    path: str
    status: int


@dataclass(slots=True)
class _Fault:
    method: str
    path: str
    status: int | None  # None: the answer is lost (a read timeout)
    after_write: bool
    times: int


def _ok(data: Any, status: int = 200, **additional: Any) -> httpx.Response:
    # Success schema: {"success": true, "data": ..., "additional_data": ...}
    # (pipedrive.readme.io/docs/core-api-concepts-responses).
    body: dict[str, Any] = {"success": True, "data": data}
    if additional:
        body["additional_data"] = additional
    return httpx.Response(status, json=body)


def _error(status: int, message: str) -> httpx.Response:
    return httpx.Response(
        status,
        json={
            "success": False,
            "error": message,
            "error_info": "Please check developers.pipedrive.com for more information about "
            "Pipedrive API.",
            "data": None,
            "additional_data": None,
        },
    )


def _int(value: str, what: str) -> int:
    if not value.isdigit():
        raise FakeError(400, f"{what} must be an integer")
    return int(value)


class FakePipedrive:
    """A Pipedrive company, served through an httpx transport. All state is on the instance."""

    def __init__(
        self,
        *,
        api_token: str = "pd-api-token-0123456789",
        access_tokens: frozenset[str] = frozenset(),
        requests_per_window: int | None = None,
        window_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.api_token = api_token
        self.access_tokens = set(access_tokens)
        self.requests_per_window, self.window_seconds = requests_per_window, window_seconds
        self.clock = clock
        self.store = Store(now)
        self.calls: list[Call] = []
        self._window: collections.deque[float] = collections.deque()
        self._faults: list[_Fault] = []

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def add_user(self, name: str, email: str) -> dict[str, Any]:
        user = {
            "id": 1000 + len(self.store.users),
            "name": name,
            "email": email,
            "active_flag": True,
            "is_admin": not self.store.users,
        }
        self.store.users.append(user)
        return user

    def fail(
        self,
        method: str,
        path: str,
        status: int | None,
        *,
        after_write: bool = False,
        times: int = 1,
    ) -> None:
        """The next ``times`` requests to ``path`` fail: ``status`` before or after doing the
        work, or (``status=None``) with the answer lost after the work."""
        self._faults.append(_Fault(method, path, status, after_write, times))

    # -- transport ------------------------------------------------------------------------------

    def _authorised(self, request: httpx.Request) -> bool:
        # API token in the x-api-token header (client-php v2: setApiKey('x-api-token')) or the
        # api_token query parameter (v1); OAuth2 access tokens as Bearer.
        token = request.headers.get("x-api-token") or request.url.params.get("api_token")
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        return token == self.api_token or bearer in self.access_tokens

    def _limited(self) -> httpx.Response | None:
        # Per-token requests per 2-second window; x-ratelimit-limit/remaining/reset on every
        # answer, 429 when exceeded (pipedrive.readme.io/docs/core-api-concepts-rate-limiting).
        if self.requests_per_window is None:
            return None
        now = self.clock()
        while self._window and self._window[0] <= now - self.window_seconds:
            self._window.popleft()
        if len(self._window) >= self.requests_per_window:
            reset = max(1, round(self._window[0] + self.window_seconds - now))
            response = _error(429, "Request over limit")
            response.headers.update(
                {
                    "x-ratelimit-limit": str(self.requests_per_window),
                    "x-ratelimit-remaining": "0",
                    "x-ratelimit-reset": str(reset),
                    "retry-after": str(reset),
                }
            )
            return response
        self._window.append(now)
        return None

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if not self._authorised(request):
            response = _error(401, "unauthorized access")
        else:
            response = self._limited() or self._faulted(request)
        if self.requests_per_window is not None and response.status_code != 429:
            remaining = self.requests_per_window - len(self._window)
            response.headers.update(
                {
                    "x-ratelimit-limit": str(self.requests_per_window),
                    "x-ratelimit-remaining": str(max(0, remaining)),
                    "x-ratelimit-reset": str(round(self.window_seconds)),
                }
            )
        self.calls.append(Call(request.method, path, response.status_code))
        return response

    def _faulted(self, request: httpx.Request) -> httpx.Response:
        fault = next(
            (
                f
                for f in self._faults
                if f.times > 0 and f.method == request.method and f.path == request.url.path
            ),
            None,
        )
        if fault is not None:
            fault.times -= 1
            if not fault.after_write:
                return _error(fault.status or 503, "Service Unavailable")
        response = self._route(request)
        if fault is not None:
            if fault.status is None:
                raise httpx.ReadTimeout("the answer was lost", request=request)
            return _error(fault.status, "Internal Server Error")
        return response

    # -- routes ---------------------------------------------------------------------------------

    def _route(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.strip("/").split("/")
        try:
            body = json.loads(request.content) if request.content else {}
        except ValueError:
            return _error(400, "Invalid JSON")
        try:
            if parts[:2] == ["api", "v1"]:
                return self._v1(request.method, parts[2:], body, request.url.params)
            if parts[:2] == ["api", "v2"]:
                return self._v2(request.method, parts[2:], body, request.url.params)
        except FakeError as exc:
            return _error(exc.status, exc.message)
        return _error(404, "Unknown method .")

    def _v2(
        self, method: str, parts: list[str], body: Any, params: httpx.QueryParams
    ) -> httpx.Response:
        store = self.store
        kinds = {
            "persons": ("person", store.persons, store.save_person),
            "organizations": ("organization", store.organizations, store.save_organization),
            "activities": ("activity", store.activities, store.save_activity),
        }
        if parts[0] in ("personFields", "organizationFields") and len(parts) == 1:
            kind = "person" if parts[0] == "personFields" else "organization"
            if method == "POST":
                return _ok(store.add_field(kind, body))
            return self._page([store.field_item(f) for f in store.fields[kind]], params)
        if parts[0] not in kinds:
            return _error(404, "Unknown method .")
        kind, table, save = kinds[parts[0]]
        if len(parts) == 2 and parts[1] == "search" and kind != "activity":
            return self._search(kind, params)
        if len(parts) == 1 and method == "POST":
            return _ok(save(body), 201)  # "status: Created" (v1 reference, Add a person)
        if len(parts) == 1 and method == "GET":
            rows = list(table.values())
            if "ids" in params:  # "up to 100 entity ids"; unknown ones left out (getPersons)
                ids = [_int(i, "ids") for i in params["ids"].split(",") if i]
                if len(ids) > 100:
                    raise FakeError(400, "ids takes at most 100 ids")
                rows = [table[i] for i in ids if i in table]
            for name in ("person_id", "org_id"):
                if name in params:
                    rows = [r for r in rows if r.get(name) == _int(params[name], name)]
            if "done" in params:
                rows = [r for r in rows if r.get("done") == (params["done"] in ("1", "true"))]
            return self._page(rows, params)
        record_id = _int(parts[1], "id")
        if record_id not in table:
            return _error(404, f"{kind.capitalize()} not found")
        if method == "PATCH":
            return _ok(save(body, record_id))
        if method == "GET":
            return _ok(table[record_id])
        return _error(405, "Method not allowed")

    def _search(self, kind: str, params: httpx.QueryParams) -> httpx.Response:
        term = params.get("term", "")
        exact = params.get("exact_match") in ("true", "1")
        # "Minimum 2 characters (or 1 if using exact_match)" (searchPersons).
        if len(term) < (1 if exact else 2):
            raise FakeError(400, "term must be at least 2 characters long")
        fields = [f for f in params.get("fields", "").split(",") if f]
        items = self.store.search(kind, term, fields, exact)
        page = self._page(items, params)
        data = json.loads(page.content)
        return _ok({"items": data["data"]}, **data.get("additional_data", {}))

    def _page(self, rows: list[Any], params: Mapping[str, str]) -> httpx.Response:
        # Cursor pagination: limit default 100, at most 500; next_cursor in additional_data
        # (PersonsApi.getPersons).
        limit = int(params.get("limit", "100"))
        if not 1 <= limit <= 500:
            raise FakeError(400, "limit must be between 1 and 500")
        start = int(params.get("cursor") or 0)
        page = rows[start : start + limit]
        more = start + limit < len(rows)
        return _ok(page, next_cursor=str(start + limit) if more else None)

    def _v1(
        self, method: str, parts: list[str], body: Any, params: httpx.QueryParams
    ) -> httpx.Response:
        if parts == ["users"] and method == "GET":
            return _ok(self.store.users)
        if parts == ["notes"] and method == "POST":
            return _ok(self.store.add_note(body), 201)
        if parts == ["notes"] and method == "GET":
            rows = list(self.store.notes.values())
            for name in ("person_id", "org_id"):
                if name in params:
                    rows = [r for r in rows if r.get(name) == _int(params[name], name)]
            # start/limit pagination (v1 responses: additional_data.pagination).
            start, limit = int(params.get("start", "0")), int(params.get("limit", "100"))
            more = start + limit < len(rows)
            pagination = {"start": start, "limit": limit, "more_items_in_collection": more}
            if more:
                pagination["next_start"] = start + limit
            return _ok(rows[start : start + limit], pagination=pagination)
        return _error(404, "Unknown method .")
