"""Values no store can hold, references that name nothing, keys that are almost a field: the
answer is the same on every driver (memory, SQLite, PostgreSQL, MariaDB, HubSpot's fake), because
the front decides it (``adapter/service/checks.py``, ``adapter/service/references.py``).
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from adapter.config import Settings
from adapter.service.references import UserDirectory
from backends.base import Backend, Capability, Entity
from backends.hubspot import HubSpotBackend, HubSpotOptions
from backends.memory import MemoryBackend
from backends.sql import SQLBackend, SQLOptions
from backends.testing.hubspot import FakeHubSpot
from tests.conftest import API_KEY, error_body, serve_app
from tests.sql.conftest import (
    MYSQL_URL,
    POSTGRES_URL,
    drop_adapter_tables,
    require_server,
    unique_prefix,
)

pytestmark = pytest.mark.anyio

DRIVERS = [
    "memory",
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mysql),
    "hubspot",
]
HUBSPOT_TOKEN = "pat-na1-bad-values"


@asynccontextmanager
async def driver_named(name: str, tmp_path: Any) -> AsyncIterator[Backend]:
    """An opened driver of each kind on an empty store (tables dropped afterwards)."""
    if name == "memory":
        yield MemoryBackend()
        return
    if name == "hubspot":
        fake = FakeHubSpot(token=HUBSPOT_TOKEN, search_lag=0.0)
        driver: Backend = HubSpotBackend(
            HubSpotOptions(token=HUBSPOT_TOKEN, unknown_properties="create"),
            transport=fake.transport(),
        )
        yield driver
        return
    url = {
        "sqlite": f"sqlite+aiosqlite:///{tmp_path / 'bad-values.db'}",
        "postgresql": require_server(POSTGRES_URL, "PostgreSQL") if name == "postgresql" else "",
        "mariadb": require_server(MYSQL_URL, "MariaDB/MySQL") if name == "mariadb" else "",
    }[name]
    sql = SQLBackend(SQLOptions.model_validate({"url": url, "table_prefix": unique_prefix()}))
    try:
        yield sql
    finally:
        await drop_adapter_tables(sql)


@pytest.fixture(params=DRIVERS)
async def api(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with driver_named(request.param, tmp_path) as driver, serve_app(backend=driver) as c:
        c.driver = driver  # type: ignore[attr-defined]
        yield c


def strict_json(text: str) -> Any:
    """Parse as JSON proper: Infinity and NaN are not JSON."""

    def refuse(token: str) -> Any:
        raise AssertionError(f"{token} in an answer")

    return json.loads(text, parse_constant=refuse)


def post(client: httpx.AsyncClient, path: str, raw: str, method: str = "POST") -> Any:
    return client.request(method, path, content=raw, headers={"content-type": "application/json"})


def all_finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(all_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(all_finite(v) for v in value)
    return True


# -- numbers that are not finite -------------------------------------------------------------


@pytest.mark.parametrize("driver", DRIVERS)
async def test_a_number_too_large_for_a_double_is_that_records_error_the_rest_lands(
    driver: str, tmp_path: Any
) -> None:
    async with driver_named(driver, tmp_path) as backend, serve_app(backend=backend) as client:
        raw = (
            '{"contacts": ['
            '{"externalId": "inf", "email": "inf@x.example", "score": 1e400},'
            '{"externalId": "neg", "email": "neg@x.example", "tags": {"n": [1, -1e400]}},'
            '{"externalId": "ok", "email": "ok@x.example", "score": 1.5}]}'
        )
        response = await post(client, "/contacts", raw)
        assert response.status_code == 200, response.text
        body = strict_json(response.text)
        assert [r["externalId"] for r in body["results"]] == ["ok"]
        assert [(e["externalId"], e["error"]) for e in body["errors"]] == [
            ("inf", "invalid_value"),
            ("neg", "invalid_value"),
        ]
        assert body["errors"][0]["message"].startswith("score: number out of range")
        assert body["errors"][1]["message"].startswith("tags.n[1]: number out of range")
        crm_id = body["results"][0]["crmId"]

        # A retry of the same batch (Enginy retries) gives the same answer, nothing doubled.
        again = strict_json((await post(client, "/contacts", raw)).text)
        assert again["results"] == body["results"]

        # An update carrying such a value fails that record and leaves the stored one.
        update = await post(
            client,
            "/contacts",
            f'{{"contacts": [{{"crmId": "{crm_id}", "score": -1e999}}]}}',
            "PUT",
        )
        assert update.status_code == 200
        [result] = strict_json(update.text)["results"]
        assert (result["success"], result["error"]) == (False, "invalid_value")
        synced = await client.post(
            "/contacts/sync", json={"contacts": [{"externalId": "ok"}, {"externalId": "inf"}]}
        )
        [match] = strict_json(synced.text)["results"]
        assert match["crmId"] == crm_id
        assert float(match["properties"]["score"]) == 1.5

        # Every value of every record kept is a finite number.
        stored = await backend.get_records(Entity.CONTACT, [crm_id])
        assert all_finite(dict(stored[crm_id].fields))

        # Companies too; a batch in which every record fails is a 400 listing them (A.5).
        companies = await post(
            client, "/companies", '{"companies": [{"externalId": "c", "employeeCount": 1e400}]}'
        )
        assert companies.status_code == 400
        assert error_body(companies)["errors"][0]["message"].startswith("employeeCount: number")


@pytest.mark.parametrize("driver", DRIVERS)
async def test_a_number_too_large_in_an_activity_or_task_is_a_400_naming_it(
    driver: str, tmp_path: Any
) -> None:
    async with driver_named(driver, tmp_path) as backend, serve_app(backend=backend) as client:
        if Capability.ACTIVITIES in backend.capabilities:
            response = await post(
                client, "/activities", '{"type": "EMAIL", "metadata": {"score": [1, 1e400]}}'
            )
            assert response.status_code == 400
            assert error_body(response)["message"].startswith("metadata.score[1]: number out")
        if Capability.TASKS in backend.capabilities:
            response = await post(client, "/tasks", '{"subject": "s", "points": -1e400}')
            assert response.status_code == 400
            assert error_body(response)["message"].startswith("points: number out of range")
            counts = await backend.counts() if Capability.BROWSE in backend.capabilities else {}
            assert counts.get("tasks", 0) == 0


# -- references that name nothing ------------------------------------------------------------


async def test_references_naming_nothing_are_400_naming_the_field(
    api: httpx.AsyncClient,
) -> None:
    contact = (await api.post("/contacts", json={"contacts": [{"externalId": "c1"}]})).json()
    contact_id = contact["results"][0]["crmId"]
    cases = [
        ("/activities", {"type": "EMAIL", "contactId": "nobody"}, ["contactId"]),
        (
            "/activities",
            {"type": "EMAIL", "contactId": contact_id, "companyId": "nowhere"},
            ["companyId"],
        ),
        (
            "/tasks",
            {"subject": "s", "contactId": "nobody", "companyId": "nowhere"},
            ["contactId", "companyId"],
        ),
    ]
    for path, body, fields in cases:
        response = await api.post(path, json=body)
        assert response.status_code == 400, response.text
        answer = error_body(response)
        assert answer["error"] == "invalid_reference"
        assert [part.split(":")[0] for part in answer["message"].split("; ")] == fields


async def test_patch_task_404_only_for_the_task_400_for_what_it_points_at(
    api: httpx.AsyncClient,
) -> None:
    contact = (await api.post("/contacts", json={"contacts": [{"externalId": "c1"}]})).json()
    contact_id = contact["results"][0]["crmId"]
    task = (await api.post("/tasks", json={"subject": "s", "contactId": contact_id})).json()
    wrong = await api.patch(f"/tasks/{task['id']}", json={"contactId": "nobody"})
    assert wrong.status_code == 400
    assert error_body(wrong) == {
        "error": "invalid_reference",
        "message": "contactId: no contact exists with ID: nobody",
    }
    assert (await api.get(f"/tasks/{task['id']}")).json()["contactId"] == contact_id
    missing = await api.patch("/tasks/999999999", json={"contactId": "nobody"})
    assert missing.status_code == 404
    assert error_body(missing)["error"] == "task_not_found"


async def test_owner_ids_are_checked_against_the_users_listed(tmp_path: Any) -> None:
    settings = Settings.model_validate(
        {
            "auth": {"keys": [API_KEY]},
            "users": [{"id": "u1", "name": "Ada"}, {"id": "u2", "name": "Grace"}],
        }
    )
    async with serve_app(settings, MemoryBackend()) as client:
        created = await client.post(
            "/contacts",
            json={
                "contacts": [
                    {"externalId": "a", "ownerId": "u1"},
                    {"externalId": "b", "ownerId": "u9"},
                ]
            },
        )
        body = created.json()
        assert [r["externalId"] for r in body["results"]] == ["a"]
        assert body["errors"] == [
            {
                "externalId": "b",
                "error": "invalid_reference",
                "message": "ownerId: no user exists with ID: u9",
            }
        ]
        for path, payload in [
            ("/activities", {"type": "EMAIL", "ownerId": "u9"}),
            ("/tasks", {"subject": "s", "ownerId": "u9"}),
        ]:
            response = await client.post(path, json=payload)
            assert response.status_code == 400
            assert error_body(response)["message"] == "ownerId: no user exists with ID: u9"
            ok = await client.post(path, json={**payload, "ownerId": "u2"})
            assert ok.status_code == 200


async def test_owners_of_a_driver_listing_users_are_checked_and_refetched_once(
    tmp_path: Any,
) -> None:
    from backends.memory import MemoryOptions, MemoryUser

    class Counting(MemoryBackend):
        calls = 0

        async def list_users(self) -> Any:
            type(self).calls += 1
            return await super().list_users()

    backend = Counting(MemoryOptions(users=(MemoryUser(id="u1", name="Ada"),)))
    now = [0.0]
    async with serve_app(backend=backend) as client:
        service = client.app.state.service  # type: ignore[attr-defined]
        service.directory = UserDirectory(backend, None, clock=lambda: now[0])
        for _ in range(3):
            ok = await client.post("/activities", json={"type": "X", "ownerId": "u1"})
            assert ok.is_success
        assert Counting.calls == 1  # cached
        unknown = await client.post("/activities", json={"type": "X", "ownerId": "u7"})
        assert unknown.status_code == 400
        assert Counting.calls == 1  # the list was fetched less than 5 s ago
        now[0] = 6.0
        unknown = await client.post("/activities", json={"type": "X", "ownerId": "u7"})
        assert unknown.status_code == 400
        assert Counting.calls == 2  # looked again once, in case the user is new
        now[0] = 30.0
        assert (await client.post("/activities", json={"type": "X", "ownerId": "u1"})).is_success
        assert Counting.calls == 2  # a known id within the minute: no call
    # An empty user list means owners are not managed here: nothing is checked.
    async with serve_app(backend=MemoryBackend()) as client:
        assert (await client.post("/activities", json={"type": "X", "ownerId": "u7"})).is_success


# -- keys that are almost a field, and other unknown keys ------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "meant"),
    [
        ("/activities", {"type": "EMAIL", "contactID": "c"}, "contactId"),
        ("/activities", {"type": "EMAIL", "contact_id": "c"}, "contactId"),
        ("/activities", {"type": "EMAIL", "contactCRMId": "c"}, "contactId"),
        ("/activities", {"type": "EMAIL", "ocurredAt": "2024-01-01T00:00:00Z"}, "occurredAt"),
        ("/tasks", {"subject": "s", "CompanyId": "c"}, "companyId"),
        ("/tasks", {"subject": "s", "dueDat": "2024-01-01T00:00:00Z"}, "dueDate"),
    ],
)
async def test_a_misspelt_field_is_a_400_naming_the_field_meant(
    client: httpx.AsyncClient, backend: MemoryBackend, path: str, body: dict[str, Any], meant: str
) -> None:
    response = await client.post(path, json=body)
    assert response.status_code == 400
    wrong = next(k for k in body if k not in ("type", "subject"))
    assert error_body(response)["message"].endswith(
        f"{wrong}: not a field of "
        + ("an activity" if path == "/activities" else "a task")
        + f"; did you mean {meant}?"
    )
    counts = await backend.counts()
    assert counts["activities"] == counts["tasks"] == 0


async def test_misspelt_keys_on_task_patches_and_batches_are_400(
    client: httpx.AsyncClient,
) -> None:
    task = (await client.post("/tasks", json={"subject": "s"})).json()
    patch = await client.patch(f"/tasks/{task['id']}", json={"completed": True, "contactid": "c"})
    assert patch.status_code == 400
    assert "did you mean contactId?" in error_body(patch)["message"]
    assert (await client.get(f"/tasks/{task['id']}")).json()["completed"] is False
    batch = await client.patch(
        "/tasks/batch", json={"ids": [task["id"]], "completed": True, "completedAT": "2024"}
    )
    assert batch.status_code == 400
    assert "did you mean completedAt?" in error_body(batch)["message"]


async def test_other_unknown_keys_are_reported_in_warnings(
    api: httpx.AsyncClient,
) -> None:
    activity = await api.post("/activities", json={"type": "EMAIL", "campaignName": "Q3"})
    assert activity.status_code == 200
    assert activity.json()["warnings"] == [
        {
            "field": "campaignName",
            "message": "not a field of an activity in the contract; "
            "passed to the backend as extra data",
        }
    ]
    task = await api.post("/tasks", json={"subject": "s"})
    assert "warnings" not in task.json()
    patched = await api.patch(f"/tasks/{task.json()['id']}", json={"priority": "high"})
    assert patched.status_code == 200
    assert patched.json()["warnings"] == [
        {"field": "priority", "message": "not a field of a task in the contract; ignored"}
    ]
    assert "warnings" not in (await api.get(f"/tasks/{task.json()['id']}")).json()
    contacts = (await api.post("/contacts", json={"contacts": [{"externalId": "c"}]})).json()
    companies = (await api.post("/companies", json={"companies": [{"externalId": "k"}]})).json()
    linked = await api.post(
        "/associations",
        json={
            "associations": [
                {
                    "contactCRMId": contacts["results"][0]["crmId"],
                    "companyCRMId": companies["results"][0]["crmId"],
                    "role": "buyer",
                }
            ]
        },
    )
    assert linked.status_code == 200
    assert linked.json()["warnings"] == [
        {
            "field": "associations[0].role",
            "message": "not a field of an association in the contract; ignored",
        }
    ]
