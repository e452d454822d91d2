"""The queue's table on SQLite and PostgreSQL: order per record, claims, outcomes, operator
actions, and (PostgreSQL) several deliverers sharing one queue with SKIP LOCKED."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapter.config import OutboxConfig
from adapter.outbox import OutboxStore, OutboxUnavailable, State, Write, WriteKind
from tests.sql.conftest import POSTGRES_URL, require_server

from .support import run_sql_async

pytestmark = pytest.mark.anyio


def _write(key: str, n: int = 0, dedupe: str | None = None) -> Write:
    return Write(WriteKind.CONTACTS_UPDATE, key, {"n": n}, dedupe)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def config(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OutboxConfig]:
    table = f"t_outbox_{uuid.uuid4().hex[:8]}"
    if request.param == "sqlite":
        yield OutboxConfig(url=f"sqlite+aiosqlite:///{tmp_path / 'q.db'}", table=table)
        return
    url = require_server(POSTGRES_URL, "PostgreSQL")
    yield OutboxConfig(url=url, table=table)
    await run_sql_async(url, f'DROP TABLE IF EXISTS "{table}"')


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(config: OutboxConfig, clock: Clock) -> AsyncIterator[OutboxStore]:
    store = OutboxStore(config, clock)
    await store.open()
    yield store
    await store.close()


async def _claim_keys(store: OutboxStore, limit: int = 100) -> list[tuple[str, int]]:
    async with store.claim(limit) as claim:
        return [(item.key, item.payload["n"]) for item in claim.items]


async def test_enqueue_keeps_arrival_order_and_counts(store: OutboxStore) -> None:
    uids = await store.enqueue([_write("contact:a", 1), _write("contact:b", 2)], "down")
    uids += await store.enqueue([_write("contact:a", 3)], "down")
    assert len(set(uids)) == 3
    items = await store.list_items()
    assert [(i.key, i.payload["n"], i.uid) for i in items] == [
        ("contact:a", 1, uids[0]),
        ("contact:b", 2, uids[1]),
        ("contact:a", 3, uids[2]),
    ]
    assert all(i.state is State.PENDING and i.attempts == 0 for i in items)
    assert items[0].last_error == "down"
    stats = await store.stats()
    assert (stats.pending, stats.dead) == (3, 0)
    assert stats.oldest_pending_at == 1_000_000.0
    assert await store.pending_keys(["contact:a", "contact:c"]) == {"contact:a"}


async def test_a_claim_takes_one_item_per_record_oldest_first(store: OutboxStore) -> None:
    await store.enqueue(
        [_write("k1", 1), _write("k2", 1), _write("k1", 2), _write("k3", 1), _write("k1", 3)], "x"
    )
    async with store.claim(100) as claim:
        assert [(i.key, i.payload["n"]) for i in claim.items] == [("k1", 1), ("k2", 1), ("k3", 1)]
        for item in claim.items:
            claim.done(item)
    # Delivered items are gone; the next write of k1 is now its head, then the one after it.
    assert await _claim_keys(store) == [("k1", 2)]
    async with store.claim(100) as claim:
        claim.done(claim.items[0])
    assert await _claim_keys(store) == [("k1", 3)]


async def test_the_limit_counts_heads(store: OutboxStore) -> None:
    await store.enqueue([_write(f"k{i}", i) for i in range(5)], "x")
    assert await _claim_keys(store, limit=2) == [("k0", 0), ("k1", 1)]


async def test_a_retried_item_waits_and_keeps_its_record_waiting(
    store: OutboxStore, clock: Clock
) -> None:
    await store.enqueue([_write("k1", 1), _write("k1", 2), _write("k2", 1)], "x")
    async with store.claim(100) as claim:
        first = claim.items[0]
        claim.retry(first, "backend_unavailable", "refused", clock.now + 30, clock.now)
    # k1's first write waits 30 s: neither it nor the write behind it is a head meanwhile.
    assert await _claim_keys(store) == [("k2", 1)]
    (item,) = await store.list_items(ids=[first.id])
    assert (item.attempts, item.error_code, item.last_error) == (
        1,
        "backend_unavailable",
        "refused",
    )
    assert item.next_attempt_at == clock.now + 30
    clock.now += 31
    assert await _claim_keys(store) == [("k1", 1), ("k2", 1)]


async def test_a_failed_claim_block_changes_nothing(store: OutboxStore) -> None:
    await store.enqueue([_write("k1", 1)], "x")
    with pytest.raises(RuntimeError):
        async with store.claim(100) as claim:
            claim.done(claim.items[0])
            raise RuntimeError("the deliverer died mid-round")
    (item,) = await store.list_items()
    assert (item.state, item.attempts) == (State.PENDING, 0)
    assert await _claim_keys(store) == [("k1", 1)]


async def test_dead_letters_are_kept_and_do_not_block_their_record(
    store: OutboxStore, clock: Clock
) -> None:
    await store.enqueue([_write("k1", 1), _write("k1", 2)], "x")
    async with store.claim(100) as claim:
        claim.give_up(claim.items[0], "not_found", "No contact exists", clock.now)
    assert await _claim_keys(store) == [("k1", 2)]
    stats = await store.stats()
    assert (stats.pending, stats.dead) == (1, 1)
    (dead,) = await store.list_items(State.DEAD)
    assert (dead.payload["n"], dead.error_code, dead.attempts) == (1, "not_found", 1)
    assert await store.pending_keys(["k1"]) == {"k1"}  # the pending one, not the dead one


async def test_retry_puts_dead_letters_back_with_a_fresh_age(
    store: OutboxStore, clock: Clock
) -> None:
    await store.enqueue([_write("k1", 1), _write("k2", 1)], "x")
    async with store.claim(100) as claim:
        for item in claim.items:
            claim.give_up(item, "invalid_record", "too long", clock.now)
    clock.now += 100
    dead = await store.list_items(State.DEAD)
    assert await store.retry([dead[0].id]) == 1
    assert await store.retry([dead[0].id]) == 0  # already pending: left alone
    (back,) = await store.list_items(State.PENDING)
    assert (back.id, back.since, back.next_attempt_at) == (dead[0].id, clock.now, clock.now)
    assert back.created_at == 1_000_000.0  # its age in the queue is unchanged
    assert await store.retry(all_dead=True) == 1
    assert (await store.stats()).dead == 0


async def test_drop_deletes_named_dead_letters_only(store: OutboxStore, clock: Clock) -> None:
    await store.enqueue([_write("k1", 1), _write("k2", 1)], "x")
    async with store.claim(100) as claim:
        claim.give_up(claim.items[0], "not_found", "gone", clock.now)
    dead_id, pending_id = (i.id for i in await store.list_items())
    dropped = await store.drop([dead_id, pending_id])
    assert [(i.id, i.state) for i in dropped] == [(dead_id, State.DEAD)]
    assert [i.id for i in await store.list_items()] == [pending_id]
    assert [i.id for i in await store.drop([pending_id], pending_too=True)] == [pending_id]
    assert await store.list_items() == []


async def test_a_repeated_write_with_the_same_dedupe_key_is_queued_once(
    store: OutboxStore, clock: Clock
) -> None:
    first = await store.enqueue([_write("k1", 1, dedupe="EMAIL|OUTBOUND|m1")], "x")
    again = await store.enqueue(
        [_write("k1", 1, dedupe="EMAIL|OUTBOUND|m1"), _write("k1", 2, dedupe="other")], "x"
    )
    assert again[0] == first[0] and again[1] != first[0]
    assert len(await store.list_items()) == 2
    async with store.claim(100) as claim:
        claim.done(claim.items[0])
    # Once delivered, the same key is a new write (the driver's idempotency key dedupes it).
    later = await store.enqueue([_write("k1", 1, dedupe="EMAIL|OUTBOUND|m1")], "x")
    assert later[0] != first[0]


async def test_release_backoff_keeps_rate_limits(store: OutboxStore, clock: Clock) -> None:
    await store.enqueue([_write("k1", 1), _write("k2", 1)], "x")
    async with store.claim(100) as claim:
        down, limited = claim.items
        claim.retry(down, "backend_unavailable", "refused", clock.now + 60, clock.now)
        claim.retry(limited, "backend_rate_limited", "429", clock.now + 60, clock.now)
    assert await _claim_keys(store) == []
    assert await store.release_backoff(keep_codes=("backend_rate_limited",)) == 1
    assert await _claim_keys(store) == [("k1", 1)]


async def test_open_without_create_never_makes_a_queue(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    store = OutboxStore(OutboxConfig(url=f"sqlite+aiosqlite:///{path}"))
    with pytest.raises(OutboxUnavailable, match="no outbox database"):
        await store.open(create=False)
    assert not path.exists()


async def test_one_sqlite_deliverer_per_file(tmp_path: Path) -> None:
    config = OutboxConfig(url=f"sqlite+aiosqlite:///{tmp_path / 'q.db'}")
    first, second = OutboxStore(config), OutboxStore(config)
    await first.open()
    await second.open()
    try:
        assert first.try_acquire_delivery() and first.holds_delivery
        assert not second.try_acquire_delivery() and not second.holds_delivery
        await first.close()  # a process that exits (or is killed) releases the lock
        assert second.try_acquire_delivery()
    finally:
        await first.close()
        await second.close()


@pytest.mark.postgres
async def test_an_unreachable_queue_is_reported_without_its_password() -> None:
    config = OutboxConfig(
        url="postgresql+asyncpg://enginy@127.0.0.1:1/q", password="s3cret-Pa55", connect_timeout=2
    )
    store = OutboxStore(config)
    with pytest.raises(OutboxUnavailable) as caught:
        await store.open()
    assert "s3cret-Pa55" not in str(caught.value)
    assert "outbox" in caught.value.message


@pytest.mark.postgres
async def test_postgres_deliverers_skip_each_others_items_and_keep_order(
    clock: Clock,
) -> None:
    url = require_server(POSTGRES_URL, "PostgreSQL")
    config = OutboxConfig(url=url, table=f"t_outbox_{uuid.uuid4().hex[:8]}")
    a, b = OutboxStore(config, clock), OutboxStore(config, clock)
    await a.open()
    await b.open()
    try:
        await a.enqueue([_write("k1", 1), _write("k2", 1), _write("k1", 2), _write("k3", 1)], "x")
        async with a.claim(2) as held:
            assert [(i.key, i.payload["n"]) for i in held.items] == [("k1", 1), ("k2", 1)]
            # While A holds k1's and k2's heads, B gets only k3: not them, not k1's second.
            assert await _claim_keys(b) == [("k3", 1)]
            for item in held.items:
                held.done(item)
        assert await _claim_keys(b) == [("k1", 2), ("k3", 1)]
    finally:
        await a.close()
        await b.close()
        await run_sql_async(url, f'DROP TABLE IF EXISTS "{config.table}"')


@pytest.mark.postgres
async def test_postgres_replicas_drain_one_queue_in_order_without_duplicates(
    clock: Clock,
) -> None:
    url = require_server(POSTGRES_URL, "PostgreSQL")
    config = OutboxConfig(url=url, table=f"t_outbox_{uuid.uuid4().hex[:8]}")
    stores = [OutboxStore(config, clock) for _ in range(3)]
    for store in stores:
        await store.open()
    delivered: list[tuple[str, int]] = []
    try:
        await stores[0].enqueue([_write(f"k{n % 7}", n) for n in range(140)], "x")

        async def deliverer(store: OutboxStore) -> None:
            while True:
                async with store.claim(5) as claim:
                    if not claim.items:
                        if (await store.stats()).pending == 0:
                            return
                        await asyncio.sleep(0.01)
                        continue
                    await asyncio.sleep(0.005)  # the backend call, rows locked meanwhile
                    for item in claim.items:
                        delivered.append((item.key, item.payload["n"]))
                        claim.done(item)

        await asyncio.wait_for(asyncio.gather(*(deliverer(s) for s in stores)), 60)
    finally:
        for store in stores:
            await store.close()
        await run_sql_async(url, f'DROP TABLE IF EXISTS "{config.table}"')
    assert sorted(n for _, n in delivered) == list(range(140))  # each once
    for k in range(7):
        assert [n for key, n in delivered if key == f"k{k}"] == list(range(k, 140, 7))


async def test_the_sqlite_queue_is_durable_and_keeps_its_log_short(tmp_path: Path) -> None:
    store = OutboxStore(OutboxConfig(url=f"sqlite+aiosqlite:///{tmp_path / 'q.db'}"))
    await store.open()
    try:
        async with store.engine.connect() as conn:
            pragmas = [
                (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "synchronous", "wal_autocheckpoint")
            ]
    finally:
        await store.close()
    # WAL, synchronous=FULL (2): an accepted write survives a power loss; SQLite's own
    # checkpoints (no background task runs for the queue).
    assert pragmas == ["wal", 2, 1000]
