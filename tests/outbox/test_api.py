"""The outbox through the app: what Enginy is answered while the backend is down, what the
backend holds once it is back, in which order, and what stays a dead letter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapter.ops.startup import Backoff
from adapter.outbox import Outbox, OutboxUnavailable, Queued, State
from backends.base import (
    Entity,
    ItemResult,
    NewRecord,
    RateLimited,
    RecordUpdate,
    Unavailable,
)
from tests.conftest import UI_PASSWORD, serve_app

from .support import OutageBackend, outbox_settings

pytestmark = pytest.mark.anyio

DOWN = Unavailable("connection refused")


@pytest.fixture
def backend() -> OutageBackend:
    return OutageBackend()


@pytest.fixture
async def client(backend: OutageBackend, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(outbox_settings(tmp_path), backend) as c:
        yield c


def outbox_of(client: httpx.AsyncClient) -> Outbox:
    outbox: Outbox = client.app.state.outbox  # type: ignore[attr-defined]
    return outbox


async def drained(client: httpx.AsyncClient, timeout: float = 10.0) -> None:
    """Wait until nothing is pending (the deliverer runs in the app's lifespan)."""
    outbox = outbox_of(client)
    deadline = asyncio.get_running_loop().time() + timeout
    while (await outbox.store.stats()).pending:
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"the outbox did not drain: {await outbox.store.list_items()}")
        await asyncio.sleep(0.02)


async def contacts(client: httpx.AsyncClient, n: int) -> list[str]:
    body = {"contacts": [{"externalId": f"lead-{i}", "email": f"p{i}@x.io"} for i in range(n)]}
    response = await client.post("/contacts", json=body)
    assert response.status_code == 200, response.text
    return [r["crmId"] for r in response.json()["results"]]


async def company(client: httpx.AsyncClient) -> str:
    response = await client.post("/companies", json={"companies": [{"externalId": "co-1"}]})
    crm_id: str = response.json()["results"][0]["crmId"]
    return crm_id


async def task(client: httpx.AsyncClient, subject: str = "Call back") -> str:
    response = await client.post("/tasks", json={"subject": subject})
    task_id: str = response.json()["id"]
    return task_id


# --------------------------------------------------------------------------------------------
# Answers while the backend is down
# --------------------------------------------------------------------------------------------


async def test_updates_are_queued_and_answered_as_accepted(
    client: httpx.AsyncClient, backend: OutageBackend
) -> None:
    (a, b) = await contacts(client, 2)
    backend.failure = DOWN
    response = await client.put(
        "/contacts",
        json={"contacts": [{"crmId": a, "status": "Replied"}, {"crmId": b, "status": "Ongoing"}]},
    )
    assert response.status_code == 200
    assert response.json() == {
        "results": [
            {"crmId": a, "success": True, "queued": True},
            {"crmId": b, "success": True, "queued": True},
        ]
    }
    items = await outbox_of(client).store.list_items()
    assert [(i.kind, i.key) for i in items] == [
        ("contacts.update", f"contact:{a}"),
        ("contacts.update", f"contact:{b}"),
    ]
    assert items[0].last_error == "backend_unavailable: connection refused"
    backend.failure = None
    await drained(client)
    stored = await backend.get_records(Entity.CONTACT, [a, b])
    assert stored[a].fields["status"] == "Replied" and stored[b].fields["status"] == "Ongoing"


async def test_company_updates_and_associations_are_queued(
    client: httpx.AsyncClient, backend: OutageBackend
) -> None:
    (contact,) = await contacts(client, 1)
    co = await company(client)
    backend.failure = RateLimited("429 from the CRM", retry_after=0.05)
    put = await client.put("/companies", json={"companies": [{"crmId": co, "tier": "A"}]})
    assert put.json() == {"results": [{"crmId": co, "success": True, "queued": True}]}
    links = await client.post(
        "/associations", json={"associations": [{"contactCRMId": contact, "companyCRMId": co}]}
    )
    assert links.status_code == 200
    assert links.json() == {"success": True, "created": 0, "queued": 1}
    backend.failure = None
    await drained(client)
    assert (await backend.get_records(Entity.COMPANY, [co]))[co].fields["tier"] == "A"
    assert [r.crm_id for r in await backend.list_associated(Entity.CONTACT, contact)] == [co]


async def test_a_queued_activity_answers_a_receipt_and_is_logged_once(
    client: httpx.AsyncClient, backend: OutageBackend
) -> None:
    (contact,) = await contacts(client, 1)
    backend.failure = DOWN
    sent = {
        "type": "LINKEDIN",
        "subject": "[1/3] Hello",
        "body": "Hi Jane",
        "direction": "OUTBOUND",
        "occurredAt": "2024-12-31T10:00:00Z",
        "contactId": contact,
        "metadata": {"messageId": "li-1", "sequenceIndex": 1},
    }
    first = await client.post("/activities", json=sent)
    assert first.status_code == 200
    body = first.json()
    assert body["id"].startswith("queued-")
    assert body["queued"] is True and body["createdAt"] is None
    assert {k: body[k] for k in sent} == sent
    # Enginy retries the same message while it is still queued: the same receipt, one item.
    again = await client.post("/activities", json=sent)
    assert again.json()["id"] == body["id"]
    assert len(await outbox_of(client).store.list_items()) == 1
    backend.failure = None
    await drained(client)
    (stored,) = backend.activities()
    assert (stored.type, stored.subject, stored.contact_id) == ("LINKEDIN", "[1/3] Hello", contact)
    # After delivery a retry goes straight to the backend, which returns the same activity.
    direct = await client.post("/activities", json=sent)
    assert direct.json()["id"] == stored.id and "queued" not in direct.json()
    assert len(backend.activities()) == 1


async def test_a_queued_task_update_answers_what_it_knows(
    client: httpx.AsyncClient, backend: OutageBackend
) -> None:
    task_id = await task(client)
    backend.failure = DOWN
    response = await client.patch(
        f"/tasks/{task_id}",
        json={"completed": True, "completedAt": "2025-01-02T03:04:05Z", "description": "done"},
    )
    assert response.status_code == 200
    # The subject is not known while the backend is down: left out, never invented.
    assert response.json() == {
        "id": task_id,
        "description": "done",
        "completed": True,
        "completedAt": "2025-01-02T03:04:05Z",
        "queued": True,
    }
    backend.failure = None
    await drained(client)
    got = (await client.get(f"/tasks/{task_id}")).json()
    assert (got["completed"], got["completedAt"], got["description"], got["subject"]) == (
        True,
        "2025-01-02T03:04:05Z",
        "done",
        "Call back",
    )


async def test_a_queued_completion_keeps_the_time_it_was_accepted(
    client: httpx.AsyncClient, backend: OutageBackend
) -> None:
    task_id = await task(client)
    backend.failure = DOWN
    answer = (await client.patch(f"/tasks/{task_id}", json={"completed": True})).json()
    await asyncio.sleep(0.3)
    backend.failure = None
    await drained(client)
    got = (await client.get(f"/tasks/{task_id}")).json()
    # Completed when Enginy said so, not when the CRM came back.
    assert got["completedAt"] == answer["completedAt"]


async def test_a_batch_task_patch_lists_queued_ids_in_the_order_asked(
    client: httpx.AsyncClient, backend: OutageBackend
) -> None:
    one, two = await task(client, "one"), await task(client, "two")
    backend.failure = DOWN
    response = await client.patch(
        "/tasks/batch", json={"ids": [two, "no-such-task", one, two], "completed": True}
    )
    assert response.status_code == 200
    listed = response.json()
    assert [t["id"] for t in listed] == [two, "no-such-task", one]
    assert all(t["queued"] is True and t["completed"] is True for t in listed)
    assert all("subject" not in t for t in listed)
    backend.failure = None
    await drained(client)
    assert [
        t["completed"] for t in (await client.post("/tasks/batch", json={"ids": [one, two]})).json()
    ] == [True, True]
    # An unknown id in a batch is skipped, as the direct path does: not a dead letter.
    assert (await outbox_of(client).store.stats()).dead == 0


async def test_creates_still_fail_fast(client: httpx.AsyncClient, backend: OutageBackend) -> None:
    backend.failure = DOWN
    created = await client.post("/contacts", json={"contacts": [{"externalId": "e"}]})
    assert created.status_code == 503
    assert created.json()["error"] == "backend_unavailable"
    assert (await client.post("/tasks", json={"subject": "s"})).status_code == 503
    assert await outbox_of(client).store.list_items() == []


async def test_per_record_failures_are_answered_not_queued(
    client: httpx.AsyncClient, backend: OutageBackend
) -> None:
    response = await client.put("/contacts", json={"contacts": [{"crmId": "ct_missing", "x": 1}]})
    assert response.json()["results"][0]["success"] is False
    assert response.json()["results"][0]["error"] == "not_found"
    assert (await client.patch("/tasks/nope", json={"completed": True})).status_code == 404
    assert await outbox_of(client).store.list_items() == []


# --------------------------------------------------------------------------------------------
# Order
# --------------------------------------------------------------------------------------------


async def test_a_later_update_never_overtakes_a_queued_one(
    client: httpx.AsyncClient, backend: OutageBackend
) -> None:
    (a, b) = await contacts(client, 2)
    deliverer = outbox_of(client).deliverer
    backend.failure = DOWN
    await client.put("/contacts", json={"contacts": [{"crmId": a, "status": "first"}]})
    # The backend is back and known to be, but the deliverer has not caught up yet: a's next
    # update must queue behind the first; b has nothing queued and goes straight in.
    deliverer.ready = lambda: False
    backend.failure = None
    deliverer.down = False
    response = await client.put(
        "/contacts",
        json={"contacts": [{"crmId": a, "status": "second"}, {"crmId": b, "status": "direct"}]},
    )
    assert response.json()["results"] == [
        {"crmId": a, "success": True, "queued": True},
        {"crmId": b, "success": True},
    ]
    assert (await backend.get_records(Entity.CONTACT, [a]))[a].fields.get("status") is None
    assert (await backend.get_records(Entity.CONTACT, [b]))[b].fields["status"] == "direct"
    deliverer.ready = lambda: True
    await drained(client)
    assert [w[2]["status"] for w in backend.writes if w[1] == a] == ["first", "second"]
    assert (await backend.get_records(Entity.CONTACT, [a]))[a].fields["status"] == "second"


async def test_while_the_backend_is_known_down_writes_are_queued_without_trying(
    client: httpx.AsyncClient, backend: OutageBackend
) -> None:
    (a, b) = await contacts(client, 2)
    calls = 0
    original = backend.update_records

    async def counted(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        return await original(*args)

    backend.update_records = counted  # type: ignore[method-assign]
    backend.failure = DOWN
    await client.put("/contacts", json={"contacts": [{"crmId": a, "n": 1}]})
    assert calls == 1  # tried once, failed: the backend is now known to be down
    for n in range(5):
        answer = await client.put("/contacts", json={"contacts": [{"crmId": b, "n": n}]})
        assert answer.json()["results"][0]["queued"] is True
    assert calls == 1  # b was never tried directly: asked nothing of a down backend
    (_, queued_b, *_) = await outbox_of(client).store.list_items()
    assert queued_b.last_error == "backend_unavailable: connection refused"
    backend.failure = None
    await drained(client)
    assert (await backend.get_records(Entity.CONTACT, [b]))[b].fields["n"] == 4


async def test_many_queued_updates_arrive_in_order_per_record(
    client: httpx.AsyncClient, backend: OutageBackend
) -> None:
    ids = await contacts(client, 5)
    backend.failure = DOWN
    for step in range(6):
        body = {"contacts": [{"crmId": c, "step": step} for c in ids]}
        assert (await client.put("/contacts", json=body)).status_code == 200
        for c in ids:
            activity = {"type": "EMAIL", "contactId": c, "metadata": {"messageId": f"{c}-{step}"}}
            assert (await client.post("/activities", json=activity)).json()["queued"] is True
    backend.failure = None
    await drained(client)
    for c in ids:
        assert [
            w[2]["step"] for w in backend.writes if w[0] == "contacts.update" and w[1] == c
        ] == list(range(6))
    logged = [w[2]["messageId"] for w in backend.writes if w[0] == "activities.create"]
    assert sorted(logged) == sorted(f"{c}-{s}" for c in ids for s in range(6))
    for c in ids:
        assert [m for m in logged if m.startswith(c)] == [f"{c}-{s}" for s in range(6)]


# --------------------------------------------------------------------------------------------
# Delivery outcomes
# --------------------------------------------------------------------------------------------


async def test_a_write_the_backend_refuses_becomes_a_kept_dead_letter(
    client: httpx.AsyncClient, backend: OutageBackend
) -> None:
    (contact,) = await contacts(client, 1)
    backend.failure = DOWN
    await client.post(
        "/associations",
        json={"associations": [{"contactCRMId": contact, "companyCRMId": "co_gone"}]},
    )
    await client.put("/contacts", json={"contacts": [{"crmId": contact, "after": "yes"}]})
    backend.failure = None
    await drained(client)
    (dead,) = await outbox_of(client).store.list_items(State.DEAD)
    assert (dead.kind, dead.error_code) == ("associations.create", "not_found")
    assert "co_gone" in (dead.last_error or "")
    # The dead letter does not hold back the record's later write.
    assert (await backend.get_records(Entity.CONTACT, [contact]))[contact].fields["after"] == "yes"
    metrics = (await client.get("/metrics")).text
    assert 'enginy_adapter_outbox_items{state="dead"} 1.0' in metrics
    assert (
        'enginy_adapter_outbox_dead_letters_total{error="not_found",kind="associations.create"} 1.0'
        in metrics
    )


async def test_an_activity_replayed_after_a_crash_is_not_logged_twice(
    client: httpx.AsyncClient, backend: OutageBackend
) -> None:
    """An activity without Enginy's messageId, delivered, then the process dies before the
    queue records it: the next delivery must find the first one, not add another."""
    (contact,) = await contacts(client, 1)
    outbox = outbox_of(client)
    backend.failure = DOWN
    queued = await client.post("/activities", json={"type": "EMAIL", "contactId": contact})
    assert queued.json()["queued"] is True
    backend.failure = None
    (item,) = await outbox.store.list_items()
    assert item.payload["idempotency_key"].startswith("outbox:")
    # Deliver by hand, then "crash": the claim's block raises, so the item stays pending.
    with pytest.raises(RuntimeError):
        async with outbox.store.claim(10) as claim:
            await outbox.deliverer._call_single(claim.items[0])
            raise RuntimeError("killed")
    assert len(backend.activities()) == 1
    await drained(client)
    assert len(backend.activities()) == 1


async def test_an_item_failing_longer_than_max_age_is_given_up(
    backend: OutageBackend, tmp_path: Path
) -> None:
    settings = outbox_settings(tmp_path, max_age_seconds=0.2)
    async with serve_app(settings, backend) as client:
        (contact,) = await contacts(client, 1)
        backend.failure = DOWN
        await client.put("/contacts", json={"contacts": [{"crmId": contact, "s": 1}]})
        outbox = outbox_of(client)
        # Probes succeed (the backend answers pings) but the write keeps failing.
        backend.ping = _ok_ping  # type: ignore[method-assign]
        deadline = asyncio.get_running_loop().time() + 10
        while not (await outbox.store.list_items(State.DEAD)):
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        (dead,) = await outbox.store.list_items(State.DEAD)
        assert dead.error_code == "expired"
        assert "backend_unavailable: connection refused" in (dead.last_error or "")
        assert dead.attempts >= 2


async def _ok_ping() -> None:
    return None


async def test_a_rate_limit_pauses_deliveries_for_its_retry_after(
    client: httpx.AsyncClient, backend: OutageBackend
) -> None:
    (contact,) = await contacts(client, 1)
    outbox = outbox_of(client)
    backend.failure = RateLimited("daily limit", retry_after=0.6)
    await client.put("/contacts", json={"contacts": [{"crmId": contact, "s": 1}]})
    started = asyncio.get_running_loop().time()
    backend.failure = None
    await drained(client)
    # Nothing was tried before the limit's Retry-After had passed.
    assert asyncio.get_running_loop().time() - started >= 0.45
    assert outbox.deliverer.counts["delivered:contacts.update"] == 1


async def test_a_driver_bug_is_a_dead_letter_not_a_loop(
    client: httpx.AsyncClient, backend: OutageBackend
) -> None:
    (contact,) = await contacts(client, 1)
    backend.failure = DOWN
    await client.put("/contacts", json={"contacts": [{"crmId": contact, "s": 1}]})

    async def broken(*args: Any) -> Any:
        raise KeyError("bug")

    backend.update_records = broken  # type: ignore[assignment]
    backend.failure = None
    deadline = asyncio.get_running_loop().time() + 10
    while not (await outbox_of(client).store.list_items(State.DEAD)):
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    (dead,) = await outbox_of(client).store.list_items(State.DEAD)
    assert dead.error_code == "internal_error" and "KeyError" in (dead.last_error or "")


# --------------------------------------------------------------------------------------------
# Start-up, the queue's own failures, the outbox off
# --------------------------------------------------------------------------------------------


class NotOpenYet(OutageBackend):
    """A backend whose ``open()`` fails until ``opens`` is set."""

    opens = False

    async def open(self) -> None:
        if not self.opens:
            raise Unavailable("database starting")


async def test_writes_are_queued_while_the_backend_cannot_be_opened(tmp_path: Path) -> None:
    from adapter.app import create_app

    backend = NotOpenYet()
    app = create_app(
        outbox_settings(tmp_path), backend, open_backoff=Backoff(first=0.05, factor=1, cap=0.05)
    )
    transport = httpx.ASGITransport(app)
    headers = {"X-API-Key": "test-key-primary-7f3a"}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://a", headers=headers) as client,
    ):
        assert (await client.get("/health")).status_code == 503
        assert (await client.post("/contacts", json={"contacts": []})).status_code == 503
        put = await client.put("/contacts", json={"contacts": [{"crmId": "ct_1", "a": 1}]})
        assert put.json() == {"results": [{"crmId": "ct_1", "success": True, "queued": True}]}
        activity = await client.post("/activities", json={"type": "EMAIL"})
        assert activity.json()["queued"] is True
        (_, queued_activity) = await app.state.outbox.store.list_items()
        assert queued_activity.last_error == "the backend is not open yet"
        backend.opens = True
        client.app = app  # type: ignore[attr-defined]
        await drained(client)
        # ct_1 does not exist: found out at delivery, kept as a dead letter.
        (dead,) = await app.state.outbox.store.list_items(State.DEAD)
        assert (dead.kind, dead.error_code) == ("contacts.update", "not_found")
    assert len(backend.activities()) == 1


async def test_when_the_queue_cannot_be_written_enginy_gets_the_503(
    client: httpx.AsyncClient, backend: OutageBackend
) -> None:
    (contact,) = await contacts(client, 1)
    store = outbox_of(client).store

    async def broken(*args: Any) -> Any:
        raise OutboxUnavailable("outbox: enqueue: database unreachable")

    store.enqueue = broken  # type: ignore[method-assign]
    backend.failure = DOWN
    response = await client.put("/contacts", json={"contacts": [{"crmId": contact, "s": 1}]})
    assert response.status_code == 503
    assert response.json()["error"] == "backend_unavailable"  # the backend's own error


async def test_with_the_outbox_off_a_down_backend_still_answers_503(
    backend: OutageBackend,
) -> None:
    async with serve_app(backend=backend) as client:
        assert client.app.state.outbox is None  # type: ignore[attr-defined]
        (contact,) = await contacts(client, 1)
        backend.failure = DOWN
        response = await client.put("/contacts", json={"contacts": [{"crmId": contact, "s": 1}]})
        assert response.status_code == 503


async def test_metrics_and_dashboard_show_the_queue(
    client: httpx.AsyncClient, backend: OutageBackend
) -> None:
    (contact,) = await contacts(client, 1)
    backend.failure = DOWN
    for n in range(3):
        await client.put("/contacts", json={"contacts": [{"crmId": contact, "n": n}]})
    await outbox_of(client).deliverer.refresh_stats(force=True)
    await asyncio.sleep(0.05)
    metrics = (await client.get("/metrics")).text
    assert 'enginy_adapter_outbox_items{state="pending"} 3.0' in metrics
    assert 'enginy_adapter_outbox_enqueued_total{kind="contacts.update"} 3.0' in metrics
    age = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("enginy_adapter_outbox_oldest_age_seconds ")
    )
    assert age > 0
    page = await client.get("/ui", auth=("ops", UI_PASSWORD))
    assert 'id="outbox"' in page.text and "3</span> queued" in page.text
    detail = await client.get("/ui/outbox", auth=("ops", UI_PASSWORD))
    assert f"contact:{contact}" in detail.text
    backend.failure = None
    await drained(client)
    await outbox_of(client).deliverer.refresh_stats(force=True)
    metrics = (await client.get("/metrics")).text
    assert 'enginy_adapter_outbox_items{state="pending"} 0.0' in metrics
    assert 'enginy_adapter_outbox_delivered_total{kind="contacts.update"} 3.0' in metrics
    assert "enginy_adapter_outbox_oldest_age_seconds 0.0" in metrics


async def test_two_processes_on_one_sqlite_queue_one_delivers_both_recover(
    backend: OutageBackend, tmp_path: Path
) -> None:
    """Two worker processes (two Outbox instances here) share one SQLite queue: one holds
    the delivery lock and delivers what both queued; the other still notices that the
    backend is back (its own probe) and stops queueing its writes."""
    settings = outbox_settings(tmp_path)
    (a, b) = (Outbox(settings.outbox, backend), Outbox(settings.outbox, backend))
    await a.start()
    await asyncio.sleep(0.1)  # a takes the delivery lock first
    await b.start()
    try:
        assert a.store.holds_delivery and not b.store.holds_delivery
        contact = (await backend.create_records(Entity.CONTACT, [_new("lead")]))[0].crm_id
        assert contact is not None
        backend.failure = DOWN
        (queued,) = await b.writes.update_records(Entity.CONTACT, [_update(contact, n=1)])
        assert isinstance(queued, Queued)
        backend.failure = None
        deadline = asyncio.get_running_loop().time() + 10
        while (await a.store.stats()).pending or b.deliverer.down:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        assert a.deliverer.counts["delivered:contacts.update"] == 1
        assert b.deliverer.counts["delivered:contacts.update"] == 0
        (direct,) = await b.writes.update_records(Entity.CONTACT, [_update(contact, n=2)])
        assert isinstance(direct, ItemResult) and direct.ok
    finally:
        await b.stop()
        await a.stop()


def _new(external_id: str) -> NewRecord:
    return NewRecord(external_id, {})


def _update(crm_id: str, **fields: Any) -> RecordUpdate:
    return RecordUpdate(crm_id, fields)


async def test_a_down_backend_is_probed_once_per_interval_however_many_writes_arrive(
    backend: OutageBackend, tmp_path: Path
) -> None:
    pings = 0

    async def ping() -> None:
        nonlocal pings
        pings += 1
        raise DOWN

    async with serve_app(outbox_settings(tmp_path, probe_seconds=0.5), backend) as client:
        ids = await contacts(client, 4)
        backend.failure = DOWN
        backend.ping = ping  # type: ignore[method-assign]
        started = asyncio.get_running_loop().time()
        for n in range(40):
            body = {"contacts": [{"crmId": ids[n % 4], "n": n}]}
            assert (await client.put("/contacts", json=body)).json()["results"][0]["queued"]
        await asyncio.sleep(max(0.0, started + 1.2 - asyncio.get_running_loop().time()))
        # 1.2 s at one probe per 0.5 s: at most 3, not one per queued write.
        assert 1 <= pings <= 3


async def test_a_queue_that_cannot_be_opened_stops_the_start(tmp_path: Path) -> None:
    from adapter.app import create_app
    from adapter.ops.startup import StartupFailed

    settings = outbox_settings(tmp_path, url=f"sqlite+aiosqlite:///{tmp_path}/no/such/dir/q.db")
    app = create_app(settings, OutageBackend())
    with pytest.raises(StartupFailed, match="the outbox cannot start"):
        async with app.router.lifespan_context(app):
            pass  # pragma: no cover - never reached
    assert app.state.backend_gate.fatal == (
        f"the outbox cannot start: no directory {tmp_path}/no/such/dir for the outbox database"
    )


async def test_a_rate_limit_without_retry_after_is_waited_out_longer_each_time(
    tmp_path: Path,
) -> None:
    now = [1000.0]
    settings = outbox_settings(tmp_path)  # backoff: 0.05 s, x2, at most 0.5 s, no jitter
    outbox = Outbox(settings.outbox, OutageBackend(), clock=lambda: now[0])
    deliverer = outbox.deliverer
    pauses = []
    for _ in range(6):
        deliverer.backend_failed(RateLimited("daily quota"))
        pauses.append(round(deliverer._paused_until - now[0], 3))
        now[0] = deliverer._paused_until
    assert pauses == [0.05, 0.1, 0.2, 0.4, 0.5, 0.5]
    assert deliverer.known_failure() is None  # the last pause is over
    deliverer.backend_failed(RateLimited("10 s window", retry_after=7))
    assert deliverer._paused_until - now[0] == 7
    assert deliverer.known_failure() is not None  # writes are queued without trying meanwhile
