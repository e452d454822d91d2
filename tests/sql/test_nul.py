"""Ids and values holding a NUL character. PostgreSQL text cannot hold NUL: an id or key with
one names no record ("not found", no match), never a 400 for the whole request (QA:
``GET /tasks/a%00b`` gave 400 ``invalid_record`` "invalid byte sequence"). A NUL inside a
field value is that record's own ``invalid_record`` on PostgreSQL; the rest of the batch lands.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from adapter.app import create_app
from adapter.config import Settings, build_backend
from backends.base import (
    EXTERNAL_ID,
    AssociationPair,
    Entity,
    InvalidRecord,
    MatchKey,
    NewRecord,
    NewTask,
    NotFound,
    RecordUpdate,
    TaskChanges,
)

from .conftest import OpenBackend, drop_adapter_tables, unique_prefix

pytestmark = pytest.mark.anyio
C, K = Entity.CONTACT, Entity.COMPANY
EMAIL = MatchKey("email", field="email")
NUL_ID = "a\x00b"


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ]
)
def url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


async def test_ids_and_keys_with_nul_are_simply_unknown(
    open_backend: OpenBackend, url: str
) -> None:
    async with open_backend(url) as backend:
        [made] = await backend.create_records(
            C, [NewRecord("lead-1", {"email": "a@x.io"}, {"email": "a@x.io"})]
        )
        [company] = await backend.create_records(K, [NewRecord("co-1", {"name": "Acme"})])
        assert made.crm_id and company.crm_id
        found = await backend.find_records(C, MatchKey(EXTERNAL_ID), [NUL_ID, "lead-1"])
        assert list(found) == ["lead-1"]
        assert await backend.find_records(C, EMAIL, ["a\x00@x.io"]) == {}
        assert list(await backend.get_records(C, [NUL_ID, made.crm_id])) == [made.crm_id]
        [unknown, known] = await backend.update_records(
            C,
            [RecordUpdate(NUL_ID, {"firstName": "X"}), RecordUpdate(made.crm_id, {"title": "CEO"})],
        )
        assert isinstance(unknown.error, NotFound)
        assert known.ok
        pairs = await backend.create_associations(
            [AssociationPair(NUL_ID, company.crm_id), AssociationPair(made.crm_id, NUL_ID)]
        )
        assert [type(r.error) for r in pairs] == [NotFound, NotFound]
        task = await backend.create_task(NewTask(subject="call"))
        assert await backend.get_tasks([NUL_ID]) == []
        with pytest.raises(NotFound):
            await backend.get_task(NUL_ID)
        done = await backend.update_tasks(
            [NUL_ID, task.id], TaskChanges(completed=True, now=dt.datetime.now(dt.UTC))
        )
        assert [t.id for t in done] == [task.id]
        with pytest.raises(NotFound):
            await backend.create_task(NewTask(subject="call", contact_id=NUL_ID))
        assert await backend.list_associated(C, NUL_ID) == []


async def test_a_nul_in_a_value_fails_only_its_record(open_backend: OpenBackend, url: str) -> None:
    refuses = not url.startswith("mysql")  # PostgreSQL text, SQLite's JSON functions
    async with open_backend(url) as backend:
        created = await backend.create_records(
            C,
            [
                NewRecord("good-1", {"firstName": "Ada"}),
                NewRecord("bad-typed", {"firstName": "A\x00da"}),
                NewRecord("bad-extra", {"note": "n\x00"}),
                NewRecord(NUL_ID, {"firstName": "Bob"}),
                NewRecord("good-2", {"firstName": "Grace"}),
            ],
        )
        assert created[0].created and created[4].created
        if refuses:
            assert [type(r.error) for r in created[1:4]] == [InvalidRecord] * 3
        assert all(r.ok for r in (created[0], created[4]))
        ids = [r.crm_id or "" for r in (created[0], created[4])]
        updated = await backend.update_records(
            C,
            [
                RecordUpdate(ids[0], {"firstName": "Ada 2"}),
                RecordUpdate(ids[1], {"note": "x\x00"}),
                RecordUpdate(ids[1], {"title": "CTO"}),
            ],
        )
        assert updated[0].ok and updated[2].ok
        if refuses:
            assert isinstance(updated[1].error, InvalidRecord)
        stored = await backend.get_records(C, ids)
        assert stored[ids[0]].fields["firstName"] == "Ada 2"
        assert stored[ids[1]].fields["title"] == "CTO"


async def test_get_task_with_a_nul_in_the_path_is_404(url: str) -> None:
    prefix = unique_prefix()
    settings = Settings.model_validate(
        {
            "auth": {"keys": ["k-123456"]},
            "backend": {"driver": "sql", "options": {"url": url, "table_prefix": prefix}},
        }
    )
    backend = build_backend(settings)
    app = create_app(settings, backend)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app),
                base_url="http://adapter",
                headers={"X-API-Key": "k-123456"},
            ) as client,
        ):
            answer = await client.get("/tasks/a%00b")
            assert answer.status_code == 404, answer.text
            synced = await client.post(
                "/contacts/sync", json={"contacts": [{"externalId": NUL_ID, "email": "z\x00@x.io"}]}
            )
            assert synced.status_code == 200, synced.text
            results: list[dict[str, Any]] = synced.json()["results"]
            assert results == []  # only matches are listed
            put = await client.put(
                "/contacts", json={"contacts": [{"crmId": NUL_ID, "firstName": "X"}]}
            )
            assert put.status_code in (200, 207), put.text
            assert "not" in put.text.lower()
    finally:
        await drop_adapter_tables(backend)  # type: ignore[arg-type]
