"""Managed-mode one-statement writes give exactly what the statement-per-step paths give,
record by record: updates as one ``UPDATE ... RETURNING`` (``backends/sql/patch.py``), creates
on PostgreSQL as one ``WITH ... INSERT`` (``backends/sql/insert.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

import backends.sql.writes as writes
from backends.base import EXTERNAL_ID, Entity, MatchKey, NewRecord, RecordUpdate
from backends.sql import SQLBackend

from .conftest import OpenBackend, on_statements

pytestmark = pytest.mark.anyio
C, K = Entity.CONTACT, Entity.COMPANY

DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=DATABASES)
def url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


START: dict[Entity, list[dict[str, Any]]] = {
    C: [
        {"email": "a@x.io", "firstName": "A", "score": 1, "addr": {"city": "B", "zip": "1"}},
        {"email": "b@x.io", "title": 7, "tags": ["x"]},  # 7: not text, kept in extra
        {"firstName": "C"},
    ],
    K: [
        {"name": "Acme", "numberOfEmployees": "51-200", "tags": ["a"]},
        {"name": "Beta", "numberOfEmployees": 12},
        {"domain": "c.io"},
    ],
}


def batches(ids: Sequence[str]) -> list[list[RecordUpdate]]:
    a, b, c = ids
    return [
        [
            RecordUpdate(a, {"firstName": "A2", "score": 2, "title": None}),
            RecordUpdate(b, {"title": "CTO", "tags": ["y", None]}),  # stale extra copy leaves
            RecordUpdate("no-such-id", {"firstName": "Z"}),
            RecordUpdate("x" * 80, {"firstName": "Z"}),
        ],
        [
            # An object value replaces the stored one (no deep merge); nulls inside it stay.
            RecordUpdate(a, {"addr": {"street": "S", "n": None}}),
            RecordUpdate(c, {"note": None, "lastName": 5}),
        ],
        [
            # The same record twice in one batch: applied in order.
            RecordUpdate(a, {"score": 3, "email": "a2@x.io"}, clear=frozenset({"addr"})),
            RecordUpdate(a, {"score": 4}, clear=frozenset({"firstName"})),
            RecordUpdate(b, {}, clear=frozenset({"tags", "title", "nothing"})),
        ],
        [
            # Companies' integer column: an int goes to it, anything else to extra.
            RecordUpdate(a, {"numberOfEmployees": 150, "flag": True, "ratio": 0.5}),
            RecordUpdate(b, {"numberOfEmployees": "1k", "name": 3}),
            RecordUpdate(c, {"domain": "d.io"}, clear=frozenset({"score", "lastName", "note"})),
        ],
        [
            RecordUpdate(a, {"numberOfEmployees": None}, clear=frozenset({"flag", "ratio"})),
            RecordUpdate(b, {"name": "Beta 2", "numberOfEmployees": 2**40}),
        ],
    ]


async def run(backend: SQLBackend, entity: Entity) -> list[Any]:
    made = await backend.create_records(
        entity, [NewRecord(f"r{i}", f) for i, f in enumerate(START[entity])]
    )
    ids = [m.crm_id or "" for m in made]
    seen: list[Any] = []
    for batch in batches(ids):
        results = await backend.update_records(entity, batch)
        seen.append([(ids.index(r.crm_id) if r.crm_id else None, repr(r.error)) for r in results])
        stored = await backend.get_records(entity, ids)
        seen.append([dict(stored[i].fields) for i in ids])
    return seen


@pytest.mark.parametrize("entity", [C, K])
async def test_one_statement_update_matches_the_read_merge_write_path(
    open_backend: OpenBackend, url: str, entity: Entity, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_backend(url) as backend:
        patched = await run(backend, entity)
    monkeypatch.setattr(writes, "supports_patch", lambda *_: False)
    async with open_backend(url) as backend:
        merged = await run(backend, entity)
    assert patched == merged
    # The scenario did exercise the values that matter.
    assert {"street": "S", "n": None} in [f.get("addr") for step in merged[3:4] for f in step]


async def test_an_update_without_key_changes_is_one_statement(
    open_backend: OpenBackend, url: str
) -> None:
    async with open_backend(url) as backend:
        made = await backend.create_records(
            C, [NewRecord(f"e{i}", {"score": i}) for i in range(20)]
        )
        seen: list[str] = []

        def count(statement: str, *_args: Any) -> None:
            seen.append(statement.split(None, 1)[0].upper())

        updates = [RecordUpdate(m.crm_id or "", {"title": "VP", "score": 9}) for m in made]
        with on_statements(backend, count):
            results = await backend.update_records(
                C, [*updates, RecordUpdate("nope", {"score": 1})]
            )
        assert [r.ok for r in results] == [True] * 20 + [False]
        assert seen == ["UPDATE"], seen
        stored = await backend.get_records(C, [m.crm_id or "" for m in made])
        assert all(r.fields == {"title": "VP", "score": 9} for r in stored.values())


def new(ext: str, fields: dict[str, Any], email: str | None = None) -> NewRecord:
    return NewRecord(ext, fields, {"email": email} if email else {})


CREATES = [
    [
        new("n1", {"email": "n1@x.io", "firstName": "N", "score": 1}, "n1@x.io"),
        new("n2", {"title": 7, "tags": ["a", None], "addr": {"c": None}}, "n2@x.io"),
        new("n3", {}),
        new("n1", {"firstName": "repeat"}, "other@x.io"),
    ],
    [
        new("n2", {"firstName": "again"}, "again@x.io"),  # exists: not created, keys untouched
        new("n4", {"lastName": "Four", "numberOfEmployees": 3}, "n4@x.io"),
        new("n4", {"lastName": "dup"}),
    ],
]


async def run_creates(backend: SQLBackend) -> list[Any]:
    seen: list[Any] = []
    ids: dict[str, str] = {}
    for batch in CREATES:
        results = await backend.create_records(C, batch)
        for r, record in zip(results, batch, strict=True):
            if r.created and r.crm_id:
                ids[r.crm_id] = record.external_id
        seen.append([(ids.get(r.crm_id or ""), r.created, repr(r.error)) for r in results])
    exts = ["n1", "n2", "n3", "n4"]
    found = await backend.find_records(C, MatchKey(EXTERNAL_ID), exts)
    seen.append({e: (r.external_id, dict(r.fields)) for e, r in found.items()})
    emails = ["n1@x.io", "n2@x.io", "n4@x.io", "other@x.io", "again@x.io"]
    by_email = await backend.find_records(C, MatchKey("email", field="email"), emails)
    seen.append({e: r.external_id for e, r in by_email.items()})
    return seen


async def test_one_statement_create_matches_the_multi_row_path(
    open_backend: OpenBackend, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_backend(url) as backend:
        at_once = await run_creates(backend)
    monkeypatch.setattr(SQLBackend, "_creates_at_once", lambda self: False)
    async with open_backend(url) as backend:
        multi_row = await run_creates(backend)
    assert at_once == multi_row
    assert multi_row[-1] == {"n1@x.io": "n1", "n2@x.io": "n2", "n4@x.io": "n4"}
