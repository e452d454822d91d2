"""Upstream HubSpot calls per Enginy operation, and a rate-limited burst, from the fake's log.

    python bench/hubspot.py [--batch 100] [--burst 50]

Runs the real front (``adapter.app.create_app``) on the HubSpot driver, served by the in-repo
stateful fake (``backends.testing.hubspot``) through httpx transports: no network, no token. Time
is virtual (the driver's limiter/retry sleeps and the fake's rate windows share one clock that
moves only when someone waits), so the burst's "seconds" are HubSpot seconds, not wall time.

Prints:

1. calls per Enginy operation on ``--batch``-record batches, with the issue's targets
   (create <= 2 when none exist; sync <= 3 + one search per fallback key needed; update 1;
   associations 1); the ``sync`` rows state which keys matched;
2. owners fetched per cache TTL under repeated ``GET /users``;
3. a burst of ``--burst`` concurrent ``POST /contacts`` (overlapping external ids) against a
   fake enforcing 100 requests per 10 s: failed requests, duplicates, 429s seen, virtual time.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapter.app import create_app
from adapter.config import Settings
from backends.hubspot import HubSpotBackend, HubSpotOptions
from backends.testing.hubspot import FakeHubSpot

TOKEN = "pat-na1-bench"
KEY = "bench-key"


class VirtualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


@asynccontextmanager
async def serve(
    fake: FakeHubSpot, clock: VirtualClock, **options: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, HubSpotBackend]]:
    backend = HubSpotBackend(
        HubSpotOptions(token=TOKEN, portal_id="1", **options),
        transport=fake.transport(),
        sleep=clock.sleep,
        clock=clock,
    )
    settings = Settings.model_validate({"auth": {"keys": [KEY]}})
    app = create_app(settings, backend)
    transport = httpx.ASGITransport(app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=transport,
            base_url="http://adapter",
            headers={"X-API-Key": KEY},
            timeout=None,
        ) as client,
    ):
        yield client, backend


def new_fake(clock: VirtualClock, **kwargs: Any) -> FakeHubSpot:
    fake = FakeHubSpot(token=TOKEN, clock=clock, **kwargs)
    # as the docs ask an operator to do once (or set unknown_properties: create)
    fake.add_property("contacts", "linkedin_profile_url")
    for i in range(3):
        fake.add_owner(f"Owner{i}", "Bench", f"owner{i}@example.com")
    return fake


def contact(n: int, tag: str = "") -> dict[str, Any]:
    return {
        "externalId": f"lead-{tag}{n}",
        "email": f"lead{tag}{n}@example.com",
        "firstName": f"Lead{n}",
        "lastName": "Bench",
        "linkedinUrl": f"https://www.linkedin.com/in/lead-{tag}{n}",
    }


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str]] = []

    def add(self, operation: str, calls: int, target: str, ok: bool, detail: str) -> None:
        self.rows.append((operation, str(calls), target, "ok" if ok else "OVER", detail))

    def print(self) -> None:
        head = ("Enginy operation", "calls", "target", "", "upstream calls")
        widths = [max(len(r[i]) for r in [head, *self.rows]) for i in range(5)]
        for row in [head, tuple("-" * w for w in widths), *self.rows]:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


def ops(fake: FakeHubSpot, start: int) -> tuple[int, str]:
    calls = fake.calls[start:]
    counts = Counter(c.op for c in calls)
    return len(calls), ", ".join(f"{op} x{n}" for op, n in counts.items())


async def per_operation(batch: int) -> None:
    clock = VirtualClock()
    fake = new_fake(clock)
    table = Table()
    async with serve(fake, clock) as (client, _):

        async def run(
            name: str, target: int | None, method: str, path: str, body: Any, note: str = ""
        ) -> Any:
            start = len(fake.calls)
            response = await client.request(method, path, json=body)
            assert response.status_code == 200, (name, response.status_code, response.text)
            calls, detail = ops(fake, start)
            table.add(
                name,
                calls,
                f"<= {target}" if target is not None else "-",
                target is None or calls <= target,
                (note + "; " if note else "") + detail,
            )
            return response.json()

        contacts = [contact(i) for i in range(batch)]
        created = await run(
            f"POST /contacts ({batch} new)", 2, "POST", "/contacts", {"contacts": contacts}
        )
        await run(
            f"POST /contacts ({batch} again)",
            2,
            "POST",
            "/contacts",
            {"contacts": contacts},
            "idempotent repeat",
        )
        companies = [
            {"externalId": f"acct-{i}", "name": f"Acme {i}", "domain": f"acme{i}.example.com"}
            for i in range(batch)
        ]
        made = await run(
            f"POST /companies ({batch} new)", 2, "POST", "/companies", {"companies": companies}
        )

        sync = await run(
            f"POST /contacts/sync ({batch}, all by externalId)",
            3,
            "POST",
            "/contacts/sync",
            {"contacts": contacts},
        )
        assert len(sync["results"]) == batch

        # Leads Enginy never exported through us but the CRM already has (other external ids).
        def mixed(by_email: int, by_linkedin: int) -> list[dict[str, Any]]:
            items = []
            for i in range(batch):
                item: dict[str, Any] = {"externalId": f"other-{i}", "firstName": "X"}
                if i < by_email:
                    item["email"] = contacts[i]["email"].upper()
                elif i < by_email + by_linkedin:
                    item["email"] = f"nobody{i}@example.org"
                    item["linkedinUrl"] = contacts[i]["linkedinUrl"].replace("https://www.", "")
                else:
                    item["email"] = f"ghost{i}@example.org"
                    item["linkedinUrl"] = f"linkedin.com/in/ghost-{i}"
                items.append(item)
            return items

        for by_email, by_linkedin in (
            (batch * 9 // 10, batch // 20),
            (batch * 6 // 10, batch // 5),
        ):
            unknown = batch - by_email - by_linkedin
            fallback = batch - by_email
            found = await run(
                f"POST /contacts/sync ({batch}: {by_email} email, {by_linkedin} LinkedIn, "
                f"{unknown} none)",
                3 + 1,
                "POST",
                "/contacts/sync",
                {"contacts": mixed(by_email, by_linkedin)},
                f"{fallback} values need the LinkedIn fallback",
            )
            assert len(found["results"]) == by_email + by_linkedin, len(found["results"])

        updates = [{"crmId": r["crmId"], "lastName": "Updated"} for r in created["results"]]
        await run(f"PUT /contacts ({batch})", 1, "PUT", "/contacts", {"contacts": updates})
        pairs = [
            {"contactCRMId": c["crmId"], "companyCRMId": m["crmId"]}
            for c, m in zip(created["results"], made["results"], strict=True)
        ]
        await run(
            f"POST /associations ({batch})", 1, "POST", "/associations", {"associations": pairs}
        )
        one = created["results"][0]["crmId"]
        await run(
            "POST /activities (new LINKEDIN)",
            None,
            "POST",
            "/activities",
            {
                "type": "LINKEDIN",
                "direction": "OUTBOUND",
                "body": "Hi",
                "contactId": one,
                "metadata": {"messageId": "m-1"},
            },
        )
        await run(
            "POST /activities (same messageId)",
            None,
            "POST",
            "/activities",
            {
                "type": "LINKEDIN",
                "direction": "OUTBOUND",
                "body": "Hi",
                "contactId": one,
                "metadata": {"messageId": "m-1"},
            },
        )
        task = await run(
            "POST /tasks",
            None,
            "POST",
            "/tasks",
            {"subject": "Call", "type": "call", "contactId": one},
        )
        await run(
            "PATCH /tasks/batch (complete 1)",
            None,
            "PATCH",
            "/tasks/batch",
            {"ids": [task["id"]], "completed": True},
        )
    print(f"Upstream HubSpot calls per Enginy operation ({batch}-record batches)\n")
    table.print()


async def owners_ttl() -> None:
    clock = VirtualClock()
    fake = new_fake(clock)
    async with serve(fake, clock, owners_ttl_seconds=300) as (client, _):
        start = fake.count("owners")
        rounds = []
        for _minute in range(10):
            results = await asyncio.gather(*[client.get("/users") for _ in range(20)])
            assert all(r.status_code == 200 for r in results)
            rounds.append(fake.count("owners") - start)
            clock.now += 60
    print(
        f"\nGET /users: 200 requests over 10 (virtual) minutes, owners TTL 300 s -> "
        f"{rounds[-1]} owners calls (cumulative per minute: {rounds})"
    )


async def burst(requests: int, per_request: int) -> None:
    clock = VirtualClock()
    fake = new_fake(clock, rate_limit=100)
    async with serve(fake, clock) as (client, _):
        start_calls, start_time = len(fake.calls), clock.now

        async def one(i: int) -> httpx.Response:
            # request i overlaps request i-1 on half of its external ids
            ids = range(i * per_request // 2, i * per_request // 2 + per_request)
            return await client.post("/contacts", json={"contacts": [contact(n, "b") for n in ids]})

        responses = await asyncio.gather(*[one(i) for i in range(requests)])
        failed = [r.status_code for r in responses if r.status_code != 200]
        wanted = {
            f"lead-b{n}"
            for i in range(requests)
            for n in range(i * per_request // 2, i * per_request // 2 + per_request)
        }
        stored = [
            o["properties"].get("enginy_external_id") for o in fake.objects["contacts"].values()
        ]
        duplicates = len(stored) - len(set(stored))
        calls = fake.calls[start_calls:]
        throttled = sum(1 for c in calls if c.status == 429)
        crm_ids: dict[str, set[str]] = {}
        for r in responses:
            if r.status_code == 200:
                for item in r.json()["results"]:
                    crm_ids.setdefault(item["externalId"], set()).add(item["crmId"])
        split = sum(1 for v in crm_ids.values() if len(v) > 1)
    print(
        f"\nBurst: {requests} concurrent POST /contacts x {per_request} records (overlapping "
        f"ids) against a fake enforcing 100 requests / 10 s"
    )
    print(f"  failed requests: {len(failed)} {failed[:5]}")
    print(
        f"  contacts stored: {len(stored)} for {len(wanted)} distinct external ids; "
        f"duplicates: {duplicates}; external ids answered with 2+ crm ids: {split}"
    )
    print(
        f"  upstream calls: {len(calls)}; 429 answers from HubSpot: {throttled}; "
        f"virtual time: {clock.now - start_time:.1f} s"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--burst-records", type=int, default=10)
    args = parser.parse_args()
    await per_operation(args.batch)
    await owners_ttl()
    await burst(args.burst, args.burst_records)


if __name__ == "__main__":
    asyncio.run(main())
