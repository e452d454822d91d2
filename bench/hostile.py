"""Hostile and heavy clients against a real `enginy-adapter serve`: the figures of
docs/reliability.md.

    python bench/hostile.py [all|memory|metrics|stall|idle|load] [--quick]

Every scenario starts `python -m adapter serve` in its own process with a configuration written
for it (the default limits unless the scenario says otherwise), drives it from this process over
loopback, stops it, and prints one table row:

* **memory**: 12 concurrent ``POST /contacts/sync`` of about 9 MB each on SQLite (a store seeded
  with 20,000 of the contacts they look for, so each answer carries 20,000 matches), with the
  default limits and with the body budget lifted (``max_body_bytes_in_flight`` 1 GiB, the
  behaviour before it existed); the server's peak resident memory (``VmHWM`` from /proc) and
  how the 12 were answered (200, or 503 with Retry-After).
* **metrics**: the size of ``/metrics`` before and after 3,000 requests without a key, each
  with a made-up or WebDAV method and its own path.
* **stall**: seconds until the server closes a connection that stalls in the middle of its
  headers, one that never sends a byte, and one kept alive idle after a request.
* **idle**: ``/health`` latency (p50/p99 of 500 sequential calls on one connection) with
  3,000 idle kept-alive connections open (``max_connections`` raised to 4,000 for it), and
  without them.
* **load**: 50 clients for 30 s, each looping over create (5 new contacts), sync (5), one
  activity and one update, on SQLite and on PostgreSQL: requests/s, p50, p99, errors.

Bounded: a fixed number of requests or seconds per scenario, loopback only. The clients run in
this process and share the machine's 2 cores with the server, and other engineers use the
machine too: compare rows of one run, and read the absolute figures with the load (printed
first) in mind. ``--quick`` shrinks every scenario for a smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
#: The checkout the server runs from (``--source``: compare with another branch's code).
SOURCE = ROOT
LOAD_SECONDS: float | None = None
KEY = "bench-hostile-" + uuid.uuid4().hex
HEADERS = {"X-API-Key": KEY}
POSTGRES_ADMIN = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    url: str
    port: int
    pid: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(workdir: Path, backend: dict[str, Any], **server: Any) -> Iterator[Server]:
    """``python -m adapter serve`` with ``backend`` and ``server`` options; yields when it
    answers ``/health``, stops it (SIGTERM) afterwards."""
    port = free_port()
    config = {
        "server": {"port": port, **server},
        "auth": {"keys": [KEY]},
        "backend": backend,
        "observability": {"logs": {"level": "WARNING"}},
    }
    path = workdir / f"bench-{port}.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    env = {**os.environ, "PYTHONPATH": str(SOURCE)}
    log = open(workdir / f"serve-{port}.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapter", "serve", "--config", str(path), "--log-level", "warning"],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited with {proc.returncode}; see {log.name}")
            try:
                if httpx.get(f"{url}/health", headers=HEADERS, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("serve did not answer within 60 s")
            time.sleep(0.2)
        yield Server(url, port, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size so far (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process ``pid`` has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def sqlite_backend(workdir: Path) -> dict[str, Any]:
    return {"driver": "sql", "options": {"url": f"sqlite+aiosqlite:///{workdir / 'bench.db'}"}}


# --------------------------------------------------------------------------------------------
# memory: 12 concurrent 9 MB syncs
# --------------------------------------------------------------------------------------------


def contact(i: int) -> dict[str, Any]:
    return {
        "externalId": f"ext-{i}",
        "email": f"person.{i}@example-{i % 997}.com",
        "firstName": f"First{i}",
        "lastName": f"Last{i}",
        "company": f"Company {i % 997}",
        "title": "VP of Engineering",
        "phone": f"+1 555 {i:07d}",
        "linkedinUrl": f"https://www.linkedin.com/in/person-{i}/",
    }


def sync_body(records: int, salt: str) -> bytes:
    # Sync by e-mail: the external ids are new, the first 20,000 e-mails are in the store.
    items = [{**contact(i), "externalId": f"{salt}-{i}"} for i in range(records)]
    return json.dumps({"contacts": items}, separators=(",", ":")).encode()


async def seed(url: str, count: int) -> None:
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=120) as client:
        for start in range(0, count, 1000):
            body = {"contacts": [contact(i) for i in range(start, min(count, start + 1000))]}
            response = await client.post("/contacts", json=body)
            response.raise_for_status()


async def concurrent_syncs(url: str, bodies: list[bytes]) -> list[tuple[int, bool, float]]:
    async def one(client: httpx.AsyncClient, body: bytes) -> tuple[int, bool, float]:
        start = time.perf_counter()
        response = await client.post(
            "/contacts/sync", content=body, headers={"content-type": "application/json"}
        )
        return response.status_code, "retry-after" in response.headers, time.perf_counter() - start

    limits = httpx.Limits(max_connections=len(bodies))
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=300, limits=limits) as c:
        return await asyncio.gather(*(one(c, b) for b in bodies))


def scenario_memory(workdir: Path, quick: bool) -> list[list[str]]:
    rows = []
    target = 0.9e6 if quick else 9e6  # bytes per body
    records = int(target / (len(sync_body(1000, "s99")) / 1000))
    stored = min(records, 2_000 if quick else 20_000)
    bodies = [sync_body(records, f"s{n}") for n in range(12)]
    size = statistics.mean(len(b) for b in bodies) / 1e6
    cases = [("default limits", {}), ("budget lifted", {"max_body_bytes_in_flight": 2**30})]
    for label, limits in cases:
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            where = Path(tmp)
            with serve(where, sqlite_backend(where), limits=limits) as server:
                asyncio.run(seed(server.url, stored))
                before = peak_rss_mb(server.pid)
                started = time.perf_counter()
                answers = asyncio.run(concurrent_syncs(server.url, bodies))
                elapsed = time.perf_counter() - started
                peak = peak_rss_mb(server.pid)
        ok = sum(1 for s, _, _ in answers if s == 200)
        busy = sum(1 for s, retry, _ in answers if s == 503 and retry)
        other = len(answers) - ok - busy
        rows.append(
            [
                f"12 x {size:.1f} MB syncs, {label}",
                f"peak RSS {peak:.0f} MiB (idle {before:.0f})",
                f"200: {ok}, 503+Retry-After: {busy}, other: {other}; {elapsed:.1f} s",
            ]
        )
    return rows


# --------------------------------------------------------------------------------------------
# metrics: 3,000 keyless requests with odd methods
# --------------------------------------------------------------------------------------------


def raw_request(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(payload)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


def metrics_text(url: str) -> str:
    return httpx.get(f"{url}/metrics", headers=HEADERS, timeout=30).text


def scenario_metrics(workdir: Path, quick: bool) -> list[list[str]]:
    count = 300 if quick else 3_000
    webdav = ["PROPFIND", "MKCOL", "LOCK", "UNLOCK", "SEARCH", "PURGE", "REPORT", "COPY", "MOVE"]
    with serve(workdir, {"driver": "memory"}) as server:
        metrics_text(server.url)
        sizes = [metrics_text(server.url)]
        started = time.perf_counter()
        statuses: dict[int, int] = {}
        for i in range(count):
            method = webdav[i % len(webdav)] if i % 2 else f"M{i}X"
            payload = f"{method} /probe/{i}?q={i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            answer = raw_request(server.port, payload.encode())
            status = int(answer.split(b" ", 2)[1]) if answer else 0
            statuses[status] = statuses.get(status, 0) + 1
            if i + 1 in (100, count):
                metrics_text(server.url)  # the scrape counts itself: settle, then measure
                sizes.append(metrics_text(server.url))
        elapsed = time.perf_counter() - started
        scrape = time.perf_counter()
        metrics_text(server.url)
        scrape_ms = (time.perf_counter() - scrape) * 1000
    samples = [sum(1 for ln in t.splitlines() if ln and not ln.startswith("#")) for t in sizes]
    return [
        [
            f"/metrics after {count:,} keyless odd-method requests",
            " -> ".join(f"{len(t.encode()):,}" for t in sizes)
            + f" bytes (before, after 100, after {count:,}); samples "
            + " -> ".join(str(n) for n in samples),
            f"answers {dict(sorted(statuses.items()))} in {elapsed:.1f} s; "
            f"scrape {scrape_ms:.0f} ms",
        ]
    ]


# --------------------------------------------------------------------------------------------
# stall: how long a stalled connection lives
# --------------------------------------------------------------------------------------------


def seconds_until_closed(port: int, first: bytes, then_wait: bool = False) -> tuple[float, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        received = b""
        if then_wait:  # a whole request, its answer, then idle
            sock.sendall(first)
            while b"\r\n\r\n" not in received:
                received += sock.recv(65536)
            head, _, rest = received.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            while len(rest) < length:
                rest += sock.recv(65536)
            received = b""
        elif first:
            sock.sendall(first)
        started = time.perf_counter()
        while chunk := sock.recv(65536):
            received += chunk
        return time.perf_counter() - started, received


def scenario_stall(workdir: Path, quick: bool) -> list[list[str]]:
    del quick  # the defaults are what is measured
    rows = []
    with serve(workdir, {"driver": "memory"}) as server:
        partial = f"POST /contacts HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nContent-Ty".encode()
        waited, answer = seconds_until_closed(server.port, partial)
        status = answer.split(b"\r\n", 1)[0].decode() if answer else "(closed, no answer)"
        rows.append(["stalled in its headers", f"closed after {waited:.1f} s", status])
        waited, answer = seconds_until_closed(server.port, b"")
        rows.append(
            [
                "connected, never sends a byte",
                f"closed after {waited:.1f} s",
                "(closed, no answer)" if not answer else answer[:40].decode(),
            ]
        )
        request = f"GET /health HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n\r\n".encode()
        waited, _ = seconds_until_closed(server.port, request, then_wait=True)
        rows.append(["idle after a request (keep-alive)", f"closed after {waited:.1f} s", ""])
    return rows


# --------------------------------------------------------------------------------------------
# idle: /health with 3,000 idle connections open
# --------------------------------------------------------------------------------------------


async def open_idle(port: int, count: int) -> list[asyncio.StreamWriter]:
    request = f"GET /health HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n\r\n".encode()
    writers = []

    async def one() -> asyncio.StreamWriter:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        await writer.drain()
        await reader.readuntil(b'{"status":"ok"}')
        return writer

    for start in range(0, count, 200):
        writers += await asyncio.gather(*(one() for _ in range(min(200, count - start))))
    return writers


async def health_latencies(url: str, count: int) -> list[float]:
    out = []
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=30) as client:
        for _ in range(count):
            start = time.perf_counter()
            (await client.get("/health")).raise_for_status()
            out.append((time.perf_counter() - start) * 1000)
    return out


async def idle_case(server: Server, idle: int, calls: int) -> tuple[list[float], int]:
    writers = await open_idle(server.port, idle) if idle else []
    try:
        latencies = await health_latencies(server.url, calls)
        still_open = sum(1 for w in writers if not w.is_closing())
    finally:
        for writer in writers:
            writer.close()
    return latencies, still_open


def scenario_idle(workdir: Path, quick: bool) -> list[list[str]]:
    idle = 300 if quick else 3_000
    calls = 100 if quick else 500
    rows = []
    limits = {"max_connections": idle + 1000, "keep_alive_seconds": 600}
    with serve(workdir, {"driver": "memory"}, limits=limits) as server:
        for label, count in (("no idle connection", 0), (f"{idle:,} idle connections", idle)):
            latencies, still = asyncio.run(idle_case(server, count, calls))
            rows.append(
                [
                    f"/health with {label}",
                    f"p50 {percentile(latencies, 50):.1f} ms, "
                    f"p99 {percentile(latencies, 99):.1f} ms",
                    f"{calls} calls; idle ones still open: {still}" if count else f"{calls} calls",
                ]
            )
    return rows


# --------------------------------------------------------------------------------------------
# load: 50 clients mixing writes for 30 s
# --------------------------------------------------------------------------------------------


async def client_loop(
    client: httpx.AsyncClient, n: int, until: float, out: dict[str, list[Any]]
) -> None:
    i = 0
    crm_ids: list[str] = []
    while time.perf_counter() < until:
        i += 1
        step = i % 4
        base = n * 1_000_000 + i * 10
        if step == 1:
            batch = [contact(base + k) | {"externalId": f"c{n}-{i}-{k}"} for k in range(5)]
            path, method, body = "/contacts", "POST", {"contacts": batch}
        elif step == 2:
            batch = [contact(base - 10 + k) | {"externalId": f"x{n}-{i}-{k}"} for k in range(5)]
            path, method, body = "/contacts/sync", "POST", {"contacts": batch}
        elif step == 3:
            path, method = "/activities", "POST"
            body = {
                "type": "EMAIL",
                "direction": "OUTBOUND",
                "subject": "[1/3] Hello",
                "contactId": crm_ids[-1] if crm_ids else None,
                "metadata": {"messageId": f"m-{n}-{i}"},
            }
        else:
            path, method = "/contacts", "PUT"
            target = crm_ids[-1] if crm_ids else "none"
            body = {"contacts": [{"crmId": target, "campaignEngagementStatus": f"step {i}"}]}
        start = time.perf_counter()
        try:
            response = await client.request(method, path, json=body)
            status = response.status_code
            if step == 1 and status == 200:
                crm_ids += [r["crmId"] for r in response.json()["results"]]
                del crm_ids[:-20]
        except httpx.HTTPError:
            status = 0
        out["latency"].append((time.perf_counter() - start) * 1000)
        out["status"].append(status)


async def load(url: str, clients: int, seconds: float) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {"latency": [], "status": []}
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=60, limits=limits) as c:
        until = time.perf_counter() + seconds
        await asyncio.gather(*(client_loop(c, n, until, out) for n in range(clients)))
    return out


@contextmanager
def postgres_database() -> Iterator[str]:
    """A database of its own on the shared server, dropped afterwards."""
    name = f"bench_hostile_{uuid.uuid4().hex[:8]}"
    subprocess.run(["psql", POSTGRES_ADMIN, "-qc", f"CREATE DATABASE {name}"], check=True)
    try:
        yield POSTGRES_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + (
            f"/{name}"
        )
    finally:
        subprocess.run(
            ["psql", POSTGRES_ADMIN, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
            check=False,
        )


def scenario_load(workdir: Path, quick: bool) -> list[list[str]]:
    clients = 50
    seconds = LOAD_SECONDS or (5.0 if quick else 30.0)
    rows = []
    for db in ("sqlite", "postgresql"):
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            where = Path(tmp)
            with contextlib_for(db) as url:
                backend = (
                    sqlite_backend(where)
                    if db == "sqlite"
                    else {"driver": "sql", "options": {"url": url}}
                )
                with serve(where, backend) as server:
                    cpu = cpu_seconds(server.pid)
                    result = asyncio.run(load(server.url, clients, seconds))
                    cpu = cpu_seconds(server.pid) - cpu
        latencies, statuses = result["latency"], result["status"]
        counts: dict[int, int] = {}
        for status in statuses:
            counts[status] = counts.get(status, 0) + 1
        rows.append(
            [
                f"{clients} clients x {seconds:.0f} s, mixed writes, {db}",
                f"{len(statuses) / seconds:.0f} req/s, p50 {percentile(latencies, 50):.0f} ms, "
                f"p99 {percentile(latencies, 99):.0f} ms",
                f"statuses {dict(sorted(counts.items()))}; "
                f"server CPU {cpu * 1000 / max(1, len(statuses)):.1f} ms/request",
            ]
        )
    return rows


@contextmanager
def contextlib_for(db: str) -> Iterator[str]:
    if db == "postgresql":
        with postgres_database() as url:
            yield url
    else:
        yield ""


# --------------------------------------------------------------------------------------------


SCENARIOS = {
    "memory": scenario_memory,
    "metrics": scenario_metrics,
    "stall": scenario_stall,
    "idle": scenario_idle,
    "load": scenario_load,
}


def machine_load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("scenario", nargs="?", default="all", choices=["all", *SCENARIOS])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument(
        "--source",
        type=Path,
        default=ROOT,
        help="run the server from this checkout (e.g. another branch, to compare)",
    )
    parser.add_argument("--seconds", type=float, help="length of the load scenario (default 30)")
    args = parser.parse_args()
    global SOURCE, LOAD_SECONDS
    SOURCE = args.source.resolve()
    LOAD_SECONDS = args.seconds
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    print(f"# {machine_load()}; server code from {SOURCE}", flush=True)
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        for name in names:
            new = SCENARIOS[name](Path(tmp), args.quick)
            for row in new:
                print(" | ".join(row), flush=True)
            rows += new
    print(f"\n# {machine_load()}")
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    print("| scenario | figure | detail |\n| --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, width, strict=True)) + " |")


if __name__ == "__main__":
    main()
