"""The adapter against the floor: a bare Starlette app that only parses the same body.

    python bench/floor.py [--databases memory,sqlite,postgres,mysql] [--repeat 30]
                          [--stored 1000000] [--scale-databases sqlite,postgres]

Part 1, **ratio to the floor.** For each database it serves two processes over loopback:

* **ours**: ``enginy-adapter serve`` (uvicorn, one process) on the SQL driver with a fresh
  schema (an SQLite *file* in a temporary directory; a database of its own, created and dropped
  by the bench, on the PostgreSQL and MariaDB servers named by ``ENGINY_TEST_POSTGRES_URL`` /
  ``ENGINY_TEST_MYSQL_URL``), or on the memory driver (``memory``: HTTP, validation, mapping
  and matching without a database);
* **bare**: ``bench/front.py``'s bare Starlette app, which reads the same body, parses it with
  ``json.loads`` and answers a fixed body without storing anything: the floor that uvicorn,
  Starlette, the loopback and the client cost.

One keep-alive client per server (``httpx.Client``, one request at a time) sends 100-contact
bodies: ``POST /contacts`` with 100 new contacts (every body has new external ids) and
``POST /contacts/sync`` with 100 contacts of which half are known (25 by external id, 25 by
e-mail; 50 unknown, looked up by e-mail and not found). After a warm-up, ``--repeat``
requests per scenario and server, ours and bare alternating (their order swapped every
round), so that a change of the machine's load touches both sides of the ratio alike. Printed:
median wall milliseconds of each, their ratio (targets: create <= 3, sync <= 2.5), and the
server process's CPU milliseconds per request (``/proc``, over the scenario's requests; it
depends far less on what else runs on the machine than wall time does) and their ratio.

Part 2, **scale** (``--stored``, default 1,000,000; ``0`` skips it). For each of
``--scale-databases`` it fills the adapter's tables directly (server-side ``INSERT ...
SELECT``: records with their external ids and e-mail match keys, not through HTTP), once with
1,000 and once with ``--stored`` contacts, serves each and times the same half-known sync:
the ratio large/small has a target of <= 1.5.

The machine's load average is printed with the tables: on a shared host, compare ratios and
CPU figures, not absolute wall times.

``--baseline DIR`` serves a second adapter beside ours, from the ``adapter`` and ``backends``
packages under ``DIR`` (for instance ``git archive <commit> adapter backends | tar -x -C DIR``)
on a database of its own, in the same alternation: its rows, marked ``(before)``, give a
before/after comparison measured in one run, against the same bare app.
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
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for path in (ROOT, BENCH):  # runnable from a checkout without installing
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import front  # noqa: E402  (bench/front.py: the bare app, CPU readings)

from backends.sql import SQLBackend, SQLOptions  # noqa: E402

KEY = "bench-" + uuid.uuid4().hex
HEADER = "X-API-Key"
BATCH = 100
POSTGRES_URL = os.environ.get(
    "ENGINY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("ENGINY_TEST_MYSQL_URL", "mysql+aiomysql://root@127.0.0.1:3306/test")


# -- bodies ------------------------------------------------------------------------------------


def contact(external_id: str, i: int) -> dict[str, Any]:
    """A contact as Enginy sends it: the common fields and one custom field."""
    return {
        "externalId": external_id,
        "email": f"person.{i}@example-{i % 97}.com",
        "firstName": f"First{i}",
        "lastName": f"Last{i}",
        "phone": f"+1 555 {i:07d}",
        "company": f"Company {i % 97}",
        "title": "VP of Engineering",
        "linkedinUrl": f"https://www.linkedin.com/in/person-{i}/",
        "campaigns": "Q3 outbound",
    }


def known(n: int) -> list[dict[str, Any]]:
    """The ``n`` contacts a sync finds (seeded through HTTP before the run)."""
    return [contact(f"known-{j}", 10**8 + j) for j in range(n)]


def sync_body(seed: list[dict[str, Any]], tag: str) -> bytes:
    """100 contacts, half known: 25 by external id, 25 by e-mail (their external ids are new),
    50 unknown (new external ids and e-mails: both lookups run and miss)."""
    half = BATCH // 4
    out = [dict(c) for c in seed[:half]]
    out += [{**c, "externalId": f"other-{tag}-{j}"} for j, c in enumerate(seed[half : 2 * half])]
    out += [contact(f"unknown-{tag}-{j}", 2 * 10**8 + j) for j in range(BATCH // 2)]
    return json.dumps({"contacts": out}).encode()


def create_bodies(n: int, tag: str) -> list[bytes]:
    """``n`` bodies of 100 contacts that nobody created yet."""
    return [
        json.dumps(
            {"contacts": [contact(f"new-{tag}-{k}-{j}", k * BATCH + j) for j in range(BATCH)]}
        ).encode()
        for k in range(n)
    ]


# -- databases ---------------------------------------------------------------------------------


@contextmanager
def scratch_database(kind: str, workdir: Path) -> Iterator[str]:
    """A URL of an empty database of its own: a file for SQLite, ``CREATE DATABASE`` on the
    shared PostgreSQL / MariaDB servers (dropped afterwards)."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{workdir / f'floor-{uuid.uuid4().hex[:8]}.db'}"
        return
    server = make_url(POSTGRES_URL if kind == "postgres" else MYSQL_URL)
    name = f"enginy_bench_{uuid.uuid4().hex[:10]}"

    async def admin(statement: str) -> None:
        engine = create_async_engine(server, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(sa.text(statement))
        finally:
            await engine.dispose()

    asyncio.run(admin(f"CREATE DATABASE {name}"))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        drop = f"DROP DATABASE {name}"
        asyncio.run(admin(drop + " WITH (FORCE)" if kind == "postgres" else drop))


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of ``pid`` so far, in nanosecond precision (the scheduler's
    ``/proc/<pid>/task/*/schedstat``; ``/proc/<pid>/stat`` counts 10 ms ticks, too coarse
    for a 3 ms request). Threads that ended are not counted: the servers keep theirs."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


@dataclass(frozen=True)
class Served:
    url: str
    pid: int
    log: Path


@contextmanager
def serve_ours(
    db_url: str | None, workdir: Path, source: Path | None = None, **options: Any
) -> Iterator[Served]:
    """``enginy-adapter serve`` on ``db_url`` (the memory driver when ``None``); with
    ``source``, the ``adapter`` and ``backends`` packages of that tree instead of this one's."""
    config = workdir / f"ours-{uuid.uuid4().hex[:8]}.yaml"
    if db_url is None:
        backend: dict[str, Any] = {"driver": "memory"}
    else:
        backend = {"driver": "sql", "options": {"url": db_url, **options}}
    config.write_text(json.dumps({"auth": {"keys": [KEY]}, "backend": backend}))
    port = front._free_port()
    exe = Path(sys.executable).with_name("enginy-adapter")
    command, env, cwd = [str(exe)], None, None
    if source is not None:
        # That tree first on the path (and as the working directory, which ``-c`` puts
        # first), ahead of this checkout's installed packages.
        main = "import sys; from adapter.cli import main; sys.exit(main())"
        command, cwd = [sys.executable, "-c", main], source
        env = {**os.environ, "PYTHONPATH": str(source)}
    log_path = config.with_suffix(".log")
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                *command,
                "serve",
                "--config",
                str(config),
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=env,
            cwd=cwd,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", headers={HEADER: KEY}).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"serve did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        yield Served(base, proc.pid, log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- measuring ---------------------------------------------------------------------------------


@dataclass
class Timing:
    wall_ms: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    requests: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.wall_ms)

    @property
    def cpu_ms(self) -> float:
        return self.cpu_s / self.requests * 1000 if self.requests else float("nan")


def post(client: httpx.Client, path: str, body: bytes) -> float:
    start = time.perf_counter()
    response = client.post(path, content=body)
    elapsed = (time.perf_counter() - start) * 1000
    if response.status_code != 200:
        raise SystemExit(f"{path}: {response.status_code} {response.text[:300]}")
    return elapsed


def paired(
    sides: dict[str, tuple[httpx.Client, int]],
    path: str,
    bodies: Callable[[str, int], bytes],
    repeat: int,
    warmup: int,
) -> dict[str, Timing]:
    """``repeat`` requests on each side, alternating (order swapped every round), after
    ``warmup`` unmeasured ones; each side's CPU read over its own requests."""
    names = list(sides)
    for i in range(warmup):
        for name in names:
            post(sides[name][0], path, bodies(name, -1 - i))
    out = {name: Timing() for name in names}
    for i in range(repeat):
        for name in names if i % 2 == 0 else names[::-1]:
            client, pid = sides[name]
            body = bodies(name, i)
            before = cpu_seconds(pid)
            out[name].wall_ms.append(post(client, path, body))
            out[name].cpu_s += cpu_seconds(pid) - before
            out[name].requests += 1
    return out


def client_for(base: str) -> httpx.Client:
    headers = {HEADER: KEY, "Content-Type": "application/json", "Accept": "application/json"}
    return httpx.Client(base_url=base, headers=headers, timeout=120)


def measure_floor(
    kind: str, workdir: Path, repeat: int, warmup: int, baseline: Path | None = None
) -> dict[str, dict[str, Timing]]:
    """Part 1 for one database: ``ours``, ``bare`` and, with ``baseline`` (a source tree),
    ``before``: the same service from that tree, on a database of its own."""
    with ExitStack() as stack:
        servers = {"ours": stack.enter_context(_served(kind, workdir))}
        if baseline is not None:
            servers["before"] = stack.enter_context(_served(kind, workdir, baseline))
        bare = stack.enter_context(front.server("bare", KEY))
        sides = {
            name: (stack.enter_context(client_for(url)), pid)
            for name, (url, pid) in {
                **{name: (s.url, s.pid) for name, s in servers.items()},
                "bare": (bare.url, bare.pid),
            }.items()
        }
        seed = known(BATCH // 2)
        for name, served in servers.items():
            _seed(kind, sides[name][0], served, seed)
        creates = {
            name: create_bodies(repeat + warmup, f"{name}{uuid.uuid4().hex[:6]}") for name in sides
        }
        syncs = {name: sync_body(seed, name) for name in sides}
        return {
            "create": paired(sides, "/contacts", lambda name, i: creates[name][i], repeat, warmup),
            "sync": paired(sides, "/contacts/sync", lambda name, _i: syncs[name], repeat, warmup),
        }


@dataclass(frozen=True)
class _Server:
    url: str
    pid: int
    db_url: str | None


@contextmanager
def _served(kind: str, workdir: Path, source: Path | None = None) -> Iterator[_Server]:
    """A served adapter on a fresh database of ``kind`` (none for ``memory``)."""
    with (
        scratch_database(kind, workdir) if kind != "memory" else _none() as db_url,
        serve_ours(db_url, workdir, source) as served,
    ):
        yield _Server(served.url, served.pid, db_url)


def _seed(kind: str, client: httpx.Client, served: _Server, seed: list[dict[str, Any]]) -> None:
    """The contacts the syncs find, then what autovacuum would have done, then a check."""
    post(client, "/contacts", json.dumps({"contacts": seed}).encode())
    if served.db_url is not None:
        asyncio.run(analyze(served.db_url))
    check = client.post("/contacts/sync", content=sync_body(seed, "check"))
    if len(check.json()["results"]) != BATCH // 2:
        raise SystemExit(f"{kind}: the sync found {len(check.json()['results'])} of 50")


async def analyze(db_url: str) -> None:
    """What autovacuum would have done by now. The test servers run without it, and
    PostgreSQL's planner, knowing nothing of a table, takes ``entity = 'contact' AND key_name =
    'email'`` for a rare pair and filters every match key of that name instead of looking the
    values up in the index: a sync then costs milliseconds per thousand stored contacts."""
    engine = create_async_engine(db_url)
    try:
        async with engine.begin() as conn:
            if engine.dialect.name in ("postgresql", "sqlite"):
                await conn.execute(sa.text("ANALYZE"))
    finally:
        await engine.dispose()


@contextmanager
def _none() -> Iterator[None]:
    yield None


# -- scale -------------------------------------------------------------------------------------


def _series(dialect: str, n: int) -> str:
    """A ``FROM`` clause yielding ``g`` = 1..n on the server."""
    if dialect == "postgresql":
        return f"generate_series(1, {n}) AS s(g)"
    return (
        f"(WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {n}) "
        "SELECT g FROM s)"
    )


async def fill(db_url: str, n: int) -> None:
    """The adapter's tables (created by opening the driver), then ``n`` contacts as the adapter
    stores them, ``bulk-<g>``: external id ``ext-bulk-<g>``, e-mail key ``bulk<g>@example.com``,
    inserted by the server itself."""
    backend = SQLBackend(SQLOptions(url=db_url))
    await backend.open()
    prefix = backend.options.table_prefix
    await backend.close()
    engine: AsyncEngine = create_async_engine(db_url)
    d = engine.dialect.name
    text = "CAST(g AS TEXT)" if d == "sqlite" else "g::text"
    cid = f"'bulk-' || {text}"
    email = f"'bulk' || {text} || '@example.com'"
    src = _series(d, n)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    f"INSERT INTO {prefix}contacts (id, external_id, email, first_name, "
                    "last_name, title, created_at, updated_at) "
                    f"SELECT {cid}, 'ext-' || {cid}, {email}, 'Bulk', 'Contact ' || {text}, "
                    f"'CTO', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM {src}"
                )
            )
            await conn.execute(
                sa.text(
                    f"INSERT INTO {prefix}match_keys (entity, key_name, value, crm_id) "
                    f"SELECT 'contact', 'email', {email}, {cid} FROM {src}"
                )
            )
            await conn.execute(sa.text("ANALYZE"))
    finally:
        await engine.dispose()


def scale_sync_body(stored: int, tag: str) -> bytes:
    """100 contacts, half of them among ``stored`` bulk contacts spread over the whole range:
    25 by external id, 25 by e-mail, 50 unknown."""
    step = max(1, stored // 60)
    out = [{"externalId": f"ext-bulk-{1 + i * step}"} for i in range(25)]
    out += [
        {"externalId": f"s-{tag}-{i}", "email": f"bulk{1 + (i + 30) * step}@example.com"}
        for i in range(25)
    ]
    out += [
        {"externalId": f"u-{tag}-{i}", "email": f"nobody.{tag}.{i}@example.com"} for i in range(50)
    ]
    return json.dumps({"contacts": out}).encode()


def measure_scale(kind: str, stored: int, workdir: Path, repeat: int, warmup: int) -> Timing:
    with scratch_database(kind, workdir) as db_url:
        started = time.perf_counter()
        asyncio.run(fill(db_url, stored))
        print(
            f"# {kind}: {stored:,} contacts loaded in {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
        with serve_ours(db_url, workdir) as ours, client_for(ours.url) as client:
            bodies = [scale_sync_body(stored, f"{i}") for i in range(repeat + warmup)]
            for i in range(warmup):
                post(client, "/contacts/sync", bodies[i])
            timing = Timing()
            check = client.post("/contacts/sync", content=bodies[0])
            if len(check.json()["results"]) != 50:
                raise SystemExit(f"{kind}: the sync found {len(check.json()['results'])} of 50")
            before = cpu_seconds(ours.pid)
            for body in bodies[warmup:]:
                timing.wall_ms.append(post(client, "/contacts/sync", body))
            timing.cpu_s = cpu_seconds(ours.pid) - before
            timing.requests = repeat
            return timing


# -- report ------------------------------------------------------------------------------------


def machine() -> str:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs, load average {load}, Python {sys.version.split()[0]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--databases", default="memory,sqlite,postgres,mysql")
    parser.add_argument("--repeat", type=int, default=30, help="measured requests per side")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured requests per side")
    parser.add_argument("--stored", type=int, default=1_000_000, help="0: no scale part")
    parser.add_argument("--scale-databases", default="sqlite,postgres")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a source tree (its adapter/ and backends/, e.g. from git archive) served beside "
        "ours and the bare app, alternately, for before/after in one run",
    )
    args = parser.parse_args()
    targets = {"create": 3.0, "sync": 2.5}
    labels = {"create": "POST /contacts (100 new)", "sync": "POST /contacts/sync (100, half)"}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        print(f"# bench/floor.py: {machine()}")
        print(
            f"{'database':<16} {'operation':<31} {'ours ms':>8} {'bare ms':>8} {'ratio':>6} "
            f"{'target':>6}  {'ours cpu':>8} {'bare cpu':>8} {'cpu ratio':>9}"
        )
        for kind in args.databases.split(","):
            result = measure_floor(kind, workdir, args.repeat, args.warmup, args.baseline)
            for op in ("create", "sync"):
                bare = result[op]["bare"]
                target = targets[op] if kind != "memory" else 2.5
                for side in ("before", "ours"):
                    if side not in result[op]:
                        continue
                    ours = result[op][side]
                    name = kind if side == "ours" else f"{kind} (before)"
                    print(
                        f"{name:<16} {labels[op]:<31} {ours.median:>8.2f} {bare.median:>8.2f} "
                        f"{ours.median / bare.median:>6.2f} {'<= ' + format(target, 'g'):>6}  "
                        f"{ours.cpu_ms:>8.2f} {bare.cpu_ms:>8.2f} "
                        f"{ours.cpu_ms / bare.cpu_ms:>9.2f}",
                        flush=True,
                    )
        if args.stored:
            print(f"# scale: {machine()}")
            print(
                f"{'database':<9} {'sync (100, half) with N stored':<31} {'1k ms':>8} "
                f"{'large ms':>8} {'ratio':>6} {'target':>6}  {'1k cpu':>8} {'large cpu':>9}"
            )
            for kind in args.scale_databases.split(","):
                small = measure_scale(kind, 1_000, workdir, args.repeat, args.warmup)
                large = measure_scale(kind, args.stored, workdir, args.repeat, args.warmup)
                print(
                    f"{kind:<9} {'1,000 vs ' + format(args.stored, ','):<31} "
                    f"{small.median:>8.2f} {large.median:>8.2f} "
                    f"{large.median / small.median:>6.2f} {'<= 1.5':>6}  "
                    f"{small.cpu_ms:>8.2f} {large.cpu_ms:>9.2f}",
                    flush=True,
                )
        print(f"# end: {machine()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
