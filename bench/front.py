"""Throughput and latency of the HTTP front, against a bare Starlette endpoint, in one run.

    python bench/front.py [--duration 5] [--clients 8] [--batch 100]

Serves two applications with uvicorn over loopback, each in its own process:

* **ours**: ``adapter.app.create_app`` on the memory driver (API-key middleware, pydantic
  envelope validation, field mapping, match keys, the driver, the response);
* **bare**: a Starlette app whose routes read the same body, parse it with ``json.loads`` and
  return a fixed answer: the floor that the framework, uvicorn and the client cost.

Then drives each with ``--clients`` concurrent ``httpx.AsyncClient`` for ``--duration`` seconds
per scenario (after a short warm-up; ``--rounds`` times, both servers started afresh for each
round, ours and bare alternating) and prints
requests/s and p50/p95 latency for ``POST /contacts/sync`` and ``POST /contacts`` with
``--batch``-record bodies, and the ratio ours/bare (the target is >= 0.6) with its spread over
the rounds.

* ``POST /contacts`` sends new ``externalId`` values in every request, so every request creates
  ``--batch`` records (no idempotent short cut).
* ``POST /contacts/sync`` looks up ``--batch`` contacts created beforehand; their external ids are
  unknown, so each is found at the second step, by e-mail: both lookups run and every item is a
  match returned with its ``properties``.

Bounded on purpose: a fixed number of clients and seconds. The client runs in this process and
is itself a cost: with few CPUs, both servers share the machine with it, so compare the ratio
more than the absolute figures. The ``srv ms/req`` column is the server process's own CPU time
per request (from ``/proc``, Linux only), read over the same window as the requests: it
depends much less on what else runs on the machine, so it is the figure to compare between
runs.
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
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # runnable from a checkout without installing
    sys.path.insert(0, str(ROOT))

KEY_ENV = "BENCH_FRONT_KEY"
HEADER = "X-API-Key"


# --------------------------------------------------------------------------------------------
# The servers (run in child processes: `front.py --serve ours|bare --port N`)
# --------------------------------------------------------------------------------------------


def _ours_app() -> Any:
    from pydantic import SecretStr

    from adapter.app import create_app
    from adapter.config import Settings

    settings = Settings.model_validate(
        {"backend": {"driver": "memory"}, "ui": {"password": "bench-dashboard-password"}}
    )
    settings = settings.model_copy(
        update={"auth": settings.auth.model_copy(update={"keys": [SecretStr(os.environ[KEY_ENV])]})}
    )
    return create_app(settings)


def _bare_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    fixed = json.dumps({"results": []}).encode()

    async def parse(request: Request) -> Response:
        json.loads(await request.body())
        return Response(fixed, media_type="application/json")

    async def health(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/contacts", parse, methods=["POST"]),
            Route("/contacts/sync", parse, methods=["POST"]),
        ]
    )


def _serve(which: str, port: int) -> None:
    import uvicorn

    app = _ours_app() if which == "ours" else _bare_app()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Server:
    url: str
    pid: int


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) used so far by process ``pid``; ``None`` without ``/proc``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name (which may hold spaces, hence the last ")"): utime and
    # stime are the 14th and 15th of the whole line, in clock ticks.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def server(which: str, key: str) -> Iterator[Server]:
    """Start one server process; yield its URL and pid; stop it."""
    port = _free_port()
    env = {**os.environ, KEY_ENV: key}
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve", which, "--port", str(port)],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the {which} server exited with {proc.returncode}")
            try:
                if httpx.get(f"{url}/health", headers={HEADER: key}, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {which} server did not start within 30 s")
            time.sleep(0.1)
        yield Server(url, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------------------------
# The load
# --------------------------------------------------------------------------------------------


def contact(external_id: str, i: int) -> dict[str, Any]:
    return {
        "externalId": external_id,
        "email": f"Person.{i}@Example-{i % 97}.com",
        "firstName": f"First{i}",
        "lastName": f"Last{i}",
        "phone": f"+1 555 {i:07d}",
        "company": f"Company {i % 97}",
        "title": "VP of Engineering",
        "linkedinUrl": f"https://www.linkedin.com/in/person-{i}/",
        "campaigns": "Q3 outbound",
    }


@dataclass
class Result:
    scenario: str
    server: str
    requests: int
    seconds: float
    latencies: list[float]
    failures: int
    cpu: float | None  # the server's CPU seconds over the measured window
    round_rps: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        """Server CPU milliseconds per request (NaN without ``/proc``)."""
        if self.cpu is None or not self.requests:
            return float("nan")
        return self.cpu / self.requests * 1000

    def pct(self, q: int) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] * 1000 if self.latencies else float("nan")
        return statistics.quantiles(self.latencies, n=100)[q - 1] * 1000


async def drive(
    target: Server,
    key: str,
    path: str,
    make_body: Callable[[], bytes],
    clients: int,
    duration: float,
    warmup: float,
) -> tuple[int, float, list[float], int, float | None]:
    """``clients`` concurrent clients, each sending requests back to back until the deadline;
    only requests started after the warm-up are counted, and the server's CPU time is read
    from the end of the warm-up to the last answer."""
    url = target.url
    latencies: list[float] = []
    failures = 0
    cpu_from: float | None = None
    headers = {HEADER: key, "Content-Type": "application/json", "Accept": "application/json"}
    start = time.perf_counter()
    measure_from = start + warmup
    stop = measure_from + duration

    async def one_client() -> None:
        nonlocal failures
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as client:
            while True:
                body = make_body()
                t0 = time.perf_counter()
                if t0 >= stop:
                    return
                response = await client.post(path, content=body)
                t1 = time.perf_counter()
                if response.status_code != 200:
                    failures += 1
                if t0 >= measure_from:
                    latencies.append(t1 - t0)

    async def cpu_at_measure_start() -> None:
        nonlocal cpu_from
        await asyncio.sleep(max(measure_from - time.perf_counter(), 0))
        cpu_from = cpu_seconds(target.pid)

    await asyncio.gather(cpu_at_measure_start(), *(one_client() for _ in range(clients)))
    elapsed = min(time.perf_counter(), stop + 10) - measure_from
    cpu_to = cpu_seconds(target.pid)
    cpu = cpu_to - cpu_from if cpu_to is not None and cpu_from is not None else None
    return len(latencies), elapsed, latencies, failures, cpu


def seed_servers(
    servers: dict[str, Server], key: str, seed: list[dict[str, Any]], sync_body: bytes, batch: int
) -> None:
    """Create the contacts the sync scenario looks up, and check that ours finds them all."""
    for target in servers.values():
        httpx.post(
            f"{target.url}/contacts", headers={HEADER: key}, json={"contacts": seed}, timeout=30
        ).raise_for_status()
    check = httpx.post(
        f"{servers['ours'].url}/contacts/sync",
        headers={HEADER: key, "Content-Type": "application/json"},
        content=sync_body,
        timeout=30,
    )
    check.raise_for_status()
    matched = len(check.json()["results"])
    if matched != batch:
        raise RuntimeError(f"sync matched {matched} of {batch} seeded contacts")


def run_scenarios(args: argparse.Namespace) -> list[Result]:
    key = "bench-" + os.urandom(16).hex()
    results: list[Result] = []
    ids = count()
    batch = args.batch

    def create_body() -> bytes:
        n = next(ids)
        records = [contact(f"lead-{n}-{j}", n * batch + j) for j in range(batch)]
        return json.dumps({"contacts": records}).encode()

    # Sync looks up contacts created before the run (seed ids 10**9+), with unknown external
    # ids, so each item is matched by e-mail after the externalId step misses.
    seed = [contact(f"seed-{j}", 10**9 + j) for j in range(batch)]
    sync_body = json.dumps(
        {"contacts": [{**c, "externalId": f"other-{j}"} for j, c in enumerate(seed)]}
    ).encode()

    scenarios = [
        (f"POST /contacts/sync ({batch})", "/contacts/sync", lambda: sync_body),
        (f"POST /contacts ({batch})", "/contacts", create_body),
    ]
    # Each round starts both servers afresh. POST /contacts adds --batch records per request to
    # ours' memory store, and a store grown by earlier rounds costs more per request (mostly
    # the garbage collector walking it), so with servers kept up a round's figure depended on
    # how many rounds and seconds came before it. Within a round each scenario drives ours then
    # bare right after, so that a change in the machine's load affects both sides of a ratio
    # alike.
    for _ in range(args.rounds):
        with server("ours", key) as ours, server("bare", key) as bare:
            servers = {"ours": ours, "bare": bare}
            seed_servers(servers, key, seed, sync_body, batch)
            for name, path, make_body in scenarios:
                for which, target in servers.items():
                    n, seconds, latencies, failures, cpu = asyncio.run(
                        drive(
                            target, key, path, make_body, args.clients, args.duration, args.warmup
                        )
                    )
                    rps = n / seconds if seconds else 0.0
                    results.append(Result(name, which, n, seconds, latencies, failures, cpu, [rps]))
    return merge_rounds(results)


def merge_rounds(results: list[Result]) -> list[Result]:
    """One result per (scenario, server): the rounds' requests and latencies pooled, each
    round's requests/s kept for the spread."""
    merged: dict[tuple[str, str], Result] = {}
    for r in results:
        m = merged.get((r.scenario, r.server))
        if m is None:
            merged[(r.scenario, r.server)] = Result(
                r.scenario, r.server, r.requests, r.seconds, list(r.latencies), r.failures,
                r.cpu, list(r.round_rps),
            )
        else:
            m.requests += r.requests
            m.seconds += r.seconds
            m.latencies.extend(r.latencies)
            m.failures += r.failures
            m.cpu = m.cpu + r.cpu if m.cpu is not None and r.cpu is not None else None
            m.round_rps.extend(r.round_rps)
    return list(merged.values())


def print_table(results: list[Result], args: argparse.Namespace) -> None:
    print(
        f"bench/front.py: {args.clients} clients, {args.rounds} x {args.duration:g}s per "
        f"scenario and server (after {args.warmup:g}s warm-up each), memory driver, "
        f"{os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}"
    )
    header = f"{'scenario':<26} {'server':<6} {'req/s':>8} {'records/s':>10} "
    header += f"{'p50 ms':>8} {'p95 ms':>8} {'srv ms/req':>10} {'requests':>9} {'non-200':>8}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.scenario:<26} {r.server:<6} {r.rps:>8.1f} {r.rps * args.batch:>10.0f} "
            f"{r.pct(50):>8.2f} {r.pct(95):>8.2f} {r.cpu_ms:>10.2f} {r.requests:>9} "
            f"{r.failures:>8}"
        )
    print()
    by_key = {(r.scenario, r.server): r for r in results}
    for scenario in dict.fromkeys(r.scenario for r in results):
        ours, bare = by_key[(scenario, "ours")], by_key[(scenario, "bare")]
        ratio = ours.rps / bare.rps if bare.rps else float("nan")
        verdict = "ok" if ratio >= 0.6 else "BELOW TARGET"
        # Each round's ours and bare ran back to back: their ratio shows how steady it is.
        rounds = [o / b for o, b in zip(ours.round_rps, bare.round_rps, strict=True) if b]
        spread = f"rounds {min(rounds):.2f}-{max(rounds):.2f}" if rounds else "no rounds"
        print(
            f"ratio ours/bare  {scenario:<26} {ratio:5.2f}  ({spread}; "
            f"target >= 0.60: {verdict})"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per scenario")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds not counted")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (1-64)")
    parser.add_argument("--batch", type=int, default=100, help="records per request")
    parser.add_argument("--rounds", type=int, default=2, help="times each scenario runs (1-5)")
    parser.add_argument("--serve", choices=["ours", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _serve(args.serve, args.port)
        return 0
    if not (
        1 <= args.clients <= 64
        and 0 < args.duration <= 120
        and 1 <= args.batch <= 1000
        and 1 <= args.rounds <= 5
    ):
        parser.error(
            "bounds: 1 <= --clients <= 64, 0 < --duration <= 120, 1 <= --batch <= 1000, "
            "1 <= --rounds <= 5"
        )
    results = run_scenarios(args)
    print_table(results, args)
    failed = sum(r.failures for r in results)
    if failed:
        print(f"warning: {failed} non-200 answers", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
