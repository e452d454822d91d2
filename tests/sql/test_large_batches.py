"""Batches of any size the body limit allows: statements are cut into chunks, so no database
limit (PostgreSQL's 32,767 parameters and parser stack, SQLite's variables, MySQL's
placeholders and packet size) turns a large batch into a 503 (QA: 10,000 updates changing
e-mails gave "stack depth limit exceeded", 33,000 lookups and 32,768 task ids gave 503)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from backends.base import (
    EXTERNAL_ID,
    Entity,
    MatchKey,
    NewRecord,
    NewTask,
    RecordUpdate,
    TaskChanges,
)
from backends.sql import SQLBackend

from .conftest import OpenBackend, on_statements

pytestmark = pytest.mark.anyio
C = Entity.CONTACT
EMAIL = MatchKey("email", field="email")
HUGE = 40_000
#: Far below every database's limit, far above one chunk's needs.
MAX_VALUES = 10_000

DATABASES = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", marks=pytest.mark.mysql),
]


@pytest.fixture(params=DATABASES)
def url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


def _values(parameters: Any) -> int:
    """Bound values of one parameter set, counting each element of an array parameter."""
    items = parameters.values() if isinstance(parameters, dict) else parameters
    return sum(len(v) if isinstance(v, (list, tuple)) else 1 for v in items)


@contextmanager
def largest_statement(backend: SQLBackend) -> Iterator[list[int]]:
    """``[n]``: the most bound values any one statement (or executemany row) carried."""
    seen = [0]

    def count(_s: str, parameters: Any, many: bool) -> None:
        sets = parameters if many else [parameters]
        seen[0] = max([seen[0], *(_values(p) for p in sets if p)])

    with on_statements(backend, count):
        yield seen


async def test_lookups_of_40000_values_work_in_bounded_statements(
    open_backend: OpenBackend, url: str
) -> None:
    async with open_backend(url) as backend:
        made = await backend.create_records(
            C,
            [
                NewRecord(f"ext-{i}", {"email": f"p{i}@x.io"}, {"email": f"p{i}@x.io"})
                for i in (7, 39_999)
            ],
        )
        task = await backend.create_task(NewTask(subject="call"))
        crm_ids = [r.crm_id or "" for r in made]
        with largest_statement(backend) as largest:
            by_ext = await backend.find_records(
                C, MatchKey(EXTERNAL_ID), [f"ext-{i}" for i in range(HUGE)]
            )
            by_email = await backend.find_records(C, EMAIL, [f"p{i}@x.io" for i in range(HUGE)])
            records = await backend.get_records(
                C, [*crm_ids, *(f"00000000-0000-0000-0000-{i:012d}" for i in range(HUGE))]
            )
            ids = [*(f"t-{i}" for i in range(HUGE)), task.id]
            tasks = await backend.get_tasks(ids)
            changed = await backend.update_tasks(
                ids, TaskChanges(completed=True, now=dt.datetime.now(dt.UTC))
            )
        assert {k: v.crm_id for k, v in by_ext.items()} == {
            "ext-7": crm_ids[0],
            "ext-39999": crm_ids[1],
        }
        assert sorted(by_email) == ["p39999@x.io", "p7@x.io"]
        assert sorted(records) == sorted(crm_ids)
        assert [t.id for t in tasks] == [task.id]
        assert [(t.id, t.completed) for t in changed] == [(task.id, True)]
        assert largest[0] <= MAX_VALUES, largest[0]


async def test_10000_updates_changing_match_keys_in_one_batch(
    open_backend: OpenBackend, url: str
) -> None:
    n = 10_000
    async with open_backend(url) as backend:
        records = [
            NewRecord(f"lead-{i}", {"email": f"old{i}@x.io"}, {"email": f"old{i}@x.io"})
            for i in range(n)
        ]
        with largest_statement(backend) as largest:
            made = await backend.create_records(C, records)
            assert all(r.created for r in made)
            again = await backend.create_records(C, records)  # all exist: read back by chunks
            assert [r.crm_id for r in again] == [r.crm_id for r in made]
            assert not any(r.created for r in again)
            updates = [
                RecordUpdate(
                    r.crm_id or "", {"email": f"new{i}@x.io"}, match_keys={"email": f"new{i}@x.io"}
                )
                for i, r in enumerate(made)
            ]
            outcome = await backend.update_records(C, updates)
        assert all(r.ok for r in outcome), next(r.error for r in outcome if not r.ok)
        assert largest[0] <= MAX_VALUES, largest[0]
        assert await backend.find_records(C, EMAIL, ["old5@x.io", "old9999@x.io"]) == {}
        found = await backend.find_records(C, EMAIL, [f"new{i}@x.io" for i in range(n)])
        assert len(found) == n
        assert found["new9999@x.io"].crm_id == made[-1].crm_id
        assert found["new9999@x.io"].fields["email"] == "new9999@x.io"
