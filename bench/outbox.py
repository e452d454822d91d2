"""The outbox through a real outage: nothing lost, nothing duplicated, order kept, time to drain.

    python bench/outbox.py [--down 60] [--contacts 200] [--activities 1000] [--updates 1000]
                           [--send-seconds 50] [--senders 16] [--queue sqlite|postgresql]

Runs ``enginy-adapter serve`` (a real process, one uvicorn worker) on the SQL driver, whose
PostgreSQL (``$ENGINY_TEST_POSTGRES_URL``, default the local CI server; tables under a fresh
prefix, dropped at the end) is reached through a TCP proxy (``tests/tcp_proxy.py``). The
outbox is on, with its default timings; its queue is an SQLite file (``--queue sqlite``, the
default) or a table in PostgreSQL (``--queue postgresql``, reached directly, not through the
proxy: the queue must not share the CRM's outage).

1. Creates ``--contacts`` contacts while the database is up, and installs two triggers that
   record, in order, every update of a contact row and every activity inserted.
2. Cuts the proxy (connections reset, new ones refused) for ``--down`` seconds. Meanwhile
   "Enginy" sends ``--updates`` ``PUT /contacts`` and ``--activities`` ``POST /activities``
   (half of them with a ``metadata.messageId``, half without), spread evenly over
   ``--send-seconds``, from ``--senders`` concurrent clients; each contact's writes are sent one
   after the other (the next once the previous is answered), numbered 0, 1, 2, ...
3. Restores the proxy and measures the time until the queue is empty (``/metrics``).
4. Reads PostgreSQL directly: activities stored (each (contact, number) once?), updates applied
   (each contact's numbers in the order sent?), final values, dead letters.

Prints one table. Takes about ``--down`` seconds plus the drain.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backends.sql.schema import build_tables
from tests.browser_support import free_port
from tests.outbox.support import run_sql_async
from tests.tcp_proxy import TcpProxy

ROOT = Path(__file__).resolve().parents[1]

KEY = "bench-key"
POSTGRES_URL = os.environ.get(
    "ENGINY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


def triggers(prefix: str) -> list[str]:
    p = prefix
    return [
        f"CREATE TABLE {p}audit (n bigserial PRIMARY KEY, kind text, crm_id text, seq int)",
        f"CREATE FUNCTION {p}audit_update() RETURNS trigger AS $$ BEGIN "
        f"INSERT INTO {p}audit (kind, crm_id, seq) VALUES "
        "('update', NEW.id, (NEW.extra->>'seq')::int); RETURN NEW; END $$ LANGUAGE plpgsql",
        f"CREATE FUNCTION {p}audit_activity() RETURNS trigger AS $$ BEGIN "
        f"INSERT INTO {p}audit (kind, crm_id, seq) VALUES "
        "('activity', NEW.contact_id, (NEW.metadata->>'seq')::int); RETURN NEW; END $$ "
        "LANGUAGE plpgsql",
        f"CREATE TRIGGER {p}audit_u AFTER UPDATE ON {p}contacts "
        f"FOR EACH ROW EXECUTE FUNCTION {p}audit_update()",
        f"CREATE TRIGGER {p}audit_a AFTER INSERT ON {p}activities "
        f"FOR EACH ROW EXECUTE FUNCTION {p}audit_activity()",
    ]


async def cleanup(url: str, prefix: str, queue_table: str | None) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"DROP TABLE IF EXISTS {prefix}audit"))
        await conn.run_sync(lambda c: build_tables(prefix).metadata.drop_all(c))
        for fn in ("audit_update", "audit_activity"):
            await conn.execute(sa.text(f"DROP FUNCTION IF EXISTS {prefix}{fn}() CASCADE"))
        if queue_table:
            await conn.execute(sa.text(f"DROP TABLE IF EXISTS {queue_table}"))
    await engine.dispose()


def start_adapter(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in ("ENGINY_ADAPTER_CONFIG", "ENGINY_ADAPTER_API_KEY"):
        env.pop(name, None)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "adapter", "serve", "--config", str(config)],
            cwd=config.parent,
            env=env,
            stdout=out,
            stderr=out,
        )


async def wait_serving(client: httpx.AsyncClient, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if (await client.get("/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the adapter did not start (exit {proc.poll()})")
        await asyncio.sleep(0.1)


def metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")):
            total += float(line.rsplit(" ", 1)[1])
    return total


class Sender:
    """Enginy's side during the outage: each contact's writes in order, globally paced."""

    def __init__(self, client: httpx.AsyncClient, total: int, seconds: float) -> None:
        self.client = client
        self.interval = seconds / max(total, 1)
        self.start = 0.0
        self.sent = 0
        self.statuses: Counter[int] = Counter()
        self.queued = 0
        self.latencies: list[float] = []
        self._slot = 0

    async def _paced(self, method: str, path: str, body: dict[str, Any]) -> None:
        slot = self._slot
        self._slot += 1
        delay = self.start + slot * self.interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        began = time.perf_counter()
        response = await self.client.request(method, path, json=body)
        self.latencies.append(time.perf_counter() - began)
        self.sent += 1
        self.statuses[response.status_code] += 1
        answer = response.json()
        results = answer.get("results") if isinstance(answer, dict) else None
        if (results and results[0].get("queued")) or answer.get("queued") is True:
            self.queued += 1

    async def step(self, index: int, crm_id: str, seq: int, updates: int, activities: int) -> None:
        """Write number ``seq`` of contact ``crm_id``: an update, then an activity."""
        if seq < updates:
            body = {"contacts": [{"crmId": crm_id, "seq": seq, "status": f"step {seq}"}]}
            await self._paced("PUT", "/contacts", body)
        if seq < activities:
            activity: dict[str, Any] = {
                "type": "EMAIL",
                "direction": "OUTBOUND",
                "subject": f"[{seq + 1}] bench",
                "contactId": crm_id,
                "metadata": {"seq": seq},
            }
            if index % 2 == 0:  # half with Enginy's messageId, half without
                activity["metadata"]["messageId"] = f"bench-{crm_id}-{seq}"
            await self._paced("POST", "/activities", activity)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    url = POSTGRES_URL
    target = make_url(url)
    prefix = f"obench{uuid.uuid4().hex[:6]}_"
    queue_table = f"{prefix}outbox" if args.queue == "postgresql" else None
    workdir = Path(tempfile.mkdtemp(prefix="enginy-outbox-bench-"))
    per_contact_updates = args.updates // args.contacts
    per_contact_activities = args.activities // args.contacts
    results: dict[str, Any] = {}
    with TcpProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
        port = free_port()
        crm_url = target.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False
        )
        outbox: dict[str, Any] = {"enabled": True}
        if queue_table:
            outbox.update(url=url, table=queue_table)
        else:
            outbox["url"] = f"sqlite+aiosqlite:///{workdir / 'outbox.db'}"
        config = workdir / "adapter.yaml"
        config.write_text(
            json.dumps(
                {
                    "server": {"port": port, "health_cache_seconds": 0},
                    "auth": {"keys": [KEY]},
                    "backend": {
                        "driver": "sql",
                        "options": {"url": crm_url, "table_prefix": prefix, "connect_timeout": 2},
                    },
                    "outbox": outbox,
                    "observability": {"logs": {"format": "text", "level": "WARNING"}},
                }
            )
        )
        proc = start_adapter(config, workdir / "serve.log")
        limits = httpx.Limits(max_connections=args.senders * 2)
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}",
                headers={"X-API-Key": KEY},
                timeout=60,
                limits=limits,
            ) as client:
                await wait_serving(client, proc)
                ids: list[str] = []
                for first in range(0, args.contacts, 100):
                    batch = [
                        {"externalId": f"bench-{n}", "email": f"bench{n}@example.com"}
                        for n in range(first, min(first + 100, args.contacts))
                    ]
                    created = await client.post("/contacts", json={"contacts": batch})
                    ids += [r["crmId"] for r in created.json()["results"]]
                await run_sql_async(url, *triggers(prefix))

                sender = Sender(client, args.updates + args.activities, args.send_seconds)
                proxy.cut()
                down_at = time.monotonic()
                sender.start = down_at
                groups = [list(enumerate(ids))[i :: args.senders] for i in range(args.senders)]
                steps = max(per_contact_updates, per_contact_activities)

                async def worker(mine: list[tuple[int, str]]) -> None:
                    # This client's contacts step by step: each contact's writes in order.
                    for seq in range(steps):
                        for index, crm_id in mine:
                            await sender.step(
                                index, crm_id, seq, per_contact_updates, per_contact_activities
                            )

                await asyncio.gather(*(worker(g) for g in groups))
                sent_in = time.monotonic() - down_at
                await asyncio.sleep(max(0.0, down_at + args.down - time.monotonic()))
                pending = 'enginy_adapter_outbox_items{state="pending"}'
                depth = metric((await client.get("/metrics")).text, pending)
                proxy.restore()
                back_at = time.monotonic()
                while True:
                    text = (await client.get("/metrics")).text
                    if metric(text, pending) == 0:
                        break
                    if time.monotonic() - back_at > 600:
                        raise SystemExit("the queue did not drain in 10 minutes")
                    await asyncio.sleep(0.05)
                drained = time.monotonic() - back_at
                text = (await client.get("/metrics")).text
                results.update(
                    sender=sender,
                    sent_in=sent_in,
                    depth=depth,
                    drained=drained,
                    dead=metric(text, 'enginy_adapter_outbox_items{state="dead"}'),
                    delivered=metric(text, "enginy_adapter_outbox_delivered_total"),
                    failed=metric(text, "enginy_adapter_outbox_attempts_failed_total"),
                    ids=ids,
                )
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    activities, audit, final = await run_sql_async(
        url,
        f"SELECT contact_id, (metadata->>'seq')::int FROM {prefix}activities",
        f"SELECT kind, crm_id, seq FROM {prefix}audit ORDER BY n",
        f"SELECT id, (extra->>'seq')::int FROM {prefix}contacts",
    )
    await cleanup(url, prefix, queue_table)
    results.update(activities=activities, audit=audit, final=dict(final))
    results["updates_per_contact"] = per_contact_updates
    results["activities_per_contact"] = per_contact_activities
    return results


def report(args: argparse.Namespace, r: dict[str, Any]) -> None:
    sender: Sender = r["sender"]
    ids: list[str] = r["ids"]
    u, a = r["updates_per_contact"], r["activities_per_contact"]
    want_updates, want_activities = u * len(ids), a * len(ids)
    by_contact: dict[tuple[str, str], list[int]] = defaultdict(list)
    for kind, crm_id, seq in r["audit"]:
        by_contact[(kind, crm_id)].append(seq)
    stored_updates = sum(len(by_contact[("update", c)]) for c in ids)
    stored_activities = len(r["activities"])
    distinct_activities = len(set(r["activities"]))
    distinct_updates = sum(len(set(by_contact[("update", c)])) for c in ids)
    lost_updates = want_updates - distinct_updates
    lost_activities = want_activities - distinct_activities
    duplicated = (stored_updates - distinct_updates) + (stored_activities - distinct_activities)
    out_of_order = sum(
        1
        for c in ids
        for kind in ("update", "activity")
        if by_contact[(kind, c)] != sorted(by_contact[(kind, c)])
    )
    wrong_final = sum(1 for c in ids if r["final"].get(c) != u - 1)
    lat = sorted(sender.latencies)
    p50 = statistics.median(lat) * 1000
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    rows = [
        ("queue", args.queue),
        ("backend (PostgreSQL via proxy) down", f"{args.down:.0f} s"),
        (
            "sent during the outage",
            f"{want_activities:,} activities + {want_updates:,} updates for {len(ids)} contacts "
            f"in {r['sent_in']:.1f} s, {args.senders} clients",
        ),
        ("answers", ", ".join(f"{n:,} x {s}" for s, n in sorted(sender.statuses.items()))),
        ("answered queued", f"{sender.queued:,}"),
        ("queued answer latency p50 / p99", f"{p50:.1f} ms / {p99:.1f} ms"),
        ("queue depth when the backend came back", f"{r['depth']:,.0f}"),
        ("time to drain after recovery", f"{r['drained']:.1f} s"),
        ("delivered (metric)", f"{r['delivered']:,.0f}"),
        ("failed delivery attempts (metric)", f"{r['failed']:,.0f}"),
        (
            "stored: activities / updates applied",
            f"{stored_activities:,} / {stored_updates:,}",
        ),
        ("lost", f"{lost_activities + lost_updates}"),
        ("duplicated", f"{duplicated}"),
        ("records whose writes arrived out of order", f"{out_of_order}"),
        ("contacts not holding their last update", f"{wrong_final}"),
        ("dead letters", f"{r['dead']:.0f}"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"| {'measure'.ljust(width)} | value |")
    print(f"| {'-' * width} | ----- |")
    for key, value in rows:
        print(f"| {key.ljust(width)} | {value} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--down", type=float, default=60.0)
    parser.add_argument("--contacts", type=int, default=200)
    parser.add_argument("--activities", type=int, default=1000)
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--send-seconds", type=float, default=50.0)
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--queue", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    if args.send_seconds > args.down:
        parser.error("--send-seconds must fit in --down")
    report(args, asyncio.run(run(args)))


if __name__ == "__main__":
    main()
