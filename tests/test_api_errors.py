"""A.3: one error shape, 4xx for bad input (never 5xx), driver errors mapped in one place."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest

from backends.base import (
    AuthFailed,
    BackendError,
    Conflict,
    Entity,
    InvalidRecord,
    ItemResult,
    MatchKey,
    NewRecord,
    NotFound,
    RateLimited,
    StoredRecord,
    Unavailable,
    Unsupported,
)
from backends.memory import MemoryBackend
from tests.conftest import error_body, make_settings

pytestmark = pytest.mark.anyio

BODY_ROUTES = [
    ("POST", "/contacts"),
    ("POST", "/contacts/sync"),
    ("PUT", "/contacts"),
    ("POST", "/companies"),
    ("POST", "/companies/sync"),
    ("PUT", "/companies"),
    ("POST", "/associations"),
    ("POST", "/activities"),
    ("POST", "/tasks"),
    ("PATCH", "/tasks/some-task"),
    ("POST", "/tasks/batch"),
    ("PATCH", "/tasks/batch"),
]
ROUTE_IDS = [f"{m} {p}" for m, p in BODY_ROUTES]


class RaisingBackend(MemoryBackend):
    """``find_records`` raises the given exception (reached by every sync)."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def find_records(
        self, entity: Entity, key: MatchKey, values: Sequence[str]
    ) -> dict[str, StoredRecord]:
        raise self.error


def assert_error_shape(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["message"], str) and body["message"]
    if code is not None:
        assert body["error"] == code


# -- malformed input ----------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES, ids=ROUTE_IDS)
async def test_a3_malformed_json_is_400(client: httpx.AsyncClient, method: str, path: str) -> None:
    response = await client.request(
        method, path, content=b'{"contacts": [', headers={"content-type": "application/json"}
    )
    assert_error_shape(response, 400, "invalid_json")


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize(
    "body", [b"[]", b"null", b"42", b'"text"', b"{}", b'{"contacts": "nope"}', b""]
)
async def test_a3_wrong_shapes_are_400_on_every_route(
    client: httpx.AsyncClient, method: str, path: str, body: bytes
) -> None:
    response = await client.request(
        method, path, content=body, headers={"content-type": "application/json"}
    )
    if path == "/tasks/some-task" and body.startswith(b"{"):
        # Any object is a valid (partial) task update; this task does not exist.
        assert_error_shape(response, 404, "task_not_found")
    else:
        assert_error_shape(response, 400)


async def test_a3_missing_external_id_names_the_item(client: httpx.AsyncClient) -> None:
    contacts: list[dict[str, Any]] = [{"externalId": f"l{i}"} for i in range(5)]
    del contacts[3]["externalId"]
    contacts[3]["email"] = "a@b.c"
    response = await client.post("/contacts", json={"contacts": contacts})
    assert_error_shape(response, 400, "invalid_request")
    assert response.json()["message"] == "contacts[3].externalId: field required"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"contacts": [{"externalId": ["a"]}]}, "contacts[0].externalId"),
        ({"contacts": [{"externalId": None}]}, "contacts[0].externalId"),
        ({"contacts": [{"externalId": ""}]}, "contacts[0].externalId"),
        ({"contacts": {"externalId": "a"}}, "contacts"),
        ({"contacts": ["lead-1"]}, "contacts[0]"),
    ],
)
async def test_a3_wrong_types_name_the_field(
    client: httpx.AsyncClient, body: Any, field: str
) -> None:
    response = await client.post("/contacts", json=body)
    assert_error_shape(response, 400, "invalid_request")
    assert response.json()["message"].startswith(f"{field}: ")


async def test_a3_wrong_type_in_task_fields(client: httpx.AsyncClient) -> None:
    response = await client.post("/tasks", json={"subject": "x", "dueDate": "next tuesday"})
    assert_error_shape(response, 400)
    assert response.json()["message"].startswith("dueDate: ")


async def test_a3_error_message_does_not_echo_input_values(client: httpx.AsyncClient) -> None:
    response = await client.post("/tasks", json={"subject": "x", "dueDate": "zz-secret-zz"})
    assert "zz-secret-zz" not in response.text


# -- size and content type ---------------------------------------------------------------------


async def test_a3_oversize_body_is_413_by_content_length(serve: Any, settings_for: Any) -> None:
    async with serve(settings_for(server={"max_body_bytes": 1000})) as client:
        contacts = [{"externalId": f"lead-{i}", "email": f"p{i}@acme.com"} for i in range(100)]
        response = await client.post("/contacts", json={"contacts": contacts})
    assert_error_shape(response, 413, "payload_too_large")


async def test_a3_oversize_streamed_body_is_413(serve: Any, settings_for: Any) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"contacts": ['
        for i in range(200):
            yield b'{"externalId": "lead-%d"},' % i
        yield b'{"externalId": "last"}]}'

    async with serve(settings_for(server={"max_body_bytes": 1000})) as client:
        # No Content-Length: the limit must hold while reading the stream.
        response = await client.post(
            "/contacts", content=chunks(), headers={"content-type": "application/json"}
        )
    assert "content-length" not in response.request.headers
    assert_error_shape(response, 413, "payload_too_large")


async def test_a3_body_at_the_limit_is_accepted(serve: Any, settings_for: Any) -> None:
    body = b'{"contacts": [{"externalId": "x"}]}'
    async with serve(settings_for(server={"max_body_bytes": len(body)})) as client:
        response = await client.post(
            "/contacts", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_a3_non_json_content_type_is_415(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await client.post("/contacts", content=b'{"contacts": []}', headers=headers)
    assert_error_shape(response, 415, "unsupported_media_type")


async def test_a3_json_content_type_with_charset_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/contacts",
        content=b'{"contacts": []}',
        headers={"content-type": "Application/JSON; charset=utf-8"},
    )
    assert response.status_code == 200
    assert response.json() == {"results": []}


# -- routing ------------------------------------------------------------------------------------


async def test_a3_unknown_route_is_404_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/contacts/batch/whatever")
    assert_error_shape(response, 404, "not_found")


async def test_a3_wrong_method_is_405_json(client: httpx.AsyncClient) -> None:
    response = await client.delete("/contacts")
    assert_error_shape(response, 405, "method_not_allowed")
    assert "POST" in response.headers["allow"]


async def test_a10_unknown_task_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/tasks/task-xyz")
    assert response.status_code == 404
    assert error_body(response) == {
        "error": "task_not_found",
        "message": "No task exists with ID: task-xyz",
    }


# -- driver errors, one mapping -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (NotFound("gone"), 404, "not_found"),
        (Conflict("taken"), 409, "conflict"),
        (InvalidRecord("too long"), 400, "invalid_record"),
        (Unsupported("no"), 501, "not_implemented"),
        (AuthFailed("token revoked"), 503, "backend_auth_failed"),
        (Unavailable("db down"), 503, "backend_unavailable"),
        (RateLimited("429", retry_after=3), 503, "backend_rate_limited"),
        (BackendError("odd"), 502, "backend_error"),
    ],
)
async def test_a3_backend_errors_map_to_status_codes(
    serve: Any, error: BackendError, status: int, code: str
) -> None:
    async with serve(backend=RaisingBackend(error)) as client:
        response = await client.post("/contacts/sync", json={"contacts": [{"externalId": "a"}]})
    assert response.status_code == status
    body = error_body(response)
    assert body["error"] == code
    if status < 502:
        # The caller's mistake, or what is not implemented, in the driver's words.
        assert body["message"] == error.message
    else:
        # The backend's failure: a fixed sentence of the error's class, never the driver's
        # words (which may name a host, user, database or file).
        assert error.message not in body["message"] and "CRM backend" in body["message"]


async def test_5xx_bodies_never_name_the_infrastructure_and_the_log_keeps_it(
    serve: Any, access_lines: list[logging.LogRecord]
) -> None:
    """11.3: the database's host, user, port, name and file stay out of every error body; the
    access line of that request id keeps them."""
    detail = (
        "create contacts: database unreachable: connection to postgresql://crm@db.internal:5432"
        "/crmprod failed (password s3cr3t-pw); see /var/lib/enginy/adapter.db"
    )
    # The options name where the backend lives and its password: bodies never carry either;
    # the log line keeps the location (the operator's clue), never the password.
    options = {"url": "postgresql://crm@db.internal:5432/crmprod", "password": "s3cr3t-pw"}
    settings = make_settings(backend={"driver": "memory", "options": options})
    for error in (Unavailable(detail), AuthFailed(detail), BackendError(detail)):
        async with serve(settings, RaisingBackend(error)) as client:
            response = await client.post(
                "/contacts/sync",
                json={"contacts": [{"externalId": "a"}]},
                headers={"X-Request-ID": "req-11-3"},
            )
        assert response.status_code >= 500
        for leak in ("db.internal", "5432", "crmprod", "crm@", "/var/lib", "adapter.db", "s3cr3t"):
            assert leak not in response.text
        assert response.json()["requestId"] == "req-11-3"
        line = access_lines[-1]
        assert line.access["request_id"] == "req-11-3"  # type: ignore[attr-defined]
        assert "db.internal:5432" in line.access["detail"]  # type: ignore[attr-defined]
        assert "s3cr3t" not in line.access["detail"]  # type: ignore[attr-defined]


async def test_4xx_and_per_record_messages_do_not_name_where_the_backend_lives(
    serve: Any,
) -> None:
    """A driver's per-record message may quote the database (MariaDB names it in a failed
    constraint): the answer keeps the message, without the location from the options."""

    class Quoting(MemoryBackend):
        async def create_records(self, entity: Entity, records: Sequence[NewRecord]) -> Any:
            message = "CONSTRAINT `crm_contacts.extra` failed for `crmprod`.`crm_contacts`"
            return [ItemResult(error=InvalidRecord(message)) for _ in records]

        async def find_records(
            self, entity: Entity, key: MatchKey, values: Sequence[str]
        ) -> dict[str, StoredRecord]:
            raise NotFound("no table crmprod.crm_contacts on db.internal")

    options = {"url": "mysql://crm@db.internal:3306/crmprod"}
    settings = make_settings(backend={"driver": "memory", "options": options})
    async with serve(settings, Quoting()) as client:
        created = await client.post("/contacts", json={"contacts": [{"externalId": "a"}]})
        synced = await client.post("/contacts/sync", json={"contacts": [{"externalId": "a"}]})
    assert created.status_code == 400
    assert error_body(created)["errors"][0]["message"] == (
        "CONSTRAINT `crm_contacts.extra` failed for `***`.`crm_contacts`"
    )
    assert synced.status_code == 404
    assert "crmprod" not in synced.text and "db.internal" not in synced.text


async def test_a3_unexpected_exception_is_500_without_detail(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    boom = RuntimeError("SELECT * FROM contacts WHERE password='hunter2' at /srv/app/x.py")
    async with serve(backend=RaisingBackend(boom), raise_app_exceptions=False) as client:
        response = await client.post("/contacts/sync", json={"contacts": [{"externalId": "a"}]})
    assert response.status_code == 500
    body = error_body(response)
    assert body["error"] == "internal_error"
    assert set(body) == {"error", "message"}
    for leak in ("SELECT", "hunter2", "/srv/app", "Traceback", "RuntimeError"):
        assert leak not in response.text
    # The detail is in the server log.
    assert "hunter2" in caplog.text


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize(
    "body",
    [
        {"contacts": [{"externalId": {"x": 1}}]},
        {"companies": [None]},
        {"associations": [{"contactCRMId": 1.5}]},
        {"type": ["EMAIL"]},
        {"subject": {"x": 1}},
        {"ids": "task-1"},
        {"ids": [None], "completed": "maybe"},
        {"completed": "maybe", "completedAt": "yesterday"},
        {"contacts": [{"crmId": ["a"]}]},
    ],
)
async def test_a3_garbage_never_gives_5xx(
    client: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    response = await client.request(method, path, json=body)
    assert 400 <= response.status_code < 500, response.text
    assert set(response.json()) >= {"error", "message"}


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/tasks", {"subject": "x", "dueDate": "0001-01-01T00:00:00+10:00"}, "dueDate"),
        (
            "POST",
            "/activities",
            {"type": "EMAIL", "occurredAt": "9999-12-31T23:59:59-10:00"},
            "occurredAt",
        ),
        (
            "PATCH",
            "/tasks/batch",
            {"ids": ["a"], "completed": True, "completedAt": "0001-01-01T00:00:00+01:00"},
            "completedAt",
        ),
    ],
)
async def test_a3_datetime_without_a_utc_equivalent_is_400(
    client: httpx.AsyncClient, method: str, path: str, body: Any, field: str
) -> None:
    response = await client.request(method, path, json=body)
    assert_error_shape(response, 400, "invalid_request")
    assert response.json()["message"].startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/contacts", {"POST", "PUT"}),
        ("GET", "/contacts", {"POST", "PUT"}),
        ("DELETE", "/companies", {"POST", "PUT"}),
        ("GET", "/contacts/sync", {"POST"}),
        ("PUT", "/tasks", {"POST"}),
        ("GET", "/tasks/batch", {"POST", "PATCH"}),
        ("HEAD", "/tasks/batch", {"POST", "PATCH"}),
        ("PUT", "/tasks/batch", {"POST", "PATCH"}),
        ("DELETE", "/tasks/batch", {"POST", "PATCH"}),
        ("DELETE", "/tasks/task-1", {"GET", "HEAD", "PATCH"}),
        ("POST", "/tasks/task-1", {"GET", "HEAD", "PATCH"}),
        ("POST", "/health", {"GET", "HEAD"}),
        ("DELETE", "/users", {"GET", "HEAD"}),
        ("GET", "/activities", {"POST"}),
    ],
)
async def test_a3_wrong_method_is_405_with_every_allowed_method(
    client: httpx.AsyncClient, method: str, path: str, allowed: set[str]
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 405
    if method != "HEAD":
        assert_error_shape(response, 405, "method_not_allowed")
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed


async def test_a3_batch_is_never_a_task_id_under_a_root_path(serve: Any) -> None:
    from tests.conftest import make_settings

    async with serve(make_settings(server={"root_path": "/enginy"})) as c:
        response = await c.get("/enginy/tasks/batch")
        assert_error_shape(response, 405, "method_not_allowed")
        assert {m.strip() for m in response.headers["allow"].split(",")} == {"POST", "PATCH"}
        # A real id still routes to the task (404 for an unknown one).
        assert (await c.get("/enginy/tasks/batchx")).status_code == 404


# -- strict types (A.3: a wrong type is a 400, not a guess) --------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/tasks", {"subject": "s", "dueDate": 5}, "dueDate"),
        ("/tasks", {"subject": "s", "dueDate": 1.5e9}, "dueDate"),
        ("/activities", {"type": "EMAIL", "occurredAt": 0}, "occurredAt"),
        ("/tasks/batch", {"ids": ["a"], "completed": "yes"}, "completed"),
        ("/tasks/batch", {"ids": ["a"], "completed": 1}, "completed"),
        ("/tasks/batch", {"ids": ["a"], "completed": True, "completedAt": 5}, "completedAt"),
        ("/contacts", {"contacts": [{"externalId": 1.5}]}, "contacts[0].externalId"),
        ("/contacts", {"contacts": [{"externalId": True}]}, "contacts[0].externalId"),
        ("/tasks/batch", {"ids": [1.0]}, "ids[0]"),
        ("/activities", {"type": "EMAIL", "contactId": 5.5}, "contactId"),
        ("/associations", {"associations": [{"contactCRMId": False, "companyCRMId": "c"}]},
         "associations[0].contactCRMId"),
    ],
)
async def test_a3_wrong_scalar_types_are_400(
    client: httpx.AsyncClient, path: str, body: Any, field: str
) -> None:
    method = "PATCH" if "completed" in body else "POST"
    response = await client.request(method, path, json=body)
    assert_error_shape(response, 400, "invalid_request")
    message = response.json()["message"]
    assert message.startswith(f"{field}: "), message
    assert "function-after" not in message and "constrained-str" not in message


async def test_a3_patch_task_completed_must_be_a_boolean(client: httpx.AsyncClient) -> None:
    task = (await client.post("/tasks", json={"subject": "s"})).json()
    response = await client.patch(f"/tasks/{task['id']}", json={"completed": "yes"})
    assert_error_shape(response, 400, "invalid_request")
    assert (await client.get(f"/tasks/{task['id']}")).json()["completed"] is False


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/contacts", '{"contacts":[{"externalId":%s}]}'),
        ("/contacts", '{"contacts":[{"externalId":"e1","x":%s}]}'),
        ("/tasks", '{"subject":"s","extra":[%s]}'),
    ],
)
async def test_a3_non_standard_json_numbers_are_malformed_json(
    client: httpx.AsyncClient, path: str, template: str, token: str
) -> None:
    response = await client.post(
        path, content=template % token, headers={"content-type": "application/json"}
    )
    assert_error_shape(response, 400, "invalid_json")
    assert token.lstrip("-") in response.json()["message"]


async def test_a3_nan_inside_a_string_is_a_string(client: httpx.AsyncClient) -> None:
    body = '{"contacts":[{"externalId":"NaN-Infinity","note":"NaN"}]}'
    response = await client.post(
        "/contacts", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["externalId"] == "NaN-Infinity"


async def test_integer_ids_are_kept_as_their_decimal_text_everywhere(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post("/companies", json={"companies": [{"externalId": 42}]})
    assert created.json()["results"] == [{"externalId": "42", "crmId": ANY_STR}]
    # A number is read as the id "5" (the memory driver then says it does not exist), not
    # refused as a wrong type.
    for route, body in [("/activities", {"type": "EMAIL"}), ("/tasks", {"subject": "s"})]:
        response = await client.post(route, json={**body, "contactId": 5})
        assert response.status_code == 400, response.text
        assert response.json()["message"] == "contactId: no contact exists with ID: 5"
    activity = await client.post("/activities", json={"type": "EMAIL", "ownerId": 9})
    assert activity.json()["ownerId"] == "9"
    task = await client.post("/tasks", json={"subject": "s", "ownerId": 3})
    assert task.json()["ownerId"] == "3"
    assert (await client.post("/tasks/batch", json={"ids": [123]})).json() == []


class _AnyStr:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(other)


ANY_STR: Any = _AnyStr()


async def test_a3_deeply_nested_body_with_nan_is_still_a_4xx(client: httpx.AsyncClient) -> None:
    body = '{"subject":"s","x":' + "[" * 100_000 + "NaN" + "]" * 100_000 + "}"
    response = await client.post("/tasks", content=body,
                                 headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500


async def test_a_schema_error_names_the_column_but_not_the_database(serve: Any) -> None:
    """A 500 backend_schema_error says which table or column is missing (someone must fix it),
    without the database, host or user of the options."""
    from backends.base import SchemaError

    options = {"url": "postgresql://crm@db.internal:5432/crmprod"}
    settings = make_settings(backend={"driver": "memory", "options": options})
    error = SchemaError('column "job_title" of relation "crmprod.party" does not exist')
    async with serve(settings, RaisingBackend(error)) as client:
        response = await client.post("/contacts/sync", json={"contacts": [{"externalId": "a"}]})
    assert response.status_code == 500
    body = error_body(response)
    assert body["error"] == "backend_schema_error"
    assert body["message"] == 'column "job_title" of relation "***.party" does not exist'
