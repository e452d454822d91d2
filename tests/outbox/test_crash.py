"""Kill -9 with writes queued, restart: every write delivered, once, in order per record.

A real ``enginy-adapter serve`` process on the SQL driver, whose PostgreSQL sits behind a TCP
proxy the test cuts (a real outage: connections reset, new ones refused). The outbox is an
SQLite file. Writes sent during the outage are queued; the process is killed with SIGKILL;
a second process is started with the database back and killed again as soon as it has
delivered something (most likely in the middle of the queue); a third one finishes. What the
database holds is then read directly (not through the adapter): each activity once, each
contact's updates applied in the order sent (a trigger records every update of a contact
row), the task completed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from adapter.config import ENV_API_KEY, ENV_CONFIG, ENV_HOST, ENV_PORT
from backends.sql.schema import build_tables
from tests.browser_support import free_port
from tests.sql.conftest import POSTGRES_URL, require_server
from tests.tcp_proxy import TcpProxy

from .support import run_sql

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
KEY = "crash-test-key-5d1e"
CONTACTS = 8
STEPS = 4
ACTIVITIES_PER_CONTACT = 3


class Adapter:
    """One ``enginy-adapter serve`` process."""

    def __init__(self, config: Path, port: int, log: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for name in (ENV_CONFIG, ENV_HOST, ENV_PORT, ENV_API_KEY):
            env.pop(name, None)
        self.log = log.open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "adapter", "serve", "--config", str(config)],
            cwd=config.parent,
            env=env,
            stdout=self.log,
            stderr=self.log,
        )
        self.base = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.base, headers={"X-API-Key": KEY}, timeout=30)

    def wait_serving(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.http.get("/openapi.json").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"serve did not start (exit {self.proc.poll()})")
            time.sleep(0.1)

    def metric(self, name: str) -> float:
        total = 0.0
        for line in self.http.get("/metrics").text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=20)
        self.http.close()
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.http.close()
        self.log.close()


@pytest.fixture
def database() -> Iterator[tuple[str, str]]:
    """(PostgreSQL URL, a table prefix of this test's own); the tables are dropped after."""
    url = require_server(POSTGRES_URL, "PostgreSQL")
    prefix = f"crash{uuid.uuid4().hex[:8]}_"
    yield url, prefix

    async def drop() -> None:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"DROP TABLE IF EXISTS {prefix}audit"))
            await conn.run_sync(lambda c: build_tables(prefix).metadata.drop_all(c))
            await conn.execute(sa.text(f"DROP FUNCTION IF EXISTS {prefix}audit_fn() CASCADE"))
        await engine.dispose()

    asyncio.run(drop())


def test_kill_9_with_writes_queued_then_restart_delivers_each_once_in_order(
    database: tuple[str, str], tmp_path: Path
) -> None:
    url, prefix = database
    target = make_url(url)
    with TcpProxy(target.host or "127.0.0.1", target.port or 5432, latency=0.01) as proxy:
        port = free_port()
        crm_url = target.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False
        )
        config = tmp_path / "adapter.yaml"
        config.write_text(
            json.dumps(
                {
                    "server": {"port": port, "health_cache_seconds": 0},
                    "auth": {"keys": [KEY]},
                    "backend": {
                        "driver": "sql",
                        "options": {
                            "url": crm_url,
                            "table_prefix": prefix,
                            "connect_timeout": 2,
                            "pool_timeout": 2,
                            "statement_timeout": 5,
                        },
                    },
                    "outbox": {
                        "enabled": True,
                        "url": f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}",
                        "poll_seconds": 0.1,
                        "probe_seconds": 0.2,
                        "backoff": {"first": 0.2, "cap": 1, "jitter": 0},
                    },
                    "observability": {"logs": {"format": "text"}},
                }
            )
        )
        log = tmp_path / "serve.log"
        first = Adapter(config, port, log)
        try:
            first.wait_serving()
            created = first.http.post(
                "/contacts",
                json={"contacts": [{"externalId": f"lead-{i}"} for i in range(CONTACTS)]},
            )
            assert created.status_code == 200, created.text
            ids = [r["crmId"] for r in created.json()["results"]]
            task_id = first.http.post("/tasks", json={"subject": "Call back"}).json()["id"]
            run_sql(
                url,
                f"CREATE TABLE {prefix}audit (n bigserial PRIMARY KEY, crm_id text, step text)",
                f"CREATE FUNCTION {prefix}audit_fn() RETURNS trigger AS $$ BEGIN "
                f"INSERT INTO {prefix}audit (crm_id, step) VALUES (NEW.id, NEW.extra->>'step'); "
                "RETURN NEW; END $$ LANGUAGE plpgsql",
                f"CREATE TRIGGER {prefix}audit_tr AFTER UPDATE ON {prefix}contacts "
                f"FOR EACH ROW EXECUTE FUNCTION {prefix}audit_fn()",
            )

            proxy.cut()  # the CRM's database goes away
            queued = 0
            for step in range(STEPS):
                for n, crm_id in enumerate(ids):
                    answer = first.http.put(
                        "/contacts", json={"contacts": [{"crmId": crm_id, "step": str(step)}]}
                    )
                    assert answer.json()["results"][0].get("queued") is True, answer.text
                    queued += 1
                    if step < ACTIVITIES_PER_CONTACT:
                        activity: dict[str, Any] = {
                            "type": "EMAIL",
                            "direction": "OUTBOUND",
                            "contactId": crm_id,
                            "metadata": {"seq": step},
                        }
                        if n % 2 == 0:  # half carry Enginy's messageId, half do not
                            activity["metadata"]["messageId"] = f"m-{crm_id}-{step}"
                        answer = first.http.post("/activities", json=activity)
                        assert answer.json().get("queued") is True, answer.text
                        queued += 1
            completed = first.http.patch(f"/tasks/{task_id}", json={"completed": True})
            assert completed.json()["queued"] is True
            queued += 1
            first.kill9()
        finally:
            first.stop()

        listed = subprocess.run(
            [sys.executable, "-m", "adapter", "outbox", "list", "--json", "--config", str(config)],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        survivors = [json.loads(line) for line in listed.stdout.splitlines()]
        assert len(survivors) == queued
        assert {s["state"] for s in survivors} == {"pending"}

        proxy.restore()  # the database is back
        second = Adapter(config, port, log)
        try:
            second.wait_serving()
            deadline = time.monotonic() + 60
            while second.metric("enginy_adapter_outbox_delivered_total") == 0:
                assert time.monotonic() < deadline, "the second process delivered nothing"
                time.sleep(0.02)
            second.kill9()  # most likely in the middle of the queue
        finally:
            second.stop()

        third = Adapter(config, port, log)
        try:
            third.wait_serving()
            deadline = time.monotonic() + 90
            while True:
                lines = third.http.get("/metrics").text
                if 'enginy_adapter_outbox_items{state="pending"} 0.0' in lines:
                    break
                assert time.monotonic() < deadline, "the queue did not drain"
                time.sleep(0.2)
            dead = third.metric('enginy_adapter_outbox_items{state="dead"}')
            assert dead == 0
        finally:
            third.stop()

    activities, steps, audit, tasks = run_sql(
        url,
        f"SELECT contact_id, metadata->>'seq', metadata->>'messageId' FROM {prefix}activities",
        f"SELECT id, extra->>'step' FROM {prefix}contacts",
        f"SELECT crm_id, step FROM {prefix}audit ORDER BY n",
        f"SELECT completed FROM {prefix}tasks WHERE id = '{task_id}'",
    )
    # Every activity once: no loss, no duplicate (with and without Enginy's messageId).
    assert len(activities) == CONTACTS * ACTIVITIES_PER_CONTACT
    assert len({(c, s) for c, s, _ in activities}) == len(activities)
    assert sum(1 for *_, m in activities if m) == (CONTACTS + 1) // 2 * ACTIVITIES_PER_CONTACT
    # Every contact holds its last update, and its updates were applied in the order sent. A
    # write delivered but not yet recorded when a process was killed is applied again right
    # after itself (same values): an update is idempotent, never out of order.
    assert dict(steps) == {crm_id: str(STEPS - 1) for crm_id in ids}
    for crm_id in ids:
        applied = [step for cid, step in audit if cid == crm_id]
        collapsed = [s for i, s in enumerate(applied) if i == 0 or applied[i - 1] != s]
        assert collapsed == [str(s) for s in range(STEPS)], applied
    assert tasks == [(True,)]
