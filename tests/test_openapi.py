"""The OpenAPI document: matches the app's route table both ways, and the contract's shapes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.routing import BaseRoute, Mount, Route

from adapter.app import create_app
from adapter.http.openapi import OPERATIONS, build_openapi
from backends.memory import MemoryBackend
from tests.conftest import API_KEY, Serve, make_settings

_PARAM = re.compile(r"\{[^}]*\}")


def _served(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    for route in routes:
        if isinstance(route, Mount):
            yield from _served(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            for method in route.methods or ():
                if method != "HEAD":  # Starlette adds HEAD to every GET route
                    yield method, _PARAM.sub("{}", prefix + route.path)


def _documented(doc: dict[str, Any], prefix: str = "") -> set[tuple[str, str]]:
    return {
        (method.upper(), _PARAM.sub("{}", prefix + path))
        for path, item in doc["paths"].items()
        for method in item
    }


@pytest.mark.parametrize("root_path", ["", "/enginy"])
def test_every_route_documented_and_every_documented_route_served(root_path: str) -> None:
    settings = make_settings(server={"root_path": root_path})
    app = create_app(settings, MemoryBackend())
    served = set(_served(app.router.routes))
    documented = _documented(build_openapi(settings), root_path)
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"
    # The contract's 15 routes are all there (the /ui dashboard is HTML, not part of it).
    assert len([op for op in OPERATIONS if op.tag != "operations"]) == 15


def test_metrics_on_a_separate_listener_are_not_documented_as_served() -> None:
    settings = make_settings(observability={"metrics": {"listen": "127.0.0.1:9109"}})
    app = create_app(settings, MemoryBackend())
    served = set(_served(app.router.routes))
    assert ("GET", "/metrics") not in served
    # The document describes the default layout; the route check above covers it.
    assert ("GET", "/metrics") in _documented(build_openapi(settings))


def _resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].removeprefix("#/components/schemas/")
        node = doc["components"]["schemas"][name]
    return node


def test_refs_resolve_and_document_is_openapi_3_1() -> None:
    doc = build_openapi(make_settings(auth={"header": "X-Enginy-Key"}))
    assert doc["openapi"] == "3.1.0"
    assert doc["components"]["securitySchemes"]["apiKey"] == {
        "type": "apiKey", "in": "header", "name": "X-Enginy-Key"}
    text = repr(doc)
    for ref in re.findall(r"'\$ref': '([^']+)'", text):
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"], ref
    for item in doc["paths"].values():
        for op in item.values():
            assert "401" in op["responses"]
            assert len({o["operationId"] for o in [op]}) == 1


def _body(doc: dict[str, Any], path: str, method: str, status: str = "200") -> dict[str, Any]:
    op = doc["paths"][path][method]
    if status == "request":
        return op["requestBody"]["content"]["application/json"]["schema"]  # type: ignore[no-any-return]
    return op["responses"][status]["content"]["application/json"]["schema"]  # type: ignore[no-any-return]


def test_shapes_match_the_contract() -> None:
    """Hand-checked against enginy-custom-crm.md: names, casing, bare arrays."""
    doc = build_openapi()
    create = _resolve(doc, _body(doc, "/contacts", "post", "request"))
    item = _resolve(doc, create["properties"]["contacts"]["items"])
    assert item["required"] == ["externalId"] and item.get("additionalProperties") is True
    result = _resolve(doc, _resolve(doc, _body(doc, "/contacts", "post"))["properties"]
                      ["results"]["items"])
    assert set(result["properties"]) == {"externalId", "crmId"}
    update = _resolve(doc, _body(doc, "/companies", "put", "request"))
    assert _resolve(doc, update["properties"]["companies"]["items"])["required"] == ["crmId"]
    upd = _resolve(doc, _resolve(doc, _body(doc, "/companies", "put"))["properties"]["results"]
                   ["items"])
    assert {"crmId", "success", "error", "message"} <= set(upd["properties"])
    sync = _resolve(doc, _resolve(doc, _body(doc, "/contacts/sync", "post"))["properties"]
                    ["results"]["items"])
    assert {"externalId", "crmId", "properties"} <= set(sync["properties"])
    assoc = _resolve(doc, _resolve(doc, _body(doc, "/associations", "post", "request"))
                     ["properties"]["associations"]["items"])
    assert set(assoc["required"]) == {"contactCRMId", "companyCRMId"}
    assert set(_resolve(doc, _body(doc, "/associations", "post"))["properties"]) >= {
        "success", "created"}
    activity = _resolve(doc, _body(doc, "/activities", "post", "request"))
    assert activity["required"] == ["type"]
    assert {"direction", "subject", "body", "ownerId", "occurredAt", "contactId", "companyId",
            "metadata"} <= set(activity["properties"])
    # The activity, or (outbox on) the queued activity: both carry an id.
    answers = _body(doc, "/activities", "post")["anyOf"]
    assert all("id" in _resolve(doc, answer)["required"] for answer in answers)
    task_in = _resolve(doc, _body(doc, "/tasks", "post", "request"))
    assert task_in["required"] == ["subject"]
    assert {"dueDate", "ownerId", "contactId", "companyId"} <= set(task_in["properties"])
    task_out = _resolve(doc, _body(doc, "/tasks/{taskId}", "get"))
    assert {"id", "subject", "completed", "completedAt", "createdAt", "updatedAt"} <= set(
        task_out["properties"])
    # Bare arrays (A.1): both /tasks/batch methods and /users.
    for path, method in (("/tasks/batch", "post"), ("/tasks/batch", "patch"),
                         ("/users", "get")):
        assert _body(doc, path, method)["type"] == "array", (path, method)
    assert _resolve(doc, _body(doc, "/tasks/batch", "post", "request"))["required"] == ["ids"]
    assert set(_resolve(doc, _body(doc, "/tasks/batch", "patch", "request"))["required"]) == {
        "ids", "completed"}
    assert "404" in doc["paths"]["/tasks/{taskId}"]["patch"]["responses"]
    assert "501" in doc["paths"]["/users"]["get"]["responses"]
    assert "503" in doc["paths"]["/health"]["get"]["responses"]
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "message"]


@pytest.mark.anyio
async def test_openapi_json_is_served_behind_the_key(serve: Serve) -> None:
    async with serve(make_settings(server={"root_path": "/enginy"})) as c:
        r = await c.get("/enginy/openapi.json")
        assert r.status_code == 200
        doc = r.json()
        assert doc["servers"] == [{"url": "/enginy"}]
        assert "/contacts/sync" in doc["paths"]
        assert API_KEY not in r.text
        denied = await c.get("/enginy/openapi.json", headers={"X-API-Key": "wrong"})
        assert denied.status_code == 401 and denied.json()["error"] == "unauthorized"


def _props(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return _resolve(doc, {"$ref": f"#/components/schemas/{name}"})["properties"]


def _types(node: dict[str, Any]) -> set[str]:
    options = node.get("anyOf", [node])
    return {o["type"] for o in options if "type" in o}


def test_ids_are_documented_as_string_or_integer_as_the_server_reads_them() -> None:
    doc = build_openapi()
    for model, field in [
        ("RecordIn", "externalId"), ("RecordUpdateIn", "crmId"),
        ("AssociationIn", "contactCRMId"), ("AssociationIn", "companyCRMId"),
        ("ActivityIn", "contactId"), ("ActivityIn", "companyId"), ("ActivityIn", "ownerId"),
        ("TaskIn", "contactId"), ("TaskPatch", "ownerId"),
    ]:
        assert {"string", "integer"} <= _types(_props(doc, model)[field]), (model, field)
    ids = _props(doc, "TaskIds")["ids"]["items"]
    assert _types(ids) == {"string", "integer"}
    # Booleans are JSON booleans and datetimes ISO strings: nothing else is in the schema.
    assert _types(_props(doc, "TaskBatchPatch")["completed"]) == {"boolean"}
    assert _types(_props(doc, "TaskIn")["dueDate"]) == {"string", "null"}


@pytest.mark.parametrize("blank", [" ", "\t\n", "\x85", " \u2028\u3000", "\xa0"])
def test_blank_type_pattern_in_schema_matches_the_server(blank: str) -> None:
    # The published pattern is the server's own check: a JSON Schema validator (ECMAScript or
    # Python regex) must find no non-space character in what the server calls blank.
    doc = build_openapi()
    for model, field in [("ActivityIn", "type"), ("TaskIn", "subject")]:
        pattern = _props(doc, model)[field]["pattern"]
        assert re.search(pattern, blank) is None
        assert re.search(pattern, f"{blank}x{blank}") is not None
        assert "\\S" not in pattern


@pytest.mark.anyio
@pytest.mark.parametrize("blank", [" ", "\x85", "\u3000", "\x1c"])
async def test_blank_type_is_400_exactly_when_the_schema_says_so(
    serve: Serve, blank: str
) -> None:
    pattern = _props(build_openapi(), "ActivityIn")["type"]["pattern"]
    async with serve() as client:
        response = await client.post("/activities", json={"type": blank})
    schema_ok = re.search(pattern, blank) is not None
    assert (response.status_code == 200) is schema_ok, response.text
