"""What the REST driver costs a CRM: calls per 100-contact create and sync on each preset,
BottleCRM's create at several concurrencies, and duplicates under a failing network.

    python bench/rest.py [--skip-faults] [--contacts 100]

Runs on this machine, from the checkout, after ``tests/rest/servers/install.sh``:

1. **Calls.** On each preset (BottleCRM and Directus: real servers; Pipedrive: the fake of
   ``backends/testing/pipedrive``), a create of 100 new contacts, then a sync of 100 contacts of
   which 50 exist (found by externalId: the 50 others are looked up by email too, as the front
   does), each beside the floor its API allows: one call where it has a batch endpoint or an IN
   filter, 100 where it has neither.
2. **Concurrency.** A 100-contact create on BottleCRM at ``concurrency`` 1, 4 and 8: time and
   calls.
3. **Duplicates.** 100 contacts created on BottleCRM through the fault proxy turning 10% of the
   answers (to creates, updates and look-ups alike: 5% a 500 after the CRM did the work, 5% a
   timeout after it), then created again by another driver instance (Enginy's retry reaching
   another process): contacts in the CRM, duplicates.

Prints one table per part. Servers are started and stopped by the script (nothing is left
running); each part uses a fresh BottleCRM organisation or an emptied Directus.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backends.base import EXTERNAL_ID, Entity, MatchKey, NewRecord  # noqa: E402
from backends.rest import RestBackend, RestOptions  # noqa: E402
from backends.testing.pipedrive import FakePipedrive  # noqa: E402
from tests.rest.servers.bottlecrm import BottleCRMServer  # noqa: E402
from tests.rest.servers.directus import DirectusServer  # noqa: E402
from tests.rest.servers.faultproxy import Fault, FaultPlan, FaultProxy  # noqa: E402
from tests.rest.support import preset_settings  # noqa: E402


def driver(
    preset: str,
    base_url: str,
    token: str,
    transport: Any = None,
    *,
    lists: bool = True,
    **over: Any,
) -> RestBackend:
    """The preset's driver; ``lists=False`` drops its list strategies, as for a CRM holding more
    records than their bound (every value is then looked up on its own)."""
    options = {**preset_settings(preset, base_url, token).backend.options, **over}
    if not lists:
        contacts = dict(options["contacts"])
        contacts["find"] = {
            key: [s for s in strategies if s["type"] != "list"]
            for key, strategies in contacts["find"].items()
        }
        options["contacts"] = contacts
    return RestBackend(RestOptions.model_validate(options), transport=transport)


def leads(n: int, tag: str) -> list[NewRecord]:
    return [
        NewRecord(
            f"{tag}-{i}",
            {"email": f"{tag}.{i}@example.com", "first_name": f"Lead{i}", "last_name": "Bench"},
            {"email": f"{tag}.{i}@example.com"},
        )
        for i in range(n)
    ]


async def sync(backend: RestBackend, records: list[NewRecord]) -> int:
    """The front's sync: externalId for all, then email for the ones not found."""
    found = await backend.find_records(
        Entity.CONTACT, MatchKey(EXTERNAL_ID), [r.external_id for r in records]
    )
    rest = [r.match_keys["email"] for r in records if r.external_id not in found]
    more = await backend.find_records(Entity.CONTACT, MatchKey("email", "email"), rest)
    return len(found) + len(more)


async def calls(backend: RestBackend, n: int, tag: str) -> tuple[int, int, int]:
    """(calls for a create of n, calls for a sync of n half known, records found by it)."""
    await backend.open()
    try:
        known = leads(n // 2, f"{tag}k")
        assert all(r.ok for r in await backend.create_records(Entity.CONTACT, known))
        fresh = leads(n, f"{tag}c")
        start = backend.client.attempts
        assert all(r.ok for r in await backend.create_records(Entity.CONTACT, fresh))
        create = backend.client.attempts - start
        batch = known + leads(n - n // 2, f"{tag}u")
        start = backend.client.attempts
        found = await sync(backend, batch)
        return create, backend.client.attempts - start, found
    finally:
        await backend.close()


def table(title: str, header: list[str], rows: list[list[object]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


async def part_calls(server: BottleCRMServer, directus: DirectusServer, n: int) -> None:
    rows: list[list[object]] = []
    for lists in (True, False):
        label = "" if lists else ", no list read"
        tenant = server.new_tenant()
        bottle = driver("bottlecrm", tenant.base_url, tenant.token, lists=lists)
        create, synced, found = await calls(bottle, n, "b")
        rows.append([f"BottleCRM{label}", create, n, synced, n, found])
        fake = FakePipedrive(api_token="pd-bench")
        base = "https://bench.pipedrive.test"
        pipedrive = driver("pipedrive", base, "pd-bench", transport=fake.transport(), lists=lists)
        create, synced, found = await calls(pipedrive, n, "p")
        rows.append([f"Pipedrive (fake){label}", create, n, synced, n, found])
    directus.clear()
    create, synced, found = await calls(
        driver("directus", directus.base_url, directus.token), n, "d"
    )
    rows.append(["Directus", create, 1, synced, 1, found])
    table(
        f"Calls to the CRM for {n} contacts (sync: half known; 'no list read': a CRM larger "
        "than the list strategies' bound)",
        ["preset", "create", "floor", "sync", "floor", "found"],
        rows,
    )


async def part_concurrency(server: BottleCRMServer, n: int) -> None:
    rows: list[list[object]] = []
    for concurrency in (1, 4, 8):
        tenant = server.new_tenant()
        backend = driver("bottlecrm", tenant.base_url, tenant.token, concurrency=concurrency)
        await backend.open()
        try:
            start_calls = backend.client.attempts
            started = time.perf_counter()
            results = await backend.create_records(Entity.CONTACT, leads(n, f"c{concurrency}"))
            elapsed = time.perf_counter() - started
        finally:
            await backend.close()
        assert all(r.ok for r in results)
        rows.append([concurrency, f"{elapsed:.1f} s", backend.client.attempts - start_calls])
    table(f"BottleCRM, create of {n} contacts", ["concurrency", "time", "calls"], rows)


async def part_faults(server: BottleCRMServer, n: int) -> None:
    tenant = server.new_tenant()
    plan = FaultPlan(
        {Fault.ERROR_AFTER: 0.05, Fault.TIMEOUT_AFTER: 0.05},
        seed=2026,
        methods={"POST", "PATCH", "GET"},
        hang_seconds=3,
    )
    records = leads(n, "f")
    answers = []
    with FaultProxy(tenant.base_url, plan).in_thread() as proxy:
        started = time.perf_counter()
        # The batch, then Enginy's retry of it served by another process (nothing in memory).
        for _ in range(2):
            backend = driver(
                "bottlecrm", proxy.url, tenant.token, timeouts={"read": 1.0}, max_attempts=6
            )
            await backend.open()
            try:
                answers.append(await backend.create_records(Entity.CONTACT, records))
            finally:
                await backend.close()
        elapsed = time.perf_counter() - started
        faults = proxy.counts()
    first, again = answers
    with tenant.client(timeout=60) as crm:
        rows = crm.get("/api/contacts/", params={"limit": 10 * n}).json()["results"]
    emails = Counter(r["email"] for r in rows)
    duplicates = sum(c - 1 for c in emails.values())
    same = sum(a.crm_id == b.crm_id for a, b in zip(first, again, strict=True))
    table(
        f"BottleCRM through the fault proxy: {n} contacts created, then again",
        ["answers failed", "failed creates", "in CRM", "duplicates", "retry same id", "time"],
        [
            [
                f"{sum(v for k, v in faults.items() if k is not None)} of {sum(faults.values())}",
                sum(not r.ok for r in first),
                len(rows),
                duplicates,
                f"{same}/{n}",
                f"{elapsed:.1f} s",
            ]
        ],
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100)
    parser.add_argument("--skip-faults", action="store_true")
    args = parser.parse_args()
    with BottleCRMServer() as bottle, DirectusServer() as directus:
        await part_calls(bottle, directus, args.contacts)
        await part_concurrency(bottle, args.contacts)
        if not args.skip_faults:
            await part_faults(bottle, args.contacts)


if __name__ == "__main__":
    asyncio.run(main())
