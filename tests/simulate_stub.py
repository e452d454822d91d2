"""A small in-memory Starlette server of Enginy's Custom CRM contract, for ``test_simulate.py``.

It keeps the contract, Part A included, unless told to break one behaviour by name
(``Stub("users_object")``): the negative fixture showing that each simulate check fails when the
behaviour it names is broken.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

__all__ = ["ENTITIES", "KEY", "READ_POSTS", "Stub"]

KEY = "stub-key-5e1f9c2a77"

# --------------------------------------------------------------------------------------------
# The stub: the contract in ~150 lines, every behaviour of it breakable by name
# --------------------------------------------------------------------------------------------

ENTITIES = ("contacts", "companies")
READ_POSTS = {"/contacts/sync", "/companies/sync", "/tasks/batch"}


def _norm_email(value: object) -> str | None:
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


def _norm_domain(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    host = value.strip().lower().split("://", 1)[-1].split("/", 1)[0]
    return host.removeprefix("www.")


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **extra}, status)


class Stub:
    """An in-memory implementation of the Custom CRM contract (Part A included)."""

    def __init__(self, *breaks: str, users: int | None = 2) -> None:
        self.breaks = set(breaks)
        self.records: dict[str, dict[str, dict[str, Any]]] = {e: {} for e in ENTITIES}
        self.by_ext: dict[str, dict[str, str]] = {e: {} for e in ENTITIES}
        self.associations: set[tuple[str, str]] = set()
        self.activities: dict[str, dict[str, Any]] = {}
        self.activity_keys: dict[str, str] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.batch_sizes: list[int] = []
        self.users = users
        self.seen: list[tuple[str, str]] = []
        self.limited = False

    def written(self) -> int:
        return (
            sum(map(len, self.records.values()))
            + len(self.associations)
            + len(self.activities)
            + len(self.tasks)
        )

    # -- plumbing ---------------------------------------------------------------------------

    def app(self, prefix: str = "") -> Starlette:
        r = Route
        routes = [
            r("/health", self.health, methods=["GET"]),
            r("/users", self.list_users, methods=["GET"]),
            r("/associations", self.associate, methods=["POST"]),
            r("/activities", self.activity, methods=["POST"]),
            r("/tasks", self.create_task, methods=["POST"]),
            r("/tasks/batch", self.batch_tasks, methods=["POST", "PATCH"]),
            r("/tasks/{id}", self.one_task, methods=["GET", "PATCH"]),
        ]
        for entity in ENTITIES:
            routes += [
                r(f"/{entity}", self.records_endpoint(entity), methods=["POST", "PUT"]),
                r(f"/{entity}/sync", self.sync_endpoint(entity), methods=["POST"]),
            ]

        async def auth(request: Request, call_next: Any) -> Response:
            self.seen.append((request.method, request.url.path.removeprefix(prefix)))
            exempt = "no_auth" in self.breaks or (
                "health_no_auth" in self.breaks and request.url.path.endswith("/health")
            )
            if not exempt and request.headers.get("x-api-key") != KEY:
                got = request.headers.get("x-api-key", "")
                message = f"bad key {got}" if "echo_key" in self.breaks else "missing or wrong key"
                return _error(401, "unauthorized", message)
            if "rate_limit_once" in self.breaks and request.method == "POST" and not self.limited:
                self.limited = True  # the first write is rate-limited, with a short Retry-After
                return JSONResponse(
                    {"error": "rate_limited", "message": "slow down"},
                    429,
                    headers={"Retry-After": "0"},
                )
            response: Response = await call_next(request)
            return response

        return Starlette(
            routes=[Mount(prefix, routes=routes)] if prefix else routes,
            middleware=[Middleware(BaseHTTPMiddleware, dispatch=auth)],
        )

    async def body(self, request: Request) -> Any:
        if "json" not in request.headers.get("content-type", ""):
            raise _Reply(_error(415, "unsupported_media_type", "send JSON"))
        try:
            return json.loads(await request.body())
        except ValueError:
            if "malformed_500" in self.breaks:
                raise _Reply(JSONResponse({"error": "boom"}, 500)) from None
            raise _Reply(_error(400, "invalid_json", "body is not JSON")) from None

    def error_body(self, status: int, code: str, message: str) -> JSONResponse:
        if "plain_errors" in self.breaks:
            return JSONResponse({"error": message}, status)  # the reference implementation's
        return _error(status, code, message)

    # -- routes -----------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        if "echo_key" in self.breaks:
            return JSONResponse({"status": "ok", "debug": dict(request.headers)})
        return JSONResponse({"status": "ok"})

    async def list_users(self, request: Request) -> Response:
        if "users_plain_404" in self.breaks:
            return Response("Not Found", 404, media_type="text/plain")
        if self.users is None:
            return _error(501, "not_implemented", "no users")
        if self.users < 0:
            return _error(500, "boom", "users exploded")
        users = [{"id": f"user-{i}", "name": f"User {i}"} for i in range(self.users)]
        return JSONResponse({"users": users} if "users_object" in self.breaks else users)

    def records_endpoint(self, entity: str) -> Any:
        async def handler(request: Request) -> Response:
            try:
                items = (await self.body(request))[entity]
            except _Reply as reply:
                return reply.response
            if request.method == "PUT":
                return self.update(entity, items)
            return self.create(entity, items)

        return handler

    def create(self, entity: str, items: list[dict[str, Any]]) -> Response:
        if any(not isinstance(i.get("externalId"), str) for i in items):
            return self.error_body(400, "invalid_request", "externalId is required")
        if entity == "contacts":
            self.batch_sizes.append(len(items))
        results, errors = [], []
        for item in items:
            ext = item["externalId"]
            if "@" not in str(item.get("email", "@")) and "rejects_bad_email" in self.breaks:
                errors.append({"externalId": ext, "error": "invalid", "message": "bad email"})
                continue
            crm = self.by_ext[entity].get(ext)
            if crm is None or "create_not_idempotent" in self.breaks:
                crm = f"{entity[:2]}-{uuid.uuid4().hex[:10]}"
                self.records[entity][crm] = dict(item)
                self.by_ext[entity][ext] = crm
            id_key = "id" if "crm_id_renamed" in self.breaks else "crmId"
            results.append({"externalId": ext, id_key: crm})
        return JSONResponse({"results": results, **({"errors": errors} if errors else {})})

    def update(self, entity: str, items: list[dict[str, Any]]) -> Response:
        results = []
        for item in items:
            fields = {k: v for k, v in item.items() if k != "crmId" and v is not None}
            stored = self.records[entity].get(item.get("crmId", ""))
            if stored is None:
                results.append({"crmId": item.get("crmId"), "success": False, "error": "not_found"})
                continue
            if "put_overwrites" in self.breaks:
                ext = stored["externalId"]
                stored.clear()
                stored["externalId"] = ext
            stored.update(fields)
            ok = "update_no_success" not in self.breaks
            results.append({"crmId": item["crmId"], "success": ok})
        return JSONResponse({"results": results})

    def sync_endpoint(self, entity: str) -> Any:
        key, norm = ("email", _norm_email) if entity == "contacts" else ("domain", _norm_domain)

        async def handler(request: Request) -> Response:
            try:
                items = (await self.body(request))[entity]
            except _Reply as reply:
                return reply.response
            results = []
            for item in items:
                crm = self.by_ext[entity].get(item["externalId"])
                if crm is None and "externalid_only" not in self.breaks:
                    wanted = norm(item.get(key))
                    crm = next(
                        (
                            c
                            for c, r in self.records[entity].items()
                            if wanted and norm(r.get(key)) == wanted
                        ),
                        None,
                    )
                if crm is None and "sync_matches_all" in self.breaks:
                    crm = "made-up"
                if crm is not None:
                    props = dict(self.records[entity].get(crm, {}))
                    results.append(
                        {"externalId": item["externalId"], "crmId": crm, "properties": props}
                    )
            return JSONResponse({"results": results})

        return handler

    async def associate(self, request: Request) -> Response:
        try:
            pairs = (await self.body(request))["associations"]
        except _Reply as reply:
            return reply.response
        for p in pairs:
            self.associations.add((p["contactCRMId"], p["companyCRMId"]))
        if "associations_no_success" in self.breaks:
            return JSONResponse({"created": len(pairs)})
        return JSONResponse({"success": True, "created": len(pairs)})

    async def activity(self, request: Request) -> Response:
        try:
            body = await self.body(request)
        except _Reply as reply:
            return reply.response
        if not body.get("type"):
            return self.error_body(400, "invalid_request", "type is required")
        message = (body.get("metadata") or {}).get("messageId")
        key = f"{body['type']}|{body.get('direction')}|{message}"
        if message and key in self.activity_keys and "activity_not_idempotent" not in self.breaks:
            found = self.activities[self.activity_keys[key]]
        else:
            found = {**body, "id": f"act-{uuid.uuid4().hex[:10]}"}
            self.activities[found["id"]] = found
            self.activity_keys[key] = found["id"]
        if "activity_no_id" in self.breaks:
            return JSONResponse({k: v for k, v in found.items() if k != "id"})
        return JSONResponse(found)

    async def create_task(self, request: Request) -> Response:
        try:
            body = await self.body(request)
        except _Reply as reply:
            return reply.response
        if not body.get("subject"):
            return self.error_body(400, "invalid_request", "subject is required")
        task = {
            **body,
            "id": f"task-{uuid.uuid4().hex[:10]}",
            "completed": False,
            "completedAt": None,
        }
        self.tasks[task["id"]] = task
        return JSONResponse(task)

    def complete(self, task: dict[str, Any], completed: bool) -> None:
        if "patch_ignores_completed" in self.breaks:
            return
        task["completed"] = completed
        task["completedAt"] = "2026-01-01T00:00:00Z" if completed else None

    async def one_task(self, request: Request) -> Response:
        task = self.tasks.get(request.path_params["id"])
        if task is None:
            status = 500 if "task_404_as_500" in self.breaks else 404
            return self.error_body(status, "not_found", "No task exists with that ID")
        if request.method == "PATCH":
            try:
                body = await self.body(request)
            except _Reply as reply:
                return reply.response
            if "completed" in body:
                self.complete(task, bool(body["completed"]))
        return JSONResponse(task)

    async def batch_tasks(self, request: Request) -> Response:
        try:
            body = await self.body(request)
        except _Reply as reply:
            return reply.response
        found = [self.tasks[i] for i in body["ids"] if i in self.tasks]
        if request.method == "PATCH":
            for task in found:
                self.complete(task, bool(body.get("completed")))
        return JSONResponse({"tasks": found} if "tasks_batch_wrapped" in self.breaks else found)


class _Reply(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response
