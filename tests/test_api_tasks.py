"""A.10: tasks — create, get, partial PATCH with completion, batch get and batch complete."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
import pytest

from backends.base import Capability, NewTask, Task
from backends.memory import MemoryBackend
from tests.conftest import error_body

pytestmark = pytest.mark.anyio

NOW = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)

TASK = {
    "subject": "Follow up with John",
    "description": "Discuss pricing proposal from last meeting",
    "type": "call",
    "ownerId": "user-123",
    "dueDate": "2024-01-15T10:00:00Z",
}


class SpyBackend(MemoryBackend):
    def __init__(self) -> None:
        super().__init__()
        self.received: list[NewTask] = []

    async def create_task(self, task: NewTask) -> Task:
        self.received.append(task)
        return await super().create_task(task)


class NoTasksBackend(MemoryBackend):
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability) - {Capability.TASKS}


@pytest.fixture
async def tasks_client(backend: MemoryBackend, serve: Any) -> Any:
    async with serve(backend=backend) as client:
        client.app.state.service.clock = lambda: NOW
        yield client


async def new_task(client: httpx.AsyncClient, **over: Any) -> dict[str, Any]:
    response = await client.post("/tasks", json={**TASK, **over})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_task_create_returns_the_task(tasks_client: httpx.AsyncClient) -> None:
    contact = await tasks_client.post("/contacts", json={"contacts": [{"externalId": "l"}]})
    contact_id = contact.json()["results"][0]["crmId"]
    task = await new_task(tasks_client, contactId=contact_id)
    assert task["id"]
    assert {k: task[k] for k in TASK} == TASK
    assert task["contactId"] == contact_id
    assert task["companyId"] is None
    assert task["completed"] is False
    assert "completedAt" in task and task["completedAt"] is None


@pytest.mark.parametrize("body", [{}, {"subject": ""}, {"subject": "  "}, {"subject": None}])
async def test_a10_subject_is_required(
    tasks_client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await tasks_client.post("/tasks", json={"description": "x", **body})
    assert response.status_code == 400
    assert response.json()["message"].startswith("subject: ")


async def test_a10_unknown_task_keys_travel_in_extra(serve: Any) -> None:
    backend = SpyBackend()
    async with serve(backend=backend) as client:
        await client.post("/tasks", json={"subject": "x", "priority": "HIGH", "status": "open"})
    assert backend.received[0].extra == {"priority": "HIGH", "status": "open"}


async def test_get_task(tasks_client: httpx.AsyncClient) -> None:
    created = await new_task(tasks_client)
    response = await tasks_client.get(f"/tasks/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created


async def test_a10_unknown_task_id_is_404(tasks_client: httpx.AsyncClient) -> None:
    get = await tasks_client.get("/tasks/task-xyz")
    patch = await tasks_client.patch("/tasks/task-xyz", json={"completed": True})
    for response in (get, patch):
        assert response.status_code == 404
        assert error_body(response) == {
            "error": "task_not_found",
            "message": "No task exists with ID: task-xyz",
        }


async def test_a10_completing_sets_completed_at_to_now(tasks_client: httpx.AsyncClient) -> None:
    task = await new_task(tasks_client)
    response = await tasks_client.patch(f"/tasks/{task['id']}", json={"completed": True})
    assert response.status_code == 200
    body = response.json()
    assert body["completed"] is True
    assert body["completedAt"] == "2025-03-01T09:30:00Z"
    assert {k: body[k] for k in TASK} == TASK  # nothing else changed


async def test_a10_completing_uses_the_given_completed_at(tasks_client: httpx.AsyncClient) -> None:
    task = await new_task(tasks_client)
    response = await tasks_client.patch(
        f"/tasks/{task['id']}", json={"completed": True, "completedAt": "2024-12-18T09:00:00Z"}
    )
    assert response.json()["completedAt"] == "2024-12-18T09:00:00Z"


async def test_a10_uncompleting_clears_completed_at(tasks_client: httpx.AsyncClient) -> None:
    task = await new_task(tasks_client)
    await tasks_client.patch(f"/tasks/{task['id']}", json={"completed": True})
    response = await tasks_client.patch(f"/tasks/{task['id']}", json={"completed": False})
    assert response.json()["completed"] is False
    assert response.json()["completedAt"] is None
    got = await tasks_client.get(f"/tasks/{task['id']}")
    assert got.json()["completedAt"] is None


async def test_a10_repeating_a_completion_keeps_completed_at(
    tasks_client: httpx.AsyncClient,
) -> None:
    task = await new_task(tasks_client)
    await tasks_client.patch(f"/tasks/{task['id']}", json={"completed": True})
    tasks_client.app.state.service.clock = lambda: datetime(2030, 1, 1, tzinfo=UTC)  # type: ignore[attr-defined]
    again = await tasks_client.patch(f"/tasks/{task['id']}", json={"completed": True})
    assert again.json()["completedAt"] == "2025-03-01T09:30:00Z"


async def test_a10_patch_is_a_partial_update_of_other_fields(
    tasks_client: httpx.AsyncClient,
) -> None:
    task = await new_task(tasks_client)
    response = await tasks_client.patch(
        f"/tasks/{task['id']}",
        json={"subject": "Call John again", "dueDate": "2024-02-01T08:00:00Z"},
    )
    body = response.json()
    assert body["subject"] == "Call John again"
    assert body["dueDate"] == "2024-02-01T08:00:00Z"
    assert body["description"] == TASK["description"]
    assert body["ownerId"] == TASK["ownerId"]
    assert body["completed"] is False


async def test_a10_patch_rejects_a_blank_subject(tasks_client: httpx.AsyncClient) -> None:
    task = await new_task(tasks_client)
    response = await tasks_client.patch(f"/tasks/{task['id']}", json={"subject": ""})
    assert response.status_code == 400


async def test_a10_batch_get_returns_a_bare_array_skipping_unknown_ids(
    tasks_client: httpx.AsyncClient,
) -> None:
    a = await new_task(tasks_client, subject="A")
    b = await new_task(tasks_client, subject="B")
    response = await tasks_client.post(
        "/tasks/batch", json={"ids": [b["id"], "task-missing", a["id"]]}
    )
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, list)
    assert [t["id"] for t in body] == [b["id"], a["id"]]
    assert body[0] == b


@pytest.mark.parametrize(
    "body", [{}, {"ids": "task-1"}, {"ids": [True]}, {"ids": [["a"]]}, {"ids": None}]
)
async def test_a10_batch_get_needs_an_array_of_ids(
    tasks_client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await tasks_client.post("/tasks/batch", json=body)
    assert response.status_code == 400
    assert response.json()["message"].startswith("ids")


async def test_a10_batch_complete_returns_a_bare_array_skipping_unknown_ids(
    tasks_client: httpx.AsyncClient,
) -> None:
    a = await new_task(tasks_client, subject="A")
    b = await new_task(tasks_client, subject="B")
    response = await tasks_client.patch(
        "/tasks/batch", json={"ids": [a["id"], "nope", b["id"]], "completed": True}
    )
    assert response.status_code == 200
    body = response.json()
    assert [t["id"] for t in body] == [a["id"], b["id"]]
    assert all(t["completed"] is True for t in body)
    assert all(t["completedAt"] == "2025-03-01T09:30:00Z" for t in body)
    got = await tasks_client.post("/tasks/batch", json={"ids": [a["id"]]})
    assert got.json()[0]["completed"] is True


async def test_a10_batch_complete_with_completed_at_and_uncomplete(
    tasks_client: httpx.AsyncClient,
) -> None:
    a = await new_task(tasks_client)
    done = await tasks_client.patch(
        "/tasks/batch",
        json={"ids": [a["id"]], "completed": True, "completedAt": "2024-12-18T09:00:00Z"},
    )
    assert done.json()[0]["completedAt"] == "2024-12-18T09:00:00Z"
    undone = await tasks_client.patch("/tasks/batch", json={"ids": [a["id"]], "completed": False})
    assert undone.json()[0]["completed"] is False
    assert undone.json()[0]["completedAt"] is None


@pytest.mark.parametrize(
    "body", [{"ids": ["a"]}, {"completed": True}, {"ids": "a", "completed": True}]
)
async def test_a10_batch_complete_needs_ids_and_completed(
    tasks_client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await tasks_client.patch("/tasks/batch", json=body)
    assert response.status_code == 400


async def test_tasks_unsupported_backend_is_501(serve: Any) -> None:
    async with serve(backend=NoTasksBackend()) as client:
        responses = [
            await client.post("/tasks", json={"subject": "x"}),
            await client.get("/tasks/t1"),
            await client.patch("/tasks/t1", json={"completed": True}),
            await client.post("/tasks/batch", json={"ids": ["t1"]}),
            await client.patch("/tasks/batch", json={"ids": ["t1"], "completed": True}),
        ]
    assert [r.status_code for r in responses] == [501] * 5
    assert {r.json()["error"] for r in responses} == {"not_implemented"}


async def test_a1_task_object_shape(tasks_client: httpx.AsyncClient) -> None:
    task = await new_task(tasks_client, dueDate="2024-01-15T11:00:00+01:00")
    assert isinstance(task, dict)
    assert {
        "id",
        "subject",
        "description",
        "type",
        "ownerId",
        "dueDate",
        "contactId",
        "companyId",
        "completed",
        "completedAt",
    } <= set(task)
    assert task["completedAt"] is None  # present and null until completed
    assert task["dueDate"] == "2024-01-15T10:00:00Z"  # ISO 8601, UTC, Z


async def test_a1_task_batch_routes_return_bare_arrays(tasks_client: httpx.AsyncClient) -> None:
    task = await new_task(tasks_client)
    got = await tasks_client.post("/tasks/batch", json={"ids": [task["id"]]})
    done = await tasks_client.patch("/tasks/batch", json={"ids": [task["id"]], "completed": True})
    empty = await tasks_client.post("/tasks/batch", json={"ids": []})
    assert isinstance(got.json(), list) and isinstance(done.json(), list)
    assert empty.json() == []


class CountingBackend(MemoryBackend):
    def __init__(self) -> None:
        super().__init__()
        self.updates = 0

    async def update_task(self, task_id: str, changes: Any) -> Task:
        self.updates += 1
        return await super().update_task(task_id, changes)


async def test_a10_create_completed_sets_completed_at_to_now(serve: Any) -> None:
    backend = CountingBackend()
    async with serve(backend=backend) as client:
        client.app.state.service.clock = lambda: NOW
        task = await new_task(client, completed=True)
        assert (task["completed"], task["completedAt"]) == (True, "2025-03-01T09:30:00Z")
        stored = (await client.get(f"/tasks/{task['id']}")).json()
        assert (stored["completed"], stored["completedAt"]) == (True, "2025-03-01T09:30:00Z")
        assert backend.updates == 1
        # Not completed: no second driver call.
        plain = await new_task(client, completed=False, completedAt="2024-02-02T00:00:00Z")
        assert (plain["completed"], plain["completedAt"]) == (False, None)
        await new_task(client)
        assert backend.updates == 1


async def test_a10_create_completed_uses_the_given_completed_at(
    tasks_client: httpx.AsyncClient,
) -> None:
    task = await new_task(tasks_client, completed=True, completedAt="2024-02-02T08:00:00Z")
    assert (task["completed"], task["completedAt"]) == (True, "2024-02-02T08:00:00Z")
    # A completion time alone means "completed then", as on PATCH.
    task = await new_task(tasks_client, completedAt="2024-02-03T08:00:00Z")
    assert (task["completed"], task["completedAt"]) == (True, "2024-02-03T08:00:00Z")
    # Neither is left over in the task's extra fields.
    got = (await tasks_client.post("/tasks/batch", json={"ids": [task["id"]]})).json()[0]
    assert got["completedAt"] == "2024-02-03T08:00:00Z"
