"""Concurrent clients on one ``serve`` process: throughput, latency, errors.

    python bench/load.py [--databases sqlite,postgres] [--clients 50] [--duration 30]
                         [--baseline DIR]

For each database (an SQLite *file* in a temporary directory; a database of its own on the
PostgreSQL / MariaDB server, created and dropped by the bench) it serves ``enginy-adapter
serve`` (uvicorn, one process, default pool options) and runs ``--clients`` concurrent
keep-alive clients for ``--duration`` seconds, on a store holding ``--stored`` contacts
(default 10,000, loaded server-side and ANALYZEd before the server starts). Each client
repeats, as Enginy's workers do:

1. ``POST /contacts`` with 10 new contacts;
2. ``POST /contacts/sync`` with 10 contacts: 5 it created (by external id or by e-mail), 5
   unknown;
3. ``POST /activities`` for one of its contacts, with a ``messageId``; every third one repeats
   an earlier ``messageId`` (Enginy's retry: must return the same activity, not a new one).

Every answer is checked (status 200, one result per contact, the repeated activity's id equal
to the first one's). Printed per operation: requests, requests/s, p50 and p99 latency, errors;
then the server's CPU milliseconds per request, the "database is locked" lines found in the
server's log or in error answers (target 0), and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import floor  # noqa: E402  (servers, scratch databases)
import front  # noqa: E402  (CPU time of the whole process, threads that ended included)

OPERATIONS = ("create 10", "sync 10", "activity")


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    samples: list[str] = field(default_factory=list)

    def pct(self, q: int) -> float:
        if len(self.latencies) < 2:
            return float("nan")
        return statistics.quantiles(self.latencies, n=100)[q - 1] * 1000


def _contact(tag: str, n: int) -> dict[str, Any]:
    return {
        "externalId": f"ext-{tag}-{n}",
        "email": f"{tag}.{n}@load.example.com",
        "firstName": f"First {n}",
        "lastName": "Load",
        "title": "Head of Sales",
        "company": "Load Corp",
        "campaigns": "concurrency",
    }


async def one_client(
    base: str, number: int, stop: float, stats: dict[str, Stats], locked: list[str]
) -> None:
    tag = f"c{number}-{uuid.uuid4().hex[:6]}"
    headers = {floor.HEADER: floor.KEY, "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    mine: list[tuple[str, str, str]] = []  # (external id, e-mail, crm id)
    activities: list[tuple[str, str]] = []  # (messageId, activity id)
    made = 0
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=120) as c:

        async def call(op: str, path: str, body: Any) -> Any | None:
            start = time.perf_counter()
            try:
                response = await c.post(path, content=json.dumps(body).encode())
            except httpx.HTTPError as exc:
                stats[op].errors += 1
                stats[op].samples.append(repr(exc)[:200])
                return None
            stats[op].latencies.append(time.perf_counter() - start)
            if "database is locked" in response.text:
                locked.append(response.text[:200])
            if response.status_code != 200:
                stats[op].errors += 1
                stats[op].samples.append(f"{response.status_code} {response.text[:200]}")
                return None
            return response.json()

        while time.perf_counter() < stop:
            batch = [_contact(tag, made + j) for j in range(10)]
            made += 10
            created = await call("create 10", "/contacts", {"contacts": batch})
            if created is not None:
                results = created.get("results", [])
                if len(results) != 10:
                    stats["create 10"].errors += 1
                    stats["create 10"].samples.append(f"{len(results)} results of 10")
                mine += [
                    (r["externalId"], f"{tag}.{made - 10 + j}@load.example.com", r["crmId"])
                    for j, r in enumerate(results)
                ]
            if time.perf_counter() >= stop:
                break
            known = mine[-5:]
            wanted = [
                {"externalId": ext} if j % 2 else {"externalId": f"x-{ext}", "email": email}
                for j, (ext, email, _) in enumerate(known)
            ]
            wanted += [
                {"externalId": f"nobody-{tag}-{made}-{j}", "email": f"nobody.{tag}.{made}.{j}@x.io"}
                for j in range(10 - len(wanted))
            ]
            synced = await call("sync 10", "/contacts/sync", {"contacts": wanted})
            if synced is not None:
                ids = {r["crmId"] for r in synced["results"]}
                if ids != {crm for _, _, crm in known}:
                    stats["sync 10"].errors += 1
                    stats["sync 10"].samples.append(f"found {len(ids)} of {len(known)}")
            if time.perf_counter() >= stop or not mine:
                continue
            repeat = len(activities) % 3 == 2
            message = activities[-1][0] if repeat else f"msg-{tag}-{len(activities)}"
            activity = {
                "type": "EMAIL",
                "direction": "OUTBOUND",
                "subject": "Hello",
                "body": "Following up on our call.",
                "contactId": mine[-1][2],
                "occurredAt": "2024-05-01T10:00:00Z",
                "metadata": {"messageId": message, "campaign": "concurrency"},
            }
            stored = await call("activity", "/activities", activity)
            if stored is not None:
                if repeat and stored["id"] != activities[-1][1]:
                    stats["activity"].errors += 1
                    stats["activity"].samples.append("a repeated messageId made a new activity")
                activities.append((message, stored["id"]))


async def run_clients(
    base: str, clients: int, duration: float
) -> tuple[dict[str, Stats], list[str], float]:
    stats = {op: Stats() for op in OPERATIONS}
    locked: list[str] = []
    start = time.perf_counter()
    stop = start + duration
    await asyncio.gather(*(one_client(base, n, stop, stats, locked) for n in range(clients)))
    return stats, locked, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--stored", type=int, default=10_000, help="contacts loaded first")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="serve the adapter and backends packages of this source tree instead (e.g. from "
        "git archive), for a before/after on the same machine (see bench/floor.py)",
    )
    args = parser.parse_args()
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        served = f"the tree in {args.baseline}" if args.baseline else "this checkout"
        print(
            f"# bench/load.py: {args.clients} clients x {args.duration:g} s, {served}; "
            f"{floor.machine()}"
        )
        print(
            f"{'database':<9} {'operation':<10} {'requests':>8} {'req/s':>7} {'p50 ms':>8} "
            f"{'p99 ms':>8} {'errors':>6}"
        )
        for kind in args.databases.split(","):
            with floor.scratch_database(kind, workdir) as db_url:
                # A store in use (bulk-loaded server-side, then ANALYZEd), not an empty one.
                asyncio.run(floor.fill(db_url, args.stored))
                with floor.serve_ours(db_url, workdir, args.baseline) as ours:
                    cpu_from = front.cpu_seconds(ours.pid) or 0.0
                    stats, locked, elapsed = asyncio.run(
                        run_clients(ours.url, args.clients, args.duration)
                    )
                    cpu = (front.cpu_seconds(ours.pid) or 0.0) - cpu_from
                    log = ours.log.read_text(errors="replace")
            total = 0
            for op, s in stats.items():
                total += len(s.latencies)
                failed += s.errors
                print(
                    f"{kind:<9} {op:<10} {len(s.latencies):>8} {len(s.latencies) / elapsed:>7.1f} "
                    f"{s.pct(50):>8.1f} {s.pct(99):>8.1f} {s.errors:>6}"
                )
                for sample in s.samples[:3]:
                    print(f"#   {op}: {sample}")
            locks = len(locked) + log.count("database is locked")
            failed += locks
            print(
                f"{kind:<9} {'all':<10} {total:>8} {total / elapsed:>7.1f}  server CPU "
                f"{cpu / max(total, 1) * 1000:.2f} ms/req, 'database is locked': {locks}; "
                f"{floor.machine()}",
                flush=True,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
