"""The memory driver: the whole conformance suite, plus what is specific to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import anyio
import pytest
from pydantic import ValidationError

from backends.base import (
    Backend,
    Entity,
    InvalidRecord,
    MatchKey,
    NewActivity,
    NewRecord,
    NewTask,
    RecordUpdate,
    TaskChanges,
    User,
)
from backends.memory import MemoryBackend, MemoryOptions
from backends.testing import ConformanceSuite

USERS = [
    {"id": "u1", "name": "Ada Lovelace", "email": "ada@example.com"},
    {"id": "u2", "name": "Grace Hopper"},
]


class TestMemoryConformance(ConformanceSuite):
    @pytest.fixture
    async def backend(self) -> AsyncIterator[Backend]:
        driver = MemoryBackend(MemoryOptions.model_validate({"users": USERS}))
        await driver.open()
        yield driver
        await driver.close()

    @pytest.fixture
    def expected_users(self) -> list[User]:
        return [User("u1", "Ada Lovelace", "ada@example.com"), User("u2", "Grace Hopper")]


# -- memory-specific --------------------------------------------------------------------------

C, K = Entity.CONTACT, Entity.COMPANY
EMAIL = MatchKey("email", field="email")


def contact(ext: str, email: str | None = None, **fields: object) -> NewRecord:
    keys = {"email": email} if email else {}
    return NewRecord(ext, {"email": email, **fields}, keys)


@pytest.mark.anyio
async def test_index_follows_updates_and_keeps_oldest_first() -> None:
    mem = MemoryBackend()
    old, new = [
        r.crm_id
        for r in await mem.create_records(C, [contact("a", "x@e.com"), contact("b", "y@e.com")])
    ]
    assert old is not None and new is not None
    # The newer record takes x@e.com first, then the older one moves onto it too: the older
    # one must win although it joined the index entry later.
    await mem.update_record(
        C, RecordUpdate(new, {"email": "x@e.com"}, match_keys={"email": "x@e.com"})
    )
    assert (await mem.find_records(C, EMAIL, ["x@e.com"]))["x@e.com"].crm_id == old
    await mem.update_record(
        C, RecordUpdate(old, {"email": "z@e.com"}, match_keys={"email": "z@e.com"})
    )
    assert (await mem.find_records(C, EMAIL, ["x@e.com"]))["x@e.com"].crm_id == new
    await mem.update_record(
        C, RecordUpdate(old, {"email": "x@e.com"}, match_keys={"email": "x@e.com"})
    )
    assert (await mem.find_records(C, EMAIL, ["x@e.com"]))["x@e.com"].crm_id == old
    # Old values leave the index entirely (no empty entries pile up).
    assert "y@e.com" not in mem._by_key[C]["email"]
    assert "z@e.com" not in mem._by_key[C]["email"]
    assert mem._by_key[C]["email"]["x@e.com"] == (old, new)
    await mem.update_record(C, RecordUpdate(new, {}, frozenset({"email"}), {"email": None}))
    assert mem._by_key[C]["email"] == {"x@e.com": (old,)}


@pytest.mark.anyio
async def test_find_uses_the_index_not_a_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    mem = MemoryBackend()
    await mem.create_records(C, [contact(f"e{n}", f"{n}@e.com") for n in range(100)])

    class NoScan(dict):  # type: ignore[type-arg]
        def _scan(self, *args: object) -> object:
            raise AssertionError("find_records must not iterate over the store")

        __iter__ = values = items = keys = _scan  # type: ignore[assignment]

    mem._records[C] = NoScan(mem._records[C])
    found = await mem.find_records(C, EMAIL, [f"{n}@e.com" for n in range(100)])
    assert len(found) == 100


@pytest.mark.anyio
async def test_state_is_per_instance() -> None:
    one, two = MemoryBackend(), MemoryBackend()
    result = await one.create_record(C, contact("a", "a@e.com"))
    assert result.crm_id is not None
    assert await two.get_records(C, [result.crm_id]) == {}
    assert (await two.create_record(C, contact("a", "a@e.com"))).created is True
    assert (await two.counts())["contacts"] == 1
    assert (await one.counts())["contacts"] == 1


@pytest.mark.anyio
async def test_callers_cannot_mutate_the_store() -> None:
    mem = MemoryBackend()
    tags = ["x"]
    sent: dict[str, object] = {"email": "a@e.com", "tags": tags}
    result = await mem.create_record(C, NewRecord("a", sent, {"email": "a@e.com"}))
    assert result.crm_id is not None
    tags.append("from-caller")  # the caller's own dict, after the call
    record = (await mem.get_records(C, [result.crm_id]))[result.crm_id]
    record.fields["tags"].append("from-reader")
    again = (await mem.find_records(C, EMAIL, ["a@e.com"]))["a@e.com"]
    assert again.fields["tags"] == ["x"]

    meta = {"messageId": "m", "nested": {"n": 1}}
    activity = await mem.create_activity(NewActivity(type="EMAIL", metadata=meta))
    meta["nested"]["n"] = 2  # type: ignore[index]
    activity.metadata["nested"]["n"] = 3
    listed = await mem.list_activities()
    assert listed[0].metadata == {"messageId": "m", "nested": {"n": 1}}


def test_options_reject_unknown_keys_and_bad_users() -> None:
    with pytest.raises(ValidationError):
        MemoryOptions.model_validate({"user": []})
    with pytest.raises(ValidationError):
        MemoryOptions.model_validate({"users": [{"id": "u1"}]})
    with pytest.raises(ValidationError):
        MemoryOptions.model_validate({"users": [{"id": "u1", "name": "A", "role": "x"}]})


@pytest.mark.anyio
async def test_no_users_configured_lists_none() -> None:
    assert await MemoryBackend().list_users() == []


@pytest.mark.anyio
async def test_unknown_task_field_is_invalid_record() -> None:
    mem = MemoryBackend()
    task = await mem.create_task(NewTask(subject="x"))
    now = datetime.now(UTC)
    with pytest.raises(InvalidRecord, match="colour"):
        await mem.update_task(task.id, TaskChanges(now=now, fields={"colour": "red"}))
    assert (await mem.get_task(task.id)).updated_at == task.updated_at


@pytest.mark.anyio
async def test_activities_with_naive_and_missing_times_are_ordered() -> None:
    mem = MemoryBackend()
    naive = await mem.create_activity(NewActivity(type="A", occurred_at=datetime(2020, 1, 1)))
    aware = await mem.create_activity(
        NewActivity(type="B", occurred_at=datetime(2021, 1, 1, tzinfo=UTC))
    )
    undated = await mem.create_activity(NewActivity(type="C"))  # ordered by creation time: now
    assert [a.id for a in await mem.list_activities()] == [undated.id, aware.id, naive.id]


def test_crm_ids_are_prefixed_per_kind() -> None:
    async def make() -> list[str]:
        mem = MemoryBackend()
        c = (await mem.create_record(C, contact("a"))).crm_id
        k = (await mem.create_record(K, NewRecord("b", {}))).crm_id
        t = (await mem.create_task(NewTask(subject="t"))).id
        a = (await mem.create_activity(NewActivity(type="EMAIL"))).id
        return [str(c), str(k), t, a]

    ids = anyio.run(make)
    assert [i.split("_")[0] for i in ids] == ["ct", "co", "task", "act"]
    assert len({i.split("_")[1] for i in ids}) == 4
