"""A minimal JSON CRM API for the REST driver's behaviour tests (not a model of any product:
the product fakes are the Pipedrive fake and the real BottleCRM and Directus servers).

``/contacts`` and ``/companies``: ``POST`` (one record; 409 on a duplicate ``email``), ``PUT
/<kind>/by-external-id/<id>`` (an upsert: 201 made, 200 updated), ``POST
/<kind>/batch`` (all or nothing), ``GET`` with exact ``external_id``/``email``/``ids`` filters
and ``offset``/``limit`` pages, ``GET``/``PATCH /<kind>/<id>`` (404 for an unknown id). With
``honour_idempotency``, a create carrying an ``Idempotency-Key`` seen before answers the first
record again. :meth:`FakeCRM.fail` scripts faults: a status before or after the write, or a
lost answer (a read timeout after the write), for the next matching requests.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["FakeCRM", "manifest"]

TOKEN = "crm-token-0123456789abcdef"


@dataclass
class _Fault:
    method: str
    path: str
    status: int | None  # None: a read timeout
    after_write: bool
    times: int
    headers: dict[str, str] = field(default_factory=dict)


class FakeCRM:
    def __init__(self, *, honour_idempotency: bool = False) -> None:
        self.records: dict[str, dict[str, dict[str, Any]]] = {"contacts": {}, "companies": {}}
        self.requests: list[httpx.Request] = []
        self.honour_idempotency = honour_idempotency
        self._keys: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._faults: list[_Fault] = []

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def fail(
        self,
        method: str,
        path: str,
        status: int | None,
        *,
        after_write: bool = False,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._faults.append(_Fault(method, path, status, after_write, times, headers or {}))

    def calls(self, method: str | None = None, path: str | None = None) -> list[httpx.Request]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and (path is None or r.url.path == path)
        ]

    def _fault(self, request: httpx.Request) -> _Fault | None:
        for fault in self._faults:
            if (
                fault.times > 0
                and fault.method == request.method
                and fault.path == request.url.path
            ):
                fault.times -= 1
                return fault
        return None

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return httpx.Response(401, json={"error": "bad token"})
        fault = self._fault(request)
        if fault is not None and not fault.after_write:
            if fault.status is None:
                raise httpx.ConnectError("refused", request=request)
            return httpx.Response(fault.status, json={"error": "injected"}, headers=fault.headers)
        response = self._route(request)
        if fault is not None:
            if fault.status is None:
                raise httpx.ReadTimeout("the answer was lost", request=request)
            return httpx.Response(fault.status, text="<h1>Server Error (500)</h1>")
        return response

    def _route(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.strip("/").split("/")
        kind = parts[0]
        if kind not in self.records:
            return httpx.Response(404, json={"error": "no such route"})
        store = self.records[kind]
        body = json.loads(request.content) if request.content else None
        if request.method == "POST" and len(parts) == 2 and parts[1] == "batch":
            return self._batch(kind, body)
        if request.method == "POST" and len(parts) == 1:
            key = request.headers.get("idempotency-key")
            if self.honour_idempotency and key in self._keys:
                return httpx.Response(201, json={"data": store[self._keys[key]]})
            created = self._create(kind, body)
            if isinstance(created, httpx.Response):
                return created
            if key:
                self._keys[key] = created["id"]
            return httpx.Response(201, json={"data": created})
        if request.method == "GET" and len(parts) == 1:
            return self._list(store, request.url.params)
        if request.method == "PUT" and len(parts) == 3 and parts[1] == "by-external-id":
            held = [r for r in store.values() if r.get("external_id") == parts[2]]
            if held:
                held[0].update({k: v for k, v in body.items() if v is not None})
                return httpx.Response(200, json={"data": held[0]})
            created = self._create(kind, {**body, "external_id": parts[2]})
            if isinstance(created, httpx.Response):
                return created
            return httpx.Response(201, json={"data": created})
        record = store.get(parts[1]) if len(parts) == 2 else None
        if record is None:
            return httpx.Response(404, json={"error": f"no {kind} {parts[-1]}"})
        if request.method == "PATCH":
            for name, value in (body or {}).items():
                if value is None:
                    record.pop(name, None)
                else:
                    record[name] = value
        return httpx.Response(200, json={"data": record})

    def _create(self, kind: str, body: dict[str, Any]) -> dict[str, Any] | httpx.Response:
        email = str(body.get("email") or "").lower()
        if email and any(
            str(r.get("email") or "").lower() == email for r in self.records[kind].values()
        ):
            return httpx.Response(409, json={"error": "a record with this email exists"})
        record = {**{k: v for k, v in body.items() if v is not None}, "id": str(next(self._ids))}
        record["created_at"] = f"2026-01-01T00:00:{int(record['id']):02d}Z"
        self.records[kind][record["id"]] = record
        return record

    def _batch(self, kind: str, body: list[dict[str, Any]]) -> httpx.Response:
        emails = [str(b.get("email") or "").lower() for b in body]
        held = {str(r.get("email") or "").lower() for r in self.records[kind].values()}
        if any(e and (e in held or emails.count(e) > 1) for e in emails):
            return httpx.Response(400, json={"error": "unique email violated"})
        created = [self._create(kind, item) for item in body]
        return httpx.Response(200, json={"data": created})

    def _list(self, store: dict[str, dict[str, Any]], params: httpx.QueryParams) -> httpx.Response:
        rows = list(store.values())
        if "external_id" in params:
            rows = [r for r in rows if r.get("external_id") == params["external_id"]]
        if "external_ids" in params:
            wanted = set(params["external_ids"].split(","))
            rows = [r for r in rows if r.get("external_id") in wanted]
        if "email" in params:  # a "contains" filter, as many APIs have
            rows = [r for r in rows if params["email"].lower() in str(r.get("email", "")).lower()]
        if "ids" in params:
            wanted = set(params["ids"].split(","))
            rows = [r for r in rows if r["id"] in wanted]
        offset, limit = int(params.get("offset", 0)), int(params.get("limit", 10))
        return httpx.Response(200, json={"data": rows[offset : offset + limit], "total": len(rows)})


def resource(kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "fields": ["email", "first_name", "last_name", "name", "domain"],
        "unknown_fields": {"type": "object", "path": "extra", "merge": "client"},
        "external_id": "external_id",
        "record": {"created": "created_at"},
        "create": {
            "method": "POST",
            "path": f"/{kind}",
            "body": "=fields",
            "response": {"record": "data"},
        },
        "get": {"method": "GET", "path": f"/{kind}/{{id}}", "response": {"record": "data"}},
        "update": {"method": "PATCH", "path": f"/{kind}/{{id}}", "body": "=fields"},
        "find": {
            "externalId": [
                {
                    "type": "filter",
                    "request": {"path": f"/{kind}", "query": {"external_id": "=value"}},
                    "response": {"items": "data"},
                }
            ],
            "email": [
                {
                    "type": "filter",
                    "request": {"path": f"/{kind}", "query": {"email": "=value", "limit": 100}},
                    "response": {"items": "data"},
                }
            ],
        },
        **extra,
    }


def manifest(**extra: Any) -> dict[str, Any]:
    """Options for the driver against :class:`FakeCRM`; ``extra`` overrides top-level keys."""
    options: dict[str, Any] = {
        "base_url": "https://crm.example.test",
        "auth": {"type": "bearer", "token": TOKEN},
        "errors": {"rules": [{"status": 409, "class": "conflict"}]},
        "contacts": resource("contacts"),
        "companies": resource("companies"),
    }
    options.update(extra)
    return options
